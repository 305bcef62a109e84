// Facts about the machine and the run for the results document's "system" and "provenance"
// parts: host, CPU, cores, memory, OS, compiler, MPI, GEMM kernel, load; the time; a tool's
// version line; the source tree the benchmark's data and peer scripts come from.
//
// Thread-safety: all functions are safe to call concurrently (they read /proc, /etc and run
// short commands).
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/mllog.h"  // Json
#include "tiling/status.h"

namespace tilestage::bench {

// host, kernel, machine, cpu, cores, memory_bytes, os, compiler, mpi, gemm_kernel, load_average.
Json SystemInfo();

// "2026-12-06T04:18:28Z"
std::string NowUtc();

// What else used the cores while a benchmark ran (as bench/load_watch.py does for the Python
// drivers): the load average at both ends, and the busy CPU time /proc/stat counts less this
// process's and its waited-for children's (getrusage). A warning when the others used more than
// a tenth of a core on average: on a 2-core machine that alone moves the ratios.
class CoreUseWatch {
 public:
  CoreUseWatch();  // starts watching
  // {"load_average_before", "load_average_after", "others_cpu_s", "wall_s", "others_cores",
  //  "warning" (null when quiet)}
  Json Finish() const;

 private:
  std::string load_before_;
  double busy_s_ = 0, own_s_ = 0, wall_s_ = 0;
};

// The first line the command prints (stdout and stderr together, through the shell), or "" when
// it cannot run: "mpirun (Open MPI) 4.1.4" for {"mpirun", "--version"}.
std::string CommandFirstLine(const std::vector<std::string>& argv);

// The repository root (it holds examples/data/README.md and bench/e2e_run/peers.py), searched
// upwards from `exe`, then the working directory. NotFound says where it looked.
Result<std::string> FindSourceRoot(const std::string& exe);

}  // namespace tilestage::bench
