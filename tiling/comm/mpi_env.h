// Start-up settings for Open MPI, chosen for where the ranks run.
//
// A process that no launcher (mpirun, mpiexec, srun) started is an MPI "singleton". Open MPI 4
// then, by default, forks a supporting daemon (so that the singleton could later MPI_Comm_spawn)
// and opens the UCX point-to-point layer: together about 0.35 s of the ~0.45 s a `tilestage
// stage` run on a tiny store takes here. A singleton talks only to itself, so neither is needed.
// Under Open MPI's mpirun with every rank on this node, choosing the point-to-point layer (UCX, or
// the cm layer's network libraries where a site excludes UCX, as Debian's does) costs 0.2 s of
// MPI_Init's 0.26 s (`mpirun -np 2`, 2 ranks on one node): ob1 over shared memory is all such
// ranks need. PrepareMpiStartup sets Open MPI's MCA defaults for both cases (singleton: isolated,
// pml ob1; one node: pml ob1) before MPI_Init, and where it chose ob1, HWLOC_COMPONENTS without
// hwloc's PCI and Linux I/O discovery, which only places network transports. It never
// overrides a choice the user or the site made (an OMPI_MCA_* variable, which is also how mpirun
// passes its --mca options, the user's HWLOC_COMPONENTS, or a line in Open MPI's parameter files;
// a file line that only excludes other components, "pml = ^ucx", leaves the choice open), leaves
// runs over several nodes and other launchers alone, and does nothing at all with
// TILESTAGE_MPI_DEFAULTS=off.
// Other MPI implementations ignore OMPI_MCA_* variables.
//
// Under a launcher, once MPI has started, MpiSession also turns Nagle's algorithm off on the
// rank's TCP connections to this node (SendWithoutDelayOnLoopbackConnections): Open MPI 4.1 with
// PMIx 4 talks to the node's PMIx server (mpirun or orted) over loopback TCP, and the fence in
// MPI_Finalize waited out the 40 ms delayed ACK on that connection: MPI_Finalize took 44-51 ms of
// a `mpirun -np 2` run, 4-5 ms with TCP_NODELAY on the ranks' side. Also off with
// TILESTAGE_MPI_DEFAULTS=off.
//
// MpiSession initializes MPI for a command and finalizes it at the end; the command then talks
// to the other ranks only through a Communicator (communicator.h).
//
// Thread-safety: call from the main thread before MPI_Init and before any other thread reads the
// environment (setenv is not thread-safe).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

// True when the environment shows a launcher started this process (Open MPI's mpirun, a PMIx or
// PMI launcher such as MPICH's hydra or srun --mpi=pmix|pmi2).
bool StartedByMpiLauncher();

struct MpiStartup {
  std::vector<std::string> set;  // the "NAME=value" pairs set, in order
  // An isolated singleton's own session directory base (orte_tmpdir_base), created here so that
  // concurrent singletons do not share one; whoever calls MPI_Init removes it after MPI_Finalize.
  std::string own_session_base;
};

// Sets the MCA defaults above for a singleton or a one-node mpirun run (only those neither the
// environment nor a parameter file sets).
MpiStartup PrepareMpiStartup();

// Sets TCP_NODELAY on every connected TCP socket of this process whose peer is a loopback
// address; returns how many. A send on them is no longer held back for an earlier one's ACK.
int SendWithoutDelayOnLoopbackConnections();

// MPI for the lifetime of a command. Every Communicator over MPI must be destroyed before it.
class MpiSession {
 public:
  enum class When {
    kAlways,          // also a process outside any launcher (an MPI singleton)
    kUnderLauncher,   // only when StartedByMpiLauncher(); otherwise MPI stays uninitialized
  };
  // Initializes MPI (MPI_THREAD_FUNNELED) unless it already is, with PrepareMpiStartup's
  // settings first. IOError with MPI's message when MPI_Init_thread fails.
  static Result<std::unique_ptr<MpiSession>> Start(When when = When::kAlways);
  // Finalizes MPI when Start initialized it, and removes the singleton's session base.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  MpiSession(bool initialized_here, std::string own_session_base)
      : initialized_here_(initialized_here), own_session_base_(std::move(own_session_base)) {}
  bool initialized_here_;
  std::string own_session_base_;
};

}  // namespace tilestage
