#include "bench/e2e/system_info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "trainer/gemm.h"

namespace tilestage::bench {

namespace fs = std::filesystem;

namespace {

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Busy CPU seconds of the whole machine: user, nice, system, irq, softirq and steal in /proc/stat.
double BusyCpuSeconds() {
  std::istringstream cpu(ReadTextFile("/proc/stat"));
  std::string label;
  double v[8] = {};
  cpu >> label;
  for (double& x : v) cpu >> x;
  return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / double(sysconf(_SC_CLK_TCK));
}

// CPU seconds of this process and of its children that have been waited for.
double OwnCpuSeconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    getrusage(who, &u);
    total += double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  return total;
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The value of the first line of `path` that starts with `prefix`, or "".
std::string LineValue(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

}  // namespace

std::string CommandFirstLine(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  char line[512] = {0};
  if (std::fgets(line, sizeof(line), p) == nullptr) line[0] = 0;
  pclose(p);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

Json SystemInfo() {
  Json j = Json::object();
  utsname u{};
  if (uname(&u) == 0) {
    j["host"] = u.nodename;
    j["kernel"] = std::string(u.sysname) + " " + u.release;
    j["machine"] = u.machine;
  }
  std::string cpu = LineValue("/proc/cpuinfo", "model name");
  cpu = cpu.find(':') == std::string::npos ? "" : cpu.substr(cpu.find(':') + 2);
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  j["memory_bytes"] = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  if (std::ifstream("/etc/os-release")) {
    std::string os = LineValue("/etc/os-release", "PRETTY_NAME=");
    os.erase(std::remove(os.begin(), os.end(), '"'), os.end());
    j["os"] = os;
  }
  j["compiler"] = std::string(__VERSION__);
  j["mpi"] = CommandFirstLine({"mpirun", "--version"});
  j["gemm_kernel"] = trainer::GemmKernelName();
  j["load_average"] = ReadTextFile("/proc/loadavg").substr(0, 14);
  return j;
}

CoreUseWatch::CoreUseWatch()
    : load_before_(ReadTextFile("/proc/loadavg").substr(0, 14)),
      busy_s_(BusyCpuSeconds()),
      own_s_(OwnCpuSeconds()),
      wall_s_(WallSeconds()) {}

Json CoreUseWatch::Finish() const {
  const double wall = WallSeconds() - wall_s_;
  const double others = std::max(0.0, (BusyCpuSeconds() - busy_s_) - (OwnCpuSeconds() - own_s_));
  const double cores = wall > 0 ? others / wall : 0.0;
  Json warning = nullptr;
  if (cores > 0.1) {
    char text[200];
    std::snprintf(text, sizeof(text),
                  "other processes used %.2f cores on average while the benchmark ran: its "
                  "figures and ratios are not those of a quiet machine",
                  cores);
    warning = text;
  }
  return Json{{"load_average_before", load_before_},
              {"load_average_after", ReadTextFile("/proc/loadavg").substr(0, 14)},
              {"others_cpu_s", others},
              {"wall_s", wall},
              {"others_cores", cores},
              {"warning", warning}};
}

std::string NowUtc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::string> FindSourceRoot(const std::string& exe) {
  auto is_root = [](const fs::path& p) {
    return fs::exists(p / "examples/data/README.md") && fs::exists(p / "bench/e2e_run/peers.py");
  };
  for (fs::path p = fs::path(exe).parent_path(); !p.empty() && p != p.root_path();
       p = p.parent_path()) {
    if (is_root(p)) return p.string();
  }
  if (fs::exists("examples/data/README.md")) return fs::current_path().string();
  return NotFound("cannot find the tilestage source tree (examples/data) above ", exe,
                  " or in the working directory");
}

}  // namespace tilestage::bench
