// Communicator: the one seam between tilestage and MPI. Ingest gathers its ranks' shard lists and
// broadcasts the merged outcome, the stager agrees on statuses and redistributes shard bytes
// among node leaders, the loader CLI gathers per-rank reports, and the trainer broadcasts weights
// and sums gradients: all through this interface, never through MPI calls of their own.
//
// Implementations: a single-process one (rank 0 of 1: every collective returns at once with the
// caller's own data) and one over an MPI communicator (a duplicate of MPI_COMM_WORLD, or a split
// of another MPI communicator). Both pass tests/comm's conformance suite. Every MPI return code is
// checked; an MPI error comes back as IOError "<MPI call>: <MPI's error string>".
//
// Collectives (everything but rank/size/Abort) must be called by every rank of the communicator
// in the same order. Thread-safety: one thread calls a communicator (MPI is initialized with at
// least MPI_THREAD_FUNNELED, see mpi_env.h); different communicators are independent objects but
// are still driven from that same thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual Status Barrier() = 0;
  virtual Status Broadcast(std::span<float> data, int root) = 0;
  // Every rank receives root's bytes (other ranks' `bytes` are replaced, whatever their size).
  virtual Status BroadcastBytes(std::string* bytes, int root) = 0;
  // In place, blocking.
  virtual Status AllreduceSum(std::span<float> data) = 0;
  virtual Status AllreduceSum(std::span<double> data) = 0;
  virtual Status AllreduceMax(std::span<uint8_t> data) = 0;
  virtual Status AllreduceMin(std::span<int64_t> data) = 0;
  // Starts an in-place sum; the buffer must stay untouched until Wait (or a true Test).
  virtual Result<int> StartAllreduceSum(std::span<float> data) = 0;
  // Lets MPI progress the request; true when it is complete (then it is released).
  virtual Result<bool> Test(int request) = 0;
  virtual Status Wait(int request) = 0;
  virtual Result<std::vector<uint64_t>> AllgatherU64(uint64_t value) = 0;
  // Rank r's counts[r] bytes already sit at buffer[offsets[r]]; afterwards every rank's buffer
  // holds every rank's block. counts and offsets have size() entries and are equal on all ranks.
  virtual Status AllgatherBytesInPlace(std::span<uint8_t> buffer,
                                       std::span<const uint64_t> counts,
                                       std::span<const uint64_t> offsets) = 0;
  // Root receives every rank's bytes in rank order; other ranks receive an empty vector.
  virtual Result<std::vector<std::string>> GatherBytes(const std::string& bytes, int root) = 0;
  // Ranks with the same color form a new communicator, ordered by key (then by rank). A rank
  // with a negative color takes part in the call but gets nullptr.
  virtual Result<std::unique_ptr<Communicator>> Split(int color, int key) = 0;
  // The ranks that share this rank's node (memory), in rank order.
  virtual Result<std::unique_ptr<Communicator>> SplitByNode() = 0;
  // Ends every rank of the job (MPI_Abort); the single-process version exits.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

std::unique_ptr<Communicator> NewSingleProcessCommunicator();
// Over MPI_COMM_WORLD (duplicated). MPI must be initialized; FailedPrecondition otherwise.
Result<std::unique_ptr<Communicator>> NewMpiCommunicator();
// The job's communicator: NewMpiCommunicator() while MPI is initialized (and not finalized), a
// single-process one otherwise (a plain run outside mpirun needs no MPI at all).
Result<std::unique_ptr<Communicator>> NewWorldCommunicator();

// Collective: every rank learns the status of the lowest-ranked rank whose `mine` failed (its
// code and message), or Ok when none failed, so all ranks leave a phase together with one error.
Status AgreeStatus(Communicator& comm, const Status& mine);
// Collective: a barrier for ranks with nothing to do until the others arrive. It waits on a
// non-blocking allreduce, testing it every millisecond and sleeping in between, so a waiting
// rank leaves its core to the ranks still working: a blocking MPI collective spins on its core,
// which on a full node is a core taken from them.
Status IdleBarrier(Communicator& comm);
// Collective: the number of nodes (shared-memory domains) the communicator's ranks run on.
Result<int> CountNodes(Communicator& comm);

}  // namespace tilestage
