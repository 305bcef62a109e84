// tilestage bench e2e: the whole path on real data in one run, as the MLPerf HPC data-staging
// analysis measures it, beside the tools users run today and the machine's limits.
//
//   tilestage bench e2e [--preset tiny|small|medium] [--config FILE] [--out DIR] [--np 2]
//                       [--no-peers]
//
// Every stage runs as a subprocess of this same binary (/proc/self/exe), the MPI ones under
// mpirun, with their --json outputs collected under DIR/steps/:
//   init:  limits (memcpy, trainer sgemm), ingest of a GeoTIFF scene, NetCDF and HDF5 files
//          (examples/data/; medium ingests several copies of each), and their Python peers;
//   run:   staging under mpirun to DIR/node_local/node{node}, then training with evaluation
//          (vit-mae) under mpirun on the staged GeoTIFF store. run_start → run_stop is the
//          time-to-train; `bench analyze` reads DIR/mllog.txt the same way;
//   after: cp of the same store (staging peer), raw read bandwidth (cold and cached), loader
//          throughput vs PyTorch's DataLoader, PyTorch's training step, and the DS-Analyzer
//          differential runs (synthetic, cached, cold: shards evicted with POSIX_FADV_DONTNEED).
// Then DIR/results.json (schema tilestage-e2e-results/1, bench/e2e/report.h) and the report
// (report.json, report.md, *.svg) via the bench library, and a table on stdout.
#include <fcntl.h>
#include <netcdf.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

#include "bench/e2e/mllog.h"
#include "bench/e2e/report.h"
#include "bench/e2e/staging_analysis.h"
#include "tiling/manifest.h"
#include "tiling/storage.h"
#include "tools/cli/command.h"
#include "trainer/gemm.h"
#include "trainer/model.h"

namespace tilestage::cli {
namespace {

namespace fs = std::filesystem;
using bench::Json;

// What one run does; a preset fills it, --config FILE overrides any key.
struct E2eConfig {
  std::string preset = "small";
  int np = 2;
  int copies = 1;             // copies of each input file ingested (medium: bigger inputs)
  int64_t geotiff_tile = 32;  // tile edge in pixels, for tilestage and gdal_retile.py
  std::string netcdf_vars = "t2m,u10,v10,d2m,sp";
  std::string hdf5_tile = "256,256";
  int epochs = 3;
  int batch = 32;  // global
  int dim = 64, depth = 2, heads = 2, patch = 8;
  double eval_fraction = 0.2;
  int threads = 1;  // per rank / per process
  int loader_batch = 32;
  bool peers = true;

  Json ToJson() const {
    return Json{{"preset", preset},         {"np", np},
                {"copies", copies},         {"geotiff_tile", geotiff_tile},
                {"netcdf_vars", netcdf_vars}, {"hdf5_tile", hdf5_tile},
                {"epochs", epochs},         {"batch", batch},
                {"dim", dim},               {"depth", depth},
                {"heads", heads},           {"patch", patch},
                {"eval_fraction", eval_fraction}, {"threads", threads},
                {"loader_batch", loader_batch}, {"peers", peers}};
  }
};

Result<E2eConfig> PresetConfig(const std::string& name) {
  E2eConfig c;
  c.preset = name;
  if (name == "tiny") {
    c.geotiff_tile = 64;
    c.epochs = 2;
    c.batch = 16;
    c.dim = 32;
    c.depth = 1;
    c.loader_batch = 16;
  } else if (name == "small") {
    // defaults
  } else if (name == "medium") {
    c.copies = 8;
    c.epochs = 4;
    c.dim = 96;
    c.depth = 4;
    c.heads = 3;
    c.threads = 1;
  } else {
    return InvalidArgument("--preset ", name, ": expected tiny, small or medium");
  }
  return c;
}

// Overrides from a JSON object; an unknown key or a wrong type is an error naming the file.
Status ApplyConfigFile(const std::string& path, E2eConfig* c) {
  std::ifstream in(path);
  if (!in) return NotFound("--config ", path, ": cannot open");
  Json j;
  try {
    j = Json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument("--config ", path, ": not JSON: ", e.what());
  }
  if (!j.is_object()) return InvalidArgument("--config ", path, ": expected a JSON object");
  Json base = c->ToJson();
  for (const auto& [key, value] : j.items()) {
    if (!base.contains(key)) return InvalidArgument("--config ", path, ": unknown key \"", key, "\"");
    const Json& b = base[key];
    const bool ok = (b.is_string() && value.is_string()) || (b.is_boolean() && value.is_boolean()) ||
                    (b.is_number_integer() && value.is_number_integer()) ||
                    (b.is_number_float() && value.is_number());
    if (!ok) return InvalidArgument("--config ", path, ": key \"", key, "\" has the wrong type");
    base[key] = value;
  }
  try {
    c->np = base["np"];
    c->copies = base["copies"];
    c->geotiff_tile = base["geotiff_tile"];
    c->netcdf_vars = base["netcdf_vars"];
    c->hdf5_tile = base["hdf5_tile"];
    c->epochs = base["epochs"];
    c->batch = base["batch"];
    c->dim = base["dim"];
    c->depth = base["depth"];
    c->heads = base["heads"];
    c->patch = base["patch"];
    c->eval_fraction = base["eval_fraction"];
    c->threads = base["threads"];
    c->loader_batch = base["loader_batch"];
    c->peers = base["peers"];
  } catch (const std::exception& e) {
    return InvalidArgument("--config ", path, ": ", e.what());
  }
  if (c->np < 1 || c->copies < 1 || c->epochs < 1 || c->batch < c->np || c->threads < 1 ||
      c->loader_batch < 1 || c->geotiff_tile < c->patch) {
    return InvalidArgument("--config ", path, ": np, copies, epochs, threads, loader_batch must be "
                           ">= 1, batch >= np, geotiff_tile >= patch");
  }
  return Status::Ok();
}

double SteadyS() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Progress lines on stderr: "[e2e   12.3s] ..."
class Progress {
 public:
  Progress() : t0_(SteadyS()) {}
  void Line(const std::string& text) const {
    std::fprintf(stderr, "[e2e %7.1fs] %s\n", SteadyS() - t0_, text.c_str());
    std::fflush(stderr);
  }
  double Elapsed() const { return SteadyS() - t0_; }

