#include "bench/e2e/step_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "bench/e2e/progress.h"

namespace tilestage::bench {
namespace {

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
}

// Closes the descriptors it holds on every return path.
struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  }
  void Close(int& fd) {
    if (fd >= 0) close(fd);
    for (int& f : fds)
      if (f == fd) f = -1;
    fd = -1;
  }
};

}  // namespace

std::string JoinArgs(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find(' ') == std::string::npos ? a : "'" + a + "'";
  }
  return s;
}

Result<StepOutput> RunStep(const std::string& step, const std::vector<std::string>& argv,
                           const std::string& logs_dir, const StepLineFn& on_line) {
  if (argv.empty()) return InvalidArgument("step ", step, ": empty command");
  StepOutput result;
  result.stderr_path = logs_dir + "/" + step + ".stderr";
  {
    const std::string cmd_path = logs_dir + "/" + step + ".cmd";
    std::ofstream cmd(cmd_path);
    cmd << JoinArgs(argv) << "\n";
    if (!cmd) return IOError("step ", step, ": cannot write ", cmd_path);
  }
  int out_pipe[2], exec_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0)
    return IOError("step ", step, ": pipe: ", std::strerror(errno));
  Fds fds{{out_pipe[0], out_pipe[1]}};
  // The child reports a failed exec through this pipe; a successful exec closes it (CLOEXEC).
  if (pipe2(exec_pipe, O_CLOEXEC) != 0)
    return IOError("step ", step, ": pipe: ", std::strerror(errno));
  fds.fds.push_back(exec_pipe[0]);
  fds.fds.push_back(exec_pipe[1]);
  int err_fd = open(result.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    return IOError("step ", step, ": cannot create ", result.stderr_path, ": ",
                   std::strerror(errno));
  }
  fds.fds.push_back(err_fd);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const double t0 = SteadySeconds();
  const pid_t pid = fork();
  if (pid < 0) return IOError("step ", step, ": fork: ", std::strerror(errno));
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_fd, 2);
    execvp(cargv[0], cargv.data());
    const int e = errno;
    (void)!write(exec_pipe[1], &e, sizeof e);
    _exit(127);
  }
  fds.Close(out_pipe[1]);
  fds.Close(exec_pipe[1]);
  fds.Close(err_fd);
  std::string pending;
  char buf[65536];
  while (true) {
    const ssize_t n = read(out_pipe[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const int64_t now_ms = MlLogger::NowMs();
    result.out.append(buf, size_t(n));
    pending.append(buf, size_t(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      if (on_line) on_line(pending.substr(0, nl), now_ms);
      pending.erase(0, nl + 1);
    }
  }
  int exec_errno = 0;
  ssize_t got;
  while ((got = read(exec_pipe[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  result.wall_s = SteadySeconds() - t0;
  if (got == sizeof exec_errno) {
    return NotFound("step ", step, ": cannot run ", argv[0], ": ", std::strerror(exec_errno));
  }
  if (!pending.empty() && on_line) on_line(pending, MlLogger::NowMs());
  const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  if (code != 0) {
    return Internal("step ", step, ": `", JoinArgs(argv), "` exited with code ", code, "; stderr (",
                    result.stderr_path, "):\n", Tail(result.stderr_path, 2000));
  }
  return result;
}

Result<Json> ParseStepJson(const std::string& step, const std::string& text) {
  size_t start = text.rfind('{', 0) == 0 ? 0 : text.find("\n{");
  if (start != std::string::npos && start > 0) ++start;
  if (start == std::string::npos) return DataLoss("step ", step, ": no JSON on stdout");
  try {
    return Json::parse(text.substr(start));
  } catch (const std::exception& e) {
    return DataLoss("step ", step, ": stdout is not JSON: ", e.what());
  }
}

std::vector<std::string> MpirunPrefix(int np) {
  std::vector<std::string> v = {"mpirun"};
  if (geteuid() == 0) v.push_back("--allow-run-as-root");
  for (const char* a : {"--oversubscribe", "--bind-to", "none", "-np"}) v.push_back(a);
  v.push_back(std::to_string(np));
  return v;
}

}  // namespace tilestage::bench
