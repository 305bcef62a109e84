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
// Thread-safety: call from the main thread before MPI_Init and before any other thread reads the
// environment (setenv is not thread-safe).
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

namespace tilestage {

// True when the environment shows a launcher started this process (Open MPI's mpirun, a PMIx or
// PMI launcher such as MPICH's hydra or srun --mpi=pmix|pmi2).
bool StartedByMpiLauncher();

// Outside a launcher, sets the MCA defaults above (only those not already set) and returns the
// "NAME=value" pairs it set; under a launcher, sets nothing and returns an empty list.
std::vector<std::string> PrepareSingletonMpi();

// Initializes MPI (MPI_THREAD_FUNNELED) unless it already is, with PrepareSingletonMpi's settings
// first. Returns true when this call initialized MPI, so the caller also calls MPI_Finalize.
bool InitMpiIfNeeded();

// Collective over comm: the number of nodes (shared-memory domains, MPI_COMM_TYPE_SHARED) its
// ranks run on.
int CountNodes(MPI_Comm comm);

}  // namespace tilestage
