#include "loaders/mpi_env.h"

#include <mpi.h>

#include <cstdlib>

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

bool InitMpiIfNeeded() {
  int initialized = 0, provided = 0;
  MPI_Initialized(&initialized);
  if (initialized) return false;
  PrepareSingletonMpi();  // outside mpirun: skip Open MPI's singleton daemon and UCX start-up
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  return true;
}

int CountNodes(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int node_rank = 0;
  MPI_Comm_rank(node, &node_rank);
  MPI_Comm_free(&node);
  int leader = node_rank == 0 ? 1 : 0, nodes = 0;
  MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, comm);
  return nodes;
}

}  // namespace tilestage
