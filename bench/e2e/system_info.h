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

// The first line the command prints (stdout and stderr together, through the shell), or "" when
// it cannot run: "mpirun (Open MPI) 4.1.4" for {"mpirun", "--version"}.
std::string CommandFirstLine(const std::vector<std::string>& argv);

// The repository root (it holds examples/data/README.md and bench/e2e_run/peers.py), searched
// upwards from `exe`, then the working directory. NotFound says where it looked.
Result<std::string> FindSourceRoot(const std::string& exe);

}  // namespace tilestage::bench