 private:
  double t0_;
};

struct ProcOutput {
  double wall_s = 0;
  std::string out;  // stdout
  std::string stderr_path;
};

std::string JoinArgs(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) {
    if (!s.empty()) s += ' ';
    s += a.find(' ') == std::string::npos ? a : "'" + a + "'";
  }
  return s;
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > max_bytes ? "..." + s.substr(s.size() - max_bytes) : s;
}

// Runs argv (no shell), stdout read line by line as it arrives (on_line gets each line and its
// arrival time in wall-clock ms), stderr to logs_dir/<step>.stderr, the command line to
// logs_dir/<step>.cmd. A non-zero exit is an error naming the step, the command and stderr's tail.
Result<ProcOutput> RunStep(const std::string& step, const std::vector<std::string>& argv,
                           const std::string& logs_dir,
                           const std::function<void(const std::string&, int64_t)>& on_line = {}) {
  ProcOutput result;
  result.stderr_path = logs_dir + "/" + step + ".stderr";
  {
    std::ofstream cmd(logs_dir + "/" + step + ".cmd");
    cmd << JoinArgs(argv) << "\n";
  }
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return IOError("step ", step, ": pipe: ", std::strerror(errno));
  const int err_fd = open(result.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err_fd < 0) return IOError("step ", step, ": cannot create ", result.stderr_path);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const double t0 = SteadyS();
  const pid_t pid = fork();
  if (pid < 0) return IOError("step ", step, ": fork: ", std::strerror(errno));
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(err_fd, 2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(pipe_fds[1]);
  close(err_fd);
  std::string pending;
  char buf[65536];
  while (true) {
    const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const int64_t now_ms = bench::MlLogger::NowMs();
    result.out.append(buf, size_t(n));
    pending.append(buf, size_t(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      if (on_line) on_line(pending.substr(0, nl), now_ms);
      pending.erase(0, nl + 1);
    }
  }
  close(pipe_fds[0]);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  result.wall_s = SteadyS() - t0;
  if (!pending.empty() && on_line) on_line(pending, bench::MlLogger::NowMs());
  const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  if (code != 0) {
    return Internal("step ", step, ": `", JoinArgs(argv), "` exited with code ", code,
                    "; stderr (", result.stderr_path, "):\n", Tail(result.stderr_path, 2000));
  }
  return result;
}

Result<Json> ParseJsonOutput(const std::string& step, const std::string& text) {
  // The JSON document starts at the first line that opens with '{' (tools may print lines
  // before it, such as `:::MLLOG {...}`).
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

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file()) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

uint64_t TotalBytes(const std::vector<std::string>& files) {
  uint64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    total += fs::file_size(f, ec);
  }
  return total;
}

// Drops the files' pages from the page cache (written back first, so dirty pages go too).
Status EvictFromPageCache(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IOError("evict ", f, ": ", std::strerror(errno));
    fdatasync(fd);
    const int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    if (rc != 0) return IOError("posix_fadvise(DONTNEED) ", f, ": ", std::strerror(rc));
  }
  return Status::Ok();
}

// Reads every byte of the files with read(2) in 8 MiB chunks: the raw read bandwidth.
Result<double> ReadAllSeconds(const std::vector<std::string>& files) {
  std::vector<char> buf(8 << 20);
  const double t0 = SteadyS();
  for (const auto& f : files) {
    const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IOError("read ", f, ": ", std::strerror(errno));
    while (true) {
      const ssize_t n = read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        close(fd);
        return IOError("read ", f, ": ", std::strerror(errno));
      }
      if (n == 0) break;
    }
    close(fd);
  }
  return SteadyS() - t0;
}

// memcpy GB/s (bytes copied per second) over 64 MiB buffers, best of a few rounds.
double MemcpyGbPerS() {
  const size_t bytes = size_t(64) << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const double t0 = SteadyS();
    std::memcpy(b.data(), a.data(), bytes);
    const double dt = SteadyS() - t0;
    best = std::min(best, dt);
    a[size_t(i)] = b[bytes - 1 - size_t(i)];  // keep the copies observable
  }
  return double(bytes) / best / 1e9;
}

// The trainer's own GEMM kernel on 512^3, all cores: the GFLOP/s limit of training.
double SgemmGflops() {
  const int64_t n = 512;
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  trainer::Gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const double t0 = SteadyS();
    trainer::Gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, SteadyS() - t0);
  }
  return 2.0 * double(n * n * n) / best / 1e9;
}

// The repository root (examples/data, bench/e2e_run/peers.py): searched upwards from the binary.
Result<std::string> FindSourceRoot() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Internal("cannot read /proc/self/exe: ", ec.message());
  for (p = p.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (fs::exists(p / "examples/data/README.md") && fs::exists(p / "bench/e2e_run/peers.py")) {
      return p.string();
    }
  }
  if (fs::exists("examples/data/README.md")) return fs::current_path().string();
  return NotFound("cannot find the tilestage source tree (examples/data) above the binary or in "
                  "the working directory");
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string FirstLine(const std::vector<std::string>& argv) {
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
  std::string cpu;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
    }
  }
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  j["memory_bytes"] = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGE_SIZE));
  {
    std::ifstream in("/etc/os-release");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("PRETTY_NAME=", 0) == 0) {
        std::string v = line.substr(12);
        v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
        j["os"] = v;
      }
    }
  }
  j["compiler"] = std::string(__VERSION__);
  j["mpi"] = FirstLine({"mpirun", "--version"});
  j["gemm_kernel"] = trainer::GemmKernelName();
  j["load_average"] = ReadTextFile("/proc/loadavg").substr(0, 14);
  return j;
}

std::string NowUtc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

Json Row(const std::string& name, const std::string& unit, double amount, double seconds) {
  return Json{{"name", name}, {"unit", unit},
              {"tilestage", Json{{"amount", amount}, {"seconds", seconds}}}};
}
Json Peer(const std::string& name, double amount, double seconds) {
  return Json{{"name", name}, {"amount", amount}, {"seconds", seconds}};
}
Json Limit(const std::string& name, double rate) {
  return Json{{"name", name}, {"rate", rate}};
}

struct E2eArgs {
  std::string preset = "small";
  std::string config;
  std::string out = "build/e2e";
  int np = 0;  // 0: the preset's
  bool no_peers = false;
};

class E2eRun {
 public:
  E2eRun(E2eConfig config, std::string out, std::string root, std::string exe)
      : c_(std::move(config)), out_(std::move(out)), root_(std::move(root)),
        exe_(std::move(exe)) {}

  Status Run();

