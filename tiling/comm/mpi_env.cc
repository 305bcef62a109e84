#include "tiling/comm/mpi_env.h"

#include <cstdlib>

#include "tiling/comm/mpi_status.h"

namespace tilestage {

bool StartedByMpiLauncher() {
  // Open MPI's mpirun; PMIx launchers (Open MPI >= 4, srun --mpi=pmix); PMI-1/2 launchers
  // (MPICH/Intel MPI hydra, srun --mpi=pmi2); MPICH's hydra also sets MPI_LOCALNRANKS.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                           "PMI_RANK", "PMI_SIZE", "PMI_FD", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

std::vector<std::string> PrepareSingletonMpi() {
  std::vector<std::string> set;
  if (StartedByMpiLauncher()) return set;
  // isolated: no supporting daemon (it only serves MPI_Comm_spawn, which tilestage never calls).
  // pml ob1: the shared-memory/self point-to-point layer instead of UCX, whose start-up probes
  // network devices a single process never uses.
  static const char* const kDefaults[][2] = {{"OMPI_MCA_ess_singleton_isolated", "1"},
                                             {"OMPI_MCA_pml", "ob1"}};
  for (const auto& [name, value] : kDefaults) {
    if (std::getenv(name) != nullptr) continue;
    if (::setenv(name, value, /*overwrite=*/0) == 0) set.push_back(std::string(name) + "=" + value);
  }
  return set;
}

Result<std::unique_ptr<MpiSession>> MpiSession::Start(When when) {
  int initialized = 0;
  TS_RETURN_IF_ERROR(comm_internal::MpiStatus(MPI_Initialized(&initialized), "MPI_Initialized"));
  if (initialized || (when == When::kUnderLauncher && !StartedByMpiLauncher()))
    return std::unique_ptr<MpiSession>(new MpiSession(false));
  PrepareSingletonMpi();  // outside mpirun: skip Open MPI's singleton daemon and UCX start-up
  int provided = 0;
  TS_RETURN_IF_ERROR(comm_internal::MpiStatus(
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread"));
  if (provided < MPI_THREAD_FUNNELED) {
    TS_RETURN_IF_ERROR(comm_internal::MpiStatus(MPI_Finalize(), "MPI_Finalize"));
    return FailedPrecondition("MPI_Init_thread: the MPI library provides thread level ", provided,
                              ", tilestage needs MPI_THREAD_FUNNELED");
  }
  return std::unique_ptr<MpiSession>(new MpiSession(true));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  if (!initialized_here_ || MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
  comm_internal::ReportMpiFailure(MPI_Finalize(), "MPI_Finalize");
}

}  // namespace tilestage
