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

// A file descriptor closed when it goes out of scope (every return path) or on Close().
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  void Close() { Reset(-1); }
  void Reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// A pipe whose ends are closed on exec (the child's stdout end is dup2'ed, which clears it).
Status MakePipe(const std::string& step, Fd* read_end, Fd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return IOError("step ", step, ": pipe: ", std::strerror(errno));
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return Status::Ok();
}

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
  Fd out_read, out_write, exec_read, exec_write;
  TS_RETURN_IF_ERROR(MakePipe(step, &out_read, &out_write));
  // The child reports a failed exec through this pipe; a successful exec closes it (CLOEXEC).
  TS_RETURN_IF_ERROR(MakePipe(step, &exec_read, &exec_write));
  Fd err(open(result.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (err.get() < 0) {
    return IOError("step ", step, ": cannot create ", result.stderr_path, ": ",
                   std::strerror(errno));
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const double t0 = SteadySeconds();
  const pid_t pid = fork();
  if (pid < 0) return IOError("step ", step, ": fork: ", std::strerror(errno));
  if (pid == 0) {
    dup2(out_write.get(), 1);
    dup2(err.get(), 2);
    execvp(cargv[0], cargv.data());
    const int e = errno;
    (void)!write(exec_write.get(), &e, sizeof e);
    _exit(127);
  }
  out_write.Close();
  exec_write.Close();
  err.Close();
  std::string pending;
  char buf[65536];
  while (true) {
    const ssize_t n = read(out_read.get(), buf, sizeof(buf));
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
  while ((got = read(exec_read.get(), &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
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