 private:
  Status Ingest();
  Status IngestPeers();
  Status Stage();
  Status Train();
  Status AfterRun();
  Status DataStalls();
  Status WriteReport();
  void PrintTable(const bench::E2eResults& results, const Json& analysis) const;
  std::string StepsDir() const { return out_ + "/steps"; }
  std::string PeersScript() const { return root_ + "/bench/e2e_run/peers.py"; }

  E2eConfig c_;
  std::string out_, root_, exe_;
  Progress progress_;
  std::unique_ptr<bench::MlLogger> log_;
  Json stages_ = Json::array();
  Json steps_ = Json::object();  // every step's --json output, by name
  Json limits_ = Json::object();
  // Inputs per modality, and what tilestage measured on them.
  std::vector<std::string> geotiff_in_, netcdf_in_, hdf5_in_;
  struct IngestFig {
    double seconds = 0, input_bytes = 0, tiles = 0;
  };
  IngestFig ingest_[3];
  std::string staged_;  // the staged GeoTIFF store (node 0)
  double stage_seconds_ = 0, stage_bytes_ = 0;
  double train_samples_per_s_ = 0, train_compute_ms_ = 0, allreduce_gb_per_s_ = 0;
  double train_flops_per_sample_ = 0;
  double allreduce_bytes_ = 0, allreduce_s_ = 0;
  int64_t params_ = 0;
  std::vector<int64_t> x_shape_;
  Json data_stalls_;
};

Status E2eRun::Run() {
  // Only what an earlier run wrote goes, so a mistaken --out loses nothing else.
  std::error_code ec;
  for (const char* name : {"steps", "inputs", "stores", "node_local", "peers", "checkpoints",
                           "report", "mllog.txt", "results.json"}) {
    fs::remove_all(fs::path(out_) / name, ec);
    if (ec) return IOError("--out ", out_, ": cannot remove ", name, ": ", ec.message());
  }
  fs::create_directories(StepsDir(), ec);
  if (ec) return IOError("--out ", out_, ": cannot create: ", ec.message());
  TS_ASSIGN_OR_RETURN(log_, bench::MlLogger::OpenFile(out_ + "/mllog.txt"));
  progress_.Line("tilestage bench e2e --preset " + c_.preset + " -> " + out_ + " (np " +
                 std::to_string(c_.np) + (c_.peers ? ", with peers" : ", no peers") + ")");
  TS_RETURN_IF_ERROR(log_->Event(bench::mlkey::kSubmissionBenchmark, "tilestage-e2e"));
  TS_RETURN_IF_ERROR(log_->Event(bench::mlkey::kSubmissionOrg, "tilestage"));
  TS_RETURN_IF_ERROR(log_->Event(bench::mlkey::kSubmissionPlatform, SystemInfo()["host"]));
  TS_RETURN_IF_ERROR(log_->Event(bench::mlkey::kNumberOfNodes, 1));
  TS_RETURN_IF_ERROR(log_->Start(bench::mlkey::kInitStart));

  progress_.Line("limits: memcpy and the trainer's sgemm");
  limits_["memcpy_gb_per_s"] = MemcpyGbPerS();
  limits_["sgemm_gflop_per_s"] = SgemmGflops();
  progress_.Line("  memcpy " + std::to_string(double(limits_["memcpy_gb_per_s"])).substr(0, 5) +
                 " GB/s, sgemm " +
                 std::to_string(double(limits_["sgemm_gflop_per_s"])).substr(0, 5) + " GFLOP/s");
  TS_RETURN_IF_ERROR(Ingest());
  TS_RETURN_IF_ERROR(log_->End(bench::mlkey::kInitStop));

  TS_RETURN_IF_ERROR(log_->Start(bench::mlkey::kRunStart));
  TS_RETURN_IF_ERROR(Stage());
  TS_RETURN_IF_ERROR(Train());
  TS_RETURN_IF_ERROR(log_->End(bench::mlkey::kRunStop, nullptr, Json{{"status", "success"}}));
  log_.reset();  // flush and close before it is analysed

  TS_RETURN_IF_ERROR(AfterRun());
  if (c_.peers) TS_RETURN_IF_ERROR(IngestPeers());
  TS_RETURN_IF_ERROR(DataStalls());
  return WriteReport();
}

Status ShiftNetcdfTime(const std::string& path, double offset) {
  int nc = 0, var = 0, ndims = 0;
  if (nc_open(path.c_str(), NC_WRITE, &nc) != NC_NOERR) return IOError("nc_open ", path);
  size_t len = 1;  // a scalar time variable holds one value
  int rc = nc_inq_varid(nc, "time", &var);
  if (rc == NC_NOERR) rc = nc_inq_varndims(nc, var, &ndims);
  std::vector<int> dims(size_t(std::max(ndims, 0)));
  if (rc == NC_NOERR && ndims > 0) rc = nc_inq_vardimid(nc, var, dims.data());
  for (int d : dims) {
    size_t n = 0;
    if (rc == NC_NOERR) rc = nc_inq_dimlen(nc, d, &n);
    len *= n;
  }
  std::vector<double> t(len);
  if (rc == NC_NOERR && len > 0) rc = nc_get_var_double(nc, var, t.data());
  for (double& v : t) v += offset * double(len);
  if (rc == NC_NOERR && len > 0) rc = nc_put_var_double(nc, var, t.data());
  const int close_rc = nc_close(nc);
  if (rc != NC_NOERR || close_rc != NC_NOERR) {
    return IOError(path, ": cannot shift the time variable: ",
                   nc_strerror(rc != NC_NOERR ? rc : close_rc));
  }
  return Status::Ok();
}

// Copies of the inputs for the medium preset (bigger inputs from the same real files).
Result<std::vector<std::string>> Inputs(const std::vector<std::string>& files, int copies,
                                        const std::string& dir) {
  if (copies <= 1) return files;
  std::vector<std::string> out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  for (int k = 0; k < copies; ++k) {
    for (const auto& f : files) {
      const fs::path p(f);
      const std::string dst =
          dir + "/" + p.stem().string() + "_" + std::to_string(k) + p.extension().string();
      fs::copy_file(f, dst, fs::copy_options::overwrite_existing, ec);
      if (ec) return IOError("copy ", f, " to ", dst, ": ", ec.message());
      // NetCDF ingest rightly refuses files that repeat a time step: copy k moves k steps on
      // (k units of the file's time axis, e.g. hours), so the copies form a time series.
      if (p.extension() == ".nc" && k > 0) TS_RETURN_IF_ERROR(ShiftNetcdfTime(dst, double(k)));
      out.push_back(dst);
    }
  }
  return out;
}

