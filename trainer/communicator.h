// Communicator: the seam between the trainer and MPI. Data parallelism needs a broadcast of the
// initial weights, in-place sums of gradient buckets (blocking, or started and later completed
// so that they overlap the backward pass), and an allgather for cross-rank checksums.
//
// Implementations: a single-process one (size 1, every call is a no-op) and one over an MPI
// communicator (a duplicate of MPI_COMM_WORLD). MPI errors come back as Status with MPI's own
// error string. Thread-safety: one thread calls a communicator (MPI is initialized with at least
// MPI_THREAD_FUNNELED by the caller).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::trainer {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual Status Broadcast(std::span<float> data, int root) = 0;
  virtual Status AllreduceSum(std::span<float> data) = 0;   // in place, blocking
  virtual Status AllreduceSum(std::span<double> data) = 0;  // in place, blocking
  // Starts an in-place sum; the buffer must stay untouched until Wait (or a true Test).
  virtual Result<int> StartAllreduceSum(std::span<float> data) = 0;
  // Lets MPI progress the request; true when it is complete (then it is released).
  virtual Result<bool> Test(int request) = 0;
  virtual Status Wait(int request) = 0;
  virtual Result<std::vector<uint64_t>> AllgatherU64(uint64_t value) = 0;
  virtual Status Barrier() = 0;
  // Ends every rank of the job (MPI_Abort); the single-process version exits.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

std::unique_ptr<Communicator> NewSingleProcessCommunicator();
// Over MPI_COMM_WORLD (duplicated). MPI must be initialized; FailedPrecondition otherwise.
Result<std::unique_ptr<Communicator>> NewMpiCommunicator();

}  // namespace tilestage::trainer
