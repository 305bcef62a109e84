// Start-up settings for MPI in a process that no launcher (mpirun, mpiexec, srun) started.
//
// Such a process is an MPI "singleton". Open MPI 4 then, by default, forks a supporting daemon
// (so that the singleton could later MPI_Comm_spawn) and opens the UCX point-to-point layer:
// together about 0.35 s of the ~0.45 s a `tilestage stage` run on a tiny store takes here. A
// singleton talks only to itself, so neither is needed: PrepareSingletonMpi sets Open MPI's MCA
// defaults for that case (isolated singleton, ob1 point-to-point layer) before MPI_Init. It never
// overrides a value the user set, and does nothing under a launcher. Other MPI implementations
// ignore OMPI_MCA_* variables.
//
// MpiSession initializes MPI for a command and finalizes it at the end; the command then talks
// to the other ranks only through a Communicator (communicator.h).
//
// Thread-safety: call from the main thread before MPI_Init and before any other thread reads the
// environment (setenv is not thread-safe).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

// True when the environment shows a launcher started this process (Open MPI's mpirun, a PMIx or
// PMI launcher such as MPICH's hydra or srun --mpi=pmix|pmi2).
bool StartedByMpiLauncher();

// Outside a launcher, sets the MCA defaults above (only those not already set) and returns the
// "NAME=value" pairs it set; under a launcher, sets nothing and returns an empty list.
std::vector<std::string> PrepareSingletonMpi();

// MPI for the lifetime of a command. Every Communicator over MPI must be destroyed before it.
class MpiSession {
 public:
  enum class When {
    kAlways,          // also a process outside any launcher (an MPI singleton)
    kUnderLauncher,   // only when StartedByMpiLauncher(); otherwise MPI stays uninitialized
  };
  // Initializes MPI (MPI_THREAD_FUNNELED) unless it already is, with PrepareSingletonMpi's
  // settings first. IOError with MPI's message when MPI_Init_thread fails.
  static Result<std::unique_ptr<MpiSession>> Start(When when = When::kAlways);
  // Finalizes MPI when Start initialized it.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  explicit MpiSession(bool initialized_here) : initialized_here_(initialized_here) {}
  bool initialized_here_;
};

}  // namespace tilestage