Status E2eRun::Ingest() {
  const std::string data = root_ + "/examples/data";
  TS_ASSIGN_OR_RETURN(geotiff_in_, Inputs({data + "/geotiff/RGB.byte.tif"}, c_.copies,
                                          out_ + "/inputs/geotiff"));
  TS_ASSIGN_OR_RETURN(netcdf_in_, Inputs({data + "/netcdf/era5_1995-07-14T12.nc"}, c_.copies,
                                         out_ + "/inputs/netcdf"));
  TS_ASSIGN_OR_RETURN(hdf5_in_, Inputs({data + "/hdf5/bitshuffle.h5"}, c_.copies,
                                       out_ + "/inputs/hdf5"));
  const std::string threads = std::to_string(c_.threads);
  const std::string tile = std::to_string(c_.geotiff_tile);
  struct Job {
    std::string modality;
    std::vector<std::string> args;
    const std::vector<std::string>* inputs;
  };
  std::vector<Job> jobs = {
      {"geotiff",
       {exe_, "ingest", "geotiff", "--out", out_ + "/stores/geotiff", "--tile", tile + "," + tile,
        "--min-valid", "0.5", "--codec", "zstd", "--threads", threads, "--json"},
       &geotiff_in_},
      {"netcdf",
       {exe_, "ingest", "netcdf", "--out", out_ + "/stores/netcdf", "--vars", c_.netcdf_vars,
        "--codec", "zstd", "--threads", threads, "--json"},
       &netcdf_in_},
      {"hdf5",
       {exe_, "ingest", "hdf5", "--out", out_ + "/stores/hdf5", "--dataset", "/entry/data/data",
        "--tile", c_.hdf5_tile, "--codec", "zstd", "--threads", threads, "--json"},
       &hdf5_in_},
  };
  for (size_t i = 0; i < jobs.size(); ++i) {
    Job& job = jobs[i];
    for (const auto& f : *job.inputs) job.args.push_back(f);
    progress_.Line("ingest " + job.modality + ": " + std::to_string(job.inputs->size()) +
                   " file(s)");
    TS_ASSIGN_OR_RETURN(ProcOutput p, RunStep("ingest_" + job.modality, job.args, StepsDir()));
    TS_ASSIGN_OR_RETURN(Json j, ParseJsonOutput("ingest " + job.modality, p.out));
    IngestFig& fig = ingest_[i];
    // Like for like with the peers: gdal_retile.py is a command, so the GeoTIFF row times the
    // whole tilestage process; xarray and h5py are timed inside Python after their imports, so
    // the NetCDF and HDF5 rows use the ingest's own elapsed_s (process start-up excluded).
    fig.seconds = i == 0 ? p.wall_s : j.value("elapsed_s", p.wall_s);
    j["process_wall_s"] = p.wall_s;
    steps_["ingest_" + job.modality] = j;
    fig.input_bytes = double(TotalBytes(*job.inputs));
    fig.tiles = j.value("tiles_written", 0.0);
    progress_.Line("  " + std::to_string(int64_t(fig.tiles)) + " tiles in " +
                   std::to_string(p.wall_s).substr(0, 5) + " s");
  }
  return Status::Ok();
}

Status E2eRun::IngestPeers() {
  const std::string py = "/usr/bin/python3";
  const std::vector<std::string> names = {"geotiff", "netcdf", "hdf5"};
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> args = {py, PeersScript(), names[i]};
    const std::vector<std::string>* inputs = i == 0 ? &geotiff_in_ : i == 1 ? &netcdf_in_ : &hdf5_in_;
    if (i == 0) {
      for (const char* a : {"--tile"}) args.push_back(a);
      args.push_back(std::to_string(c_.geotiff_tile));
      args.push_back("--workdir");
      args.push_back(out_ + "/peers/gdal_retile");
    } else if (i == 1) {
      args.push_back("--vars");
      args.push_back(c_.netcdf_vars);
    } else {
      args.push_back("--dataset");
      args.push_back("/entry/data/data");
    }
    for (const auto& f : *inputs) args.push_back(f);
    progress_.Line("peer: ingest " + names[i]);
    TS_ASSIGN_OR_RETURN(ProcOutput p, RunStep("peer_ingest_" + names[i], args, StepsDir()));
    TS_ASSIGN_OR_RETURN(Json j, ParseJsonOutput("peer ingest " + names[i], p.out));
    steps_["peer_ingest_" + names[i]] = j;
  }
  return Status::Ok();
}

Status E2eRun::Stage() {
  staged_ = out_ + "/node_local/node0";
  std::vector<std::string> args = MpirunPrefix(c_.np);
  for (const std::string& a : {exe_, std::string("stage"), std::string("--from"),
                               out_ + "/stores/geotiff", std::string("--to"),
                               out_ + "/node_local/node{node}", std::string("--threads"),
                               std::to_string(c_.threads), std::string("--json")}) {
    args.push_back(a);
  }
  progress_.Line("stage the GeoTIFF store under mpirun -np " + std::to_string(c_.np));
  TS_ASSIGN_OR_RETURN(ProcOutput p, RunStep("stage", args, StepsDir()));
  TS_ASSIGN_OR_RETURN(Json j, ParseJsonOutput("stage", p.out));
  steps_["stage"] = j;
  // The stager's own MLLOG events (barrier to barrier) go into the run's log as it wrote them.
  if (j.contains("mllog")) {
    for (const auto& line : j["mllog"]) {
      TS_ASSIGN_OR_RETURN(std::optional<bench::MlEvent> e,
                          bench::ParseMlLogLine(line.get<std::string>()));
      if (e) TS_RETURN_IF_ERROR(log_->Log(*e));
    }
  }
  stage_seconds_ = j.value("seconds", 0.0);
  stage_bytes_ = j.value("bytes_written", 0.0);
  if (!fs::exists(staged_ + "/manifest.json")) {
    return DataLoss("stage: no manifest.json in ", staged_, " after staging");
  }
  progress_.Line("  " + std::to_string(stage_bytes_ / 1e6).substr(0, 6) + " MB in " +
                 std::to_string(stage_seconds_).substr(0, 6) + " s (stager), " +
                 std::to_string(p.wall_s).substr(0, 5) + " s with mpirun start-up");
  return Status::Ok();
}

Status E2eRun::Train() {
  std::vector<std::string> args = MpirunPrefix(c_.np);
  for (const std::string& a :
       {exe_, std::string("train"), std::string("--store"), staged_, std::string("--model"),
        std::string("vit-mae"), std::string("--eval-fraction"), std::to_string(c_.eval_fraction),
        std::string("--epochs"), std::to_string(c_.epochs), std::string("--batch"),
        std::to_string(c_.batch), std::string("--dim"), std::to_string(c_.dim),
        std::string("--depth"), std::to_string(c_.depth), std::string("--heads"),
        std::to_string(c_.heads), std::string("--patch"), std::to_string(c_.patch),
        std::string("--threads"), std::to_string(c_.threads), std::string("--json"),
        std::string("-"), std::string("--checkpoint-dir"), out_ + "/checkpoints"}) {
    args.push_back(a);
  }
  progress_.Line("train vit-mae under mpirun -np " + std::to_string(c_.np) + ": " +
                 std::to_string(c_.epochs) + " epochs, batch " + std::to_string(c_.batch) +
                 ", eval on " + std::to_string(int(c_.eval_fraction * 100)) + "% held out");
  // Epoch and eval boundaries from the trainer's JSONL records, each stamped with its wall-clock
  // time_ms: an epoch starts when its first step started (time_ms minus the step's step_ms), its
  // evaluation takes the epoch record's eval_ms and ends when that record is written.
  int64_t current_epoch = -1;
  int64_t last_step_ms = 0, last_epoch_stop_ms = 0;
  double compute_ms_sum = 0, allreduce_ms_sum = 0;
  int64_t steps = 0;
  std::vector<double> epoch_rates;
  Status log_status = Status::Ok();
  auto keep = [&](Status s) {
    if (log_status.ok() && !s.ok()) log_status = s;
  };
  auto on_line = [&](const std::string& line, int64_t arrival_ms) {
    Json r;
    try {
      r = Json::parse(line);
    } catch (...) {
      return;  // not a record
    }
    if (!r.is_object() || !r.contains("type")) return;
    const int64_t now_ms = r.value("time_ms", arrival_ms);
    if (r["type"] == "run") {
      params_ = r.value("parameters", int64_t(0));
      x_shape_ = r.value("x_shape", std::vector<int64_t>{});
    } else if (r["type"] == "step") {
      const int64_t epoch = r.value("epoch", int64_t(0));
      if (epoch != current_epoch) {
        current_epoch = epoch;
        bench::MlEvent e;
        // Never before the previous epoch's end (records may arrive in one burst).
        e.time_ms = std::max(last_epoch_stop_ms,
                             now_ms - int64_t(std::llround(r.value("step_ms", 0.0))));
        e.event_type = bench::MlEventType::kIntervalStart;
        e.key = bench::mlkey::kEpochStart;
        e.metadata = Json{{"file", "tools/cli/bench_e2e.cc"}, {"lineno", __LINE__},
                          {"epoch_num", epoch + 1}};
        keep(log_->Log(e));
      }
      last_step_ms = now_ms;
      compute_ms_sum += r.value("compute_ms", 0.0);
      allreduce_ms_sum += r.value("allreduce_ms", 0.0);
      ++steps;
    } else if (r["type"] == "epoch") {
      const int64_t epoch = r.value("epoch", int64_t(0));
      const int64_t eval_start_ms =
          std::max(last_step_ms, now_ms - int64_t(std::llround(r.value("eval_ms", 0.0))));
      keep(log_->Log(bench::MlEvent{"", eval_start_ms, bench::MlEventType::kIntervalStart,
                                    bench::mlkey::kEvalStart, nullptr,
                                    Json{{"file", "tools/cli/bench_e2e.cc"}, {"lineno", __LINE__},
                                         {"epoch_num", epoch + 1}}}));
      keep(log_->Log(bench::MlEvent{"", now_ms, bench::MlEventType::kIntervalEnd,
                                    bench::mlkey::kEvalStop, nullptr,
                                    Json{{"file", "tools/cli/bench_e2e.cc"}, {"lineno", __LINE__},
                                         {"epoch_num", epoch + 1}}}));
      if (r.contains("eval_loss")) {
        keep(log_->Log(bench::MlEvent{"", now_ms, bench::MlEventType::kPointInTime, "eval_loss",
                                      r["eval_loss"],
                                      Json{{"file", "tools/cli/bench_e2e.cc"},
                                           {"lineno", __LINE__}, {"epoch_num", epoch + 1}}}));
      }
      keep(log_->Log(bench::MlEvent{"", now_ms, bench::MlEventType::kIntervalEnd,
                                    bench::mlkey::kEpochStop, nullptr,
                                    Json{{"file", "tools/cli/bench_e2e.cc"}, {"lineno", __LINE__},
                                         {"epoch_num", epoch + 1}}}));
      last_epoch_stop_ms = now_ms;
      epoch_rates.push_back(r.value("samples_per_s", 0.0));
      char text[200];
      std::snprintf(text, sizeof(text),
                    "  epoch %lld/%d: train loss %.4f, eval loss %.4f, %.1f samples/s, "
                    "stall %.1f%%",
                    static_cast<long long>(epoch + 1), c_.epochs, r.value("train_loss", 0.0),
                    r.value("eval_loss", -1.0), r.value("samples_per_s", 0.0),
                    100.0 * r.value("stall_fraction", 0.0));
      progress_.Line(text);
    }
  };
  TS_ASSIGN_OR_RETURN(ProcOutput p, RunStep("train", args, StepsDir(), on_line));
  TS_RETURN_IF_ERROR(log_status);
  if (epoch_rates.empty()) {
    return DataLoss("train: no epoch records on stdout (see ", p.stderr_path, ")");
  }
  Json records = Json::array();
  {
    std::istringstream in(p.out);
    std::string line;
    while (std::getline(in, line)) {
      try {
        records.push_back(Json::parse(line));
      } catch (...) {
      }
    }
  }
  steps_["train"] = Json{{"records", records}};
  std::sort(epoch_rates.begin(), epoch_rates.end());
  // The median epoch rate: the first epoch carries thread and allocator warm-up.
  train_samples_per_s_ = epoch_rates[epoch_rates.size() / 2];
  train_compute_ms_ = steps > 0 ? compute_ms_sum / double(steps) : 0;
  allreduce_s_ = allreduce_ms_sum / 1e3;
  if (params_ <= 0) return DataLoss("train: no run record on stdout (see ", p.stderr_path, ")");
  allreduce_bytes_ = double(steps) * double(params_) * 4.0;  // fp32 gradients, every step
  if (x_shape_.size() == 3) {
    trainer::ModelConfig mc;
    mc.objective = trainer::Objective::kMae;
    mc.dim = c_.dim;
    mc.depth = c_.depth;
    mc.heads = c_.heads;
    mc.patch = c_.patch;
    mc.in_channels = x_shape_[0];
    mc.height = x_shape_[1];
    mc.width = x_shape_[2];
    auto model = trainer::VitModel::Create(mc);
    if (model.ok()) train_flops_per_sample_ = 3.0 * (*model)->ForwardFlopsPerSample();
  }
  return Status::Ok();
}

Status E2eRun::AfterRun() {
  // Staging peer: cp -r of the same store to the same file system, then sync (the stager
  // fsyncs each shard before publishing it).
  const std::string src = out_ + "/stores/geotiff";
  const std::string dst = out_ + "/peers/cp_copy";
  std::error_code ec;
  fs::create_directories(out_ + "/peers", ec);
  progress_.Line("peer: cp -r of the store, then sync");
  TS_ASSIGN_OR_RETURN(ProcOutput cp, RunStep("peer_cp", {"cp", "-r", src, dst}, StepsDir()));
  TS_ASSIGN_OR_RETURN(ProcOutput sync, RunStep("peer_sync", {"sync"}, StepsDir()));
  steps_["peer_cp"] = Json{{"seconds", cp.wall_s + sync.wall_s}, {"cp_s", cp.wall_s},
                           {"sync_s", sync.wall_s}, {"bytes", TotalBytes(FilesUnder(src))}};

  // Raw read bandwidth of the staged shards: cold (evicted) and cached.
  const std::vector<std::string> files = FilesUnder(staged_);
  const double bytes = double(TotalBytes(files));
  TS_RETURN_IF_ERROR(EvictFromPageCache(files));
  TS_ASSIGN_OR_RETURN(double cold_s, ReadAllSeconds(files));
  TS_ASSIGN_OR_RETURN(double cached_s, ReadAllSeconds(files));
  limits_["read_cold_gb_per_s"] = bytes / cold_s / 1e9;
  limits_["read_cached_gb_per_s"] = bytes / cached_s / 1e9;
  limits_["read_bytes"] = bytes;
  std::vector<std::string> inputs = geotiff_in_;
  inputs.insert(inputs.end(), netcdf_in_.begin(), netcdf_in_.end());
  inputs.insert(inputs.end(), hdf5_in_.begin(), hdf5_in_.end());
  double in_cached_s = 0;
  TS_RETURN_IF_ERROR(ReadAllSeconds(inputs).status());
  TS_ASSIGN_OR_RETURN(in_cached_s, ReadAllSeconds(inputs));
  limits_["read_inputs_cached_mb_per_s"] = double(TotalBytes(inputs)) / in_cached_s / 1e6;

  // Loader throughput (no compute), cached, beside PyTorch's DataLoader on the same store.
  progress_.Line("loader: tilestage load vs PyTorch DataLoader on the staged store");
  TS_ASSIGN_OR_RETURN(
      ProcOutput load,
      RunStep("load", {exe_, "load", staged_, "--batch", std::to_string(c_.loader_batch),
                       "--epochs", "1", "--threads", std::to_string(c_.threads), "--json"},
              StepsDir()));
  TS_ASSIGN_OR_RETURN(Json lj, ParseJsonOutput("load", load.out));
  steps_["load"] = lj;
  if (c_.peers) {
    TS_ASSIGN_OR_RETURN(
        ProcOutput pl,
        RunStep("peer_loader",
                {"/usr/bin/python3", PeersScript(), "loader", "--store", staged_, "--batch",
                 std::to_string(c_.loader_batch), "--workers", std::to_string(c_.threads),
                 "--reader-dir", root_ + "/tools/python"},
                StepsDir()));
    TS_ASSIGN_OR_RETURN(Json pj, ParseJsonOutput("peer loader", pl.out));
    steps_["peer_loader"] = pj;
    // PyTorch's training step with the same encoder shape (a classification head: the peer
    // script has no MAE), same threads per process, same per-rank batch.
    if (x_shape_.size() == 3) {
      progress_.Line("peer: PyTorch training step (same ViT encoder)");
      TS_ASSIGN_OR_RETURN(
          ProcOutput pt,
          RunStep("peer_train",
                  {"/usr/bin/python3", root_ + "/bench/trainer/torch_vit.py", "bench", "--dim",
                   std::to_string(c_.dim), "--depth", std::to_string(c_.depth), "--heads",
                   std::to_string(c_.heads), "--patch", std::to_string(c_.patch), "--size",
                   std::to_string(x_shape_[1]), "--channels", std::to_string(x_shape_[0]),
                   "--batch", std::to_string(c_.batch), "--steps", "4", "--warmup", "1",
                   "--threads", std::to_string(c_.threads * c_.np)},
                  StepsDir()));
      TS_ASSIGN_OR_RETURN(Json tj, ParseJsonOutput("peer train", pt.out));
      steps_["peer_train"] = tj;
    }
  }
  return Status::Ok();
}

// DS-Analyzer's differential runs over the staged store with the trainer's measured compute per
// step as the stand-in (a sleep, as DLIO does): synthetic = the compute alone, cached = compute
// plus preprocessing (shards in the page cache), cold = compute plus preprocessing plus fetch
// (shards evicted first).
Status E2eRun::DataStalls() {
  // The trainer's compute per step is for its per-rank batch; scale it to the loader's batch.
  const double per_rank_batch = double(c_.batch) / double(c_.np);
  const double compute_ms =
      std::max(1.0, train_compute_ms_ * double(c_.loader_batch) / per_rank_batch);
  const std::vector<std::string> files = FilesUnder(staged_);
  auto load_run = [&](const std::string& step) -> Result<Json> {
    TS_ASSIGN_OR_RETURN(
        ProcOutput p,
        RunStep(step, {exe_, "load", staged_, "--batch", std::to_string(c_.loader_batch),
                       "--epochs", "1", "--threads", std::to_string(c_.threads), "--compute-ms",
                       std::to_string(compute_ms), "--json"},
                StepsDir()));
    return ParseJsonOutput(step, p.out);
  };
  progress_.Line("data stalls (DS-Analyzer): cold, cached and synthetic runs, " +
                 std::to_string(compute_ms).substr(0, 5) + " ms compute per batch");
  TS_RETURN_IF_ERROR(EvictFromPageCache(files));
  TS_ASSIGN_OR_RETURN(Json cold, load_run("stalls_cold"));
  TS_ASSIGN_OR_RETURN(Json cached, load_run("stalls_cached"));
  steps_["stalls_cold"] = cold;
  steps_["stalls_cached"] = cached;
  // The synthetic run: the same number of batches, compute only (the data already in memory).
  int64_t batches = 0;
  for (const auto& r : cached.value("per_rank", Json::array())) {
    batches += r.value("batches", int64_t(0));
  }
  const double t0 = SteadyS();
  for (int64_t b = 0; b < batches; ++b) {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(compute_ms));
  }
  const double synthetic_s = SteadyS() - t0;
  data_stalls_ = Json{{"samples", cached.value("samples", 0.0)},
                      {"synthetic_s", synthetic_s},
                      {"cached_s", cached.value("wall_s", 0.0)},
                      {"cold_s", cold.value("wall_s", 0.0)}};
  // A cold run can come out faster than the cached one by noise on a busy machine; the report
  // refuses negative stalls, so keep the measured order and say so.
  if (double(data_stalls_["cold_s"]) < double(data_stalls_["cached_s"])) {
    data_stalls_["note"] = "cold run faster than cached (noise): fetch stall clamped to 0";
    data_stalls_["cold_s"] = data_stalls_["cached_s"];
  }
  if (double(data_stalls_["cached_s"]) < synthetic_s) {
    data_stalls_["cached_s"] = synthetic_s;
  }
  return Status::Ok();
}

std::string Fmt(double v, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", prec, v);
  return buf;
}

Status E2eRun::WriteReport() {
  // Time to train from the run's own mllog, as `tilestage bench analyze` reads it.
  const std::string mllog = out_ + "/mllog.txt";
  TS_ASSIGN_OR_RETURN(bench::StagingAnalysis analysis,
                      bench::AnalyzeMlLogFiles({mllog}, bench::GroupBy::kFile));
  if (analysis.runs.size() != 1) {
    return DataLoss(mllog, ": expected one run, found ", analysis.runs.size());
  }
  const bench::RunAnalysis& run = analysis.runs[0];

  const char* kNames[3] = {"geotiff", "netcdf", "hdf5"};
  // The NetCDF and HDF5 peers read and decode only (no tiling, statistics or writes): an upper
  // bound on what those Python paths achieve.
  const char* kPeerNames[3] = {"gdal_retile.py", "xarray read only", "h5py read only"};
  for (int i = 0; i < 3; ++i) {
    const IngestFig& f = ingest_[i];
    const std::string peer_key = std::string("peer_ingest_") + kNames[i];
    Json mb = Row(std::string("ingest ") + kNames[i], "MB/s", f.input_bytes / 1e6, f.seconds);
    if (steps_.contains(peer_key)) {
      const Json& p = steps_[peer_key];
      mb["peer"] = Peer(kPeerNames[i], p.value("input_bytes", 0.0) / 1e6, p.value("seconds", 0.0));
    }
    mb["limit"] = Limit("raw read bandwidth (inputs, page cache)",
                        limits_["read_inputs_cached_mb_per_s"]);
    stages_.push_back(mb);
    Json tiles = Row(std::string("ingest ") + kNames[i], "tiles/s", f.tiles, f.seconds);
    if (i == 0 && steps_.contains(peer_key)) {
      const Json& p = steps_[peer_key];
      tiles["peer"] = Peer(kPeerNames[i], p.value("tiles", 0.0), p.value("seconds", 0.0));
    }
    stages_.push_back(tiles);
  }
  {
    Json s = Row("staging", "GB/s", stage_bytes_ / 1e9, stage_seconds_);
    const Json& cp = steps_["peer_cp"];
    s["peer"] = Peer("cp -r + sync", cp.value("bytes", 0.0) / 1e9, cp.value("seconds", 0.0));
    s["limit"] = Limit("raw read bandwidth (page cache)", limits_["read_cached_gb_per_s"]);
    stages_.push_back(s);
  }
  {
    const Json& l = steps_["load"];
    Json rate = Row("loader", "samples/s", l.value("samples", 0.0), l.value("wall_s", 0.0));
    double stored_bytes = 0;
    for (const auto& r : l.value("per_rank", Json::array())) {
      stored_bytes += r.value("stored_bytes_read", 0.0);
    }
    Json gbs = Row("loader", "GB/s", stored_bytes / 1e9, l.value("wall_s", 0.0));
    if (steps_.contains("peer_loader")) {
      const Json& p = steps_["peer_loader"];
      rate["peer"] = Peer("PyTorch DataLoader", p.value("samples", 0.0), p.value("seconds", 0.0));
    }
    gbs["limit"] = Limit("raw read bandwidth (page cache)", limits_["read_cached_gb_per_s"]);
    stages_.push_back(rate);
    stages_.push_back(gbs);
  }
  {
    Json t = Json{{"name", "training"}, {"unit", "samples/s"},
                  {"tilestage", Json{{"rate", train_samples_per_s_}}}};
    if (steps_.contains("peer_train")) {
      const Json& p = steps_["peer_train"];
      t["peer"] = Json{{"name", "PyTorch (same encoder, classify head)"},
                       {"rate", p.value("samples_per_s", 0.0)}};
    }
    stages_.push_back(t);
    if (train_flops_per_sample_ > 0) {
      Json g = Json{{"name", "training"}, {"unit", "GFLOP/s"},
                    {"tilestage",
                     Json{{"rate", train_samples_per_s_ * train_flops_per_sample_ / 1e9}}}};
      g["limit"] = Limit("sgemm 512^3 (trainer kernel, all cores)", limits_["sgemm_gflop_per_s"]);
      stages_.push_back(g);
    }
    if (allreduce_s_ > 0 && allreduce_bytes_ > 0) {
      Json a = Row("allreduce", "GB/s", allreduce_bytes_ / 1e9, allreduce_s_);
      a["limit"] = Limit("memcpy", limits_["memcpy_gb_per_s"]);
      stages_.push_back(a);
    }
  }
  Json provenance = Json::object();
  std::string command;
  for (const auto& a : CommandLine()) command += (command.empty() ? "" : " ") + a;
  provenance["command"] = command;
  provenance["config"] = c_.ToJson();
  provenance["time_utc"] = NowUtc();
  provenance["tilestage_binary"] = exe_;
  provenance["source_root"] = root_;
  provenance["git"] = FirstLine({"git", "-C", root_, "describe", "--always", "--dirty"});
  provenance["inputs"] = Json::array();
  for (const auto* list : {&geotiff_in_, &netcdf_in_, &hdf5_in_}) {
    for (const auto& f : *list) provenance["inputs"].push_back(f);
  }
  provenance["mllog"] = mllog;
  provenance["steps_dir"] = StepsDir();
  Json system = SystemInfo();
  system["limits"] = limits_;
  system["python_peers"] = c_.peers;

  Json results = Json{{"schema", "tilestage-e2e-results/1"},
                      {"system", system},
                      {"provenance", provenance},
                      {"stages", stages_},
                      {"time_to_train", bench::TimeToTrainResultsJson(run)},
                      {"data_stalls", data_stalls_},
                      {"steps", steps_}};
  {
    std::ofstream f(out_ + "/results.json");
    f << results.dump(2) << "\n";
    if (!f) return IOError("cannot write ", out_, "/results.json");
  }
  TS_ASSIGN_OR_RETURN(bench::E2eResults parsed,
                      bench::E2eResultsFromJson(results, out_ + "/results.json"));
  TS_RETURN_IF_ERROR(bench::WriteE2eReport(*LocalStorage(), out_ + "/report", parsed));
  PrintTable(parsed, bench::StagingAnalysisToJson(analysis));
  return Status::Ok();
}

void E2eRun::PrintTable(const bench::E2eResults& r, const Json& /*analysis*/) const {
  std::printf("\ntilestage bench e2e --preset %s: where the time went (%s)\n\n", c_.preset.c_str(),
              out_.c_str());
  if (r.time_to_train) {
    const bench::TimeToTrain& t = *r.time_to_train;
    auto pct = [&](double s) { return t.run_s > 0 ? 100.0 * s / t.run_s : 0.0; };
    std::printf("time to train %8.2f s  (run_start -> run_stop in mllog.txt)\n", t.run_s);
    std::printf("  staging     %8.2f s  %5.1f%%\n", t.staging_s, pct(t.staging_s));
    std::printf("  training    %8.2f s  %5.1f%%\n", t.training_s, pct(t.training_s));
    std::printf("  evaluation  %8.2f s  %5.1f%%\n", t.evaluation_s, pct(t.evaluation_s));
    std::printf("  other       %8.2f s  %5.1f%%  (mpirun start-up, model init, checkpoints)\n",
                t.other_s, pct(t.other_s));
    std::printf("staging/run %.3f", t.staging_per_run);
    if (t.staging_per_epoch) std::printf("   staging/epoch %.3f", *t.staging_per_epoch);
    if (t.mean_epoch_s) std::printf("   mean epoch %.2f s", *t.mean_epoch_s);
    std::printf("\n\n");
  }
  std::printf("%-16s %-10s %12s %-34s %12s %8s %-38s %12s %8s\n", "stage", "unit", "tilestage",
              "peer", "peer rate", "vs peer", "limit", "limit rate", "of limit");
  for (const auto& s : r.stages) {
    std::printf("%-16s %-10s %12.3f %-34s %12s %8s %-38s %12s %8s\n", s.name.c_str(),
                s.unit.c_str(), s.tilestage.rate, s.peer ? s.peer->name.c_str() : "-",
                s.peer ? Fmt(s.peer->rate, 3).c_str() : "-",
                s.vs_peer ? (Fmt(*s.vs_peer) + "x").c_str() : "-",
                s.limit ? s.limit->name.c_str() : "-",
                s.limit ? Fmt(s.limit->rate, 3).c_str() : "-",
                s.of_limit ? (Fmt(100.0 * *s.of_limit, 1) + "%").c_str() : "-");
  }
  if (r.data_stalls) {
    const bench::DataStalls& d = *r.data_stalls;
    std::printf("\ndata stalls (DS-Analyzer, %.0f samples): synthetic %.2f s, cached %.2f s, "
                "cold %.2f s\n  AU %.1f%%, prep stall %.2f s (%.1f%%), fetch stall %.2f s "
                "(%.1f%%)\n",
                d.samples, d.synthetic_s, d.cached_s, d.cold_s, d.au_percent, d.prep_stall_s,
                100.0 * d.prep_stall_share, d.fetch_stall_s, 100.0 * d.fetch_stall_share);
  }
  const Json& sys = r.system;
  std::printf("\nsystem: %s, %s, %s cores, %s; %s\n", sys.value("host", "").c_str(),
              sys.value("cpu", "").c_str(), sys.contains("cores") ? sys["cores"].dump().c_str() : "?",
              sys.value("os", "").c_str(), sys.value("mpi", "").c_str());
  std::printf("provenance: %s (git %s, %s)\n", r.provenance.value("command", "").c_str(),
              r.provenance.value("git", "").c_str(), r.provenance.value("time_utc", "").c_str());
  std::printf("report: %s/report/report.md, report.json, *.svg; results: %s/results.json; "
              "log: %s/mllog.txt\n",
              out_.c_str(), out_.c_str(), out_.c_str());
}

Status RunE2e(const E2eArgs& args) {
  TS_ASSIGN_OR_RETURN(E2eConfig config, PresetConfig(args.preset));
  if (!args.config.empty()) TS_RETURN_IF_ERROR(ApplyConfigFile(args.config, &config));
  if (args.np > 0) config.np = args.np;
  if (args.no_peers) config.peers = false;
  TS_ASSIGN_OR_RETURN(std::string root, FindSourceRoot());
  std::error_code ec;
  const std::string exe = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) return Internal("cannot read /proc/self/exe: ", ec.message());
  const std::string out = fs::absolute(args.out).lexically_normal().string();
  if (out == "/" || out.empty()) return InvalidArgument("--out ", args.out, ": refusing to use /");
  E2eRun run(config, out, root, exe);
  return run.Run();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<E2eArgs>();
  CLI::App* cmd = group->add_subcommand(
      "e2e", "End to end on real data: ingest, stage (mpirun), train + eval (mpirun), peers, "
             "limits, data stalls; writes mllog.txt, results.json and the report");
  cmd->add_option("--preset", args->preset, "tiny, small or medium")->capture_default_str();
  cmd->add_option("--config", args->config, "JSON object overriding the preset's settings");
  cmd->add_option("--out", args->out, "Output directory (its earlier e2e outputs are replaced)")->capture_default_str();
  cmd->add_option("--np", args->np, "MPI ranks for staging and training (default: 2)");
  cmd->add_flag("--no-peers", args->no_peers, "Skip the Python peers");
  cmd->callback([args, exit_code] { *exit_code = Report(RunE2e(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
