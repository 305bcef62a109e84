#include "trainer/communicator.h"

// The C API only: Open MPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdlib>
#include <map>

namespace tilestage::trainer {
namespace {

class SingleProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status Broadcast(std::span<float>, int) override { return Status::Ok(); }
  Status AllreduceSum(std::span<float>) override { return Status::Ok(); }
  Status AllreduceSum(std::span<double>) override { return Status::Ok(); }
  Result<int> StartAllreduceSum(std::span<float>) override { return 0; }
  Result<bool> Test(int) override { return true; }
  Status Wait(int) override { return Status::Ok(); }
  Result<std::vector<uint64_t>> AllgatherU64(uint64_t value) override {
    return std::vector<uint64_t>{value};
  }
  Status Barrier() override { return Status::Ok(); }
  [[noreturn]] void Abort(int exit_code) override { std::exit(exit_code); }
};

Status MpiStatus(int code, const char* what) {
  if (code == MPI_SUCCESS) return Status::Ok();
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  return Internal(what, ": ", std::string(message, length));
}

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    // Return error codes instead of aborting, so they become Status.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  ~MpiCommunicator() override {
    for (auto& [id, request] : requests_) MPI_Request_free(&request);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status Broadcast(std::span<float> data, int root) override {
    return MpiStatus(MPI_Bcast(data.data(), int(data.size()), MPI_FLOAT, root, comm_), "MPI_Bcast");
  }
  Status AllreduceSum(std::span<float> data) override {
    return MpiStatus(
        MPI_Allreduce(MPI_IN_PLACE, data.data(), int(data.size()), MPI_FLOAT, MPI_SUM, comm_),
        "MPI_Allreduce");
  }
  Status AllreduceSum(std::span<double> data) override {
    return MpiStatus(
        MPI_Allreduce(MPI_IN_PLACE, data.data(), int(data.size()), MPI_DOUBLE, MPI_SUM, comm_),
        "MPI_Allreduce");
  }
  Result<int> StartAllreduceSum(std::span<float> data) override {
    MPI_Request request;
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Iallreduce(MPI_IN_PLACE, data.data(), int(data.size()),
                                                MPI_FLOAT, MPI_SUM, comm_, &request),
                                 "MPI_Iallreduce"));
    const int id = next_id_++;
    requests_[id] = request;
    return id;
  }
  Result<bool> Test(int id) override {
    auto it = requests_.find(id);
    if (it == requests_.end()) return true;
    int done = 0;
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Test(&it->second, &done, MPI_STATUS_IGNORE), "MPI_Test"));
    if (done) requests_.erase(it);
    return done != 0;
  }
  Status Wait(int id) override {
    auto it = requests_.find(id);
    if (it == requests_.end()) return Status::Ok();
    Status status = MpiStatus(MPI_Wait(&it->second, MPI_STATUS_IGNORE), "MPI_Wait");
    requests_.erase(it);
    return status;
  }
  Result<std::vector<uint64_t>> AllgatherU64(uint64_t value) override {
    std::vector<uint64_t> all(size_);
    TS_RETURN_IF_ERROR(
        MpiStatus(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_),
                  "MPI_Allgather"));
    return all;
  }
  Status Barrier() override { return MpiStatus(MPI_Barrier(comm_), "MPI_Barrier"); }
  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::exit(exit_code);
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  int next_id_ = 1;
  std::map<int, MPI_Request> requests_;
};

}  // namespace

std::unique_ptr<Communicator> NewSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

Result<std::unique_ptr<Communicator>> NewMpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return FailedPrecondition("NewMpiCommunicator: MPI is not initialized");
  MPI_Comm comm;
  TS_RETURN_IF_ERROR(MpiStatus(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup"));
  return std::unique_ptr<Communicator>(new MpiCommunicator(comm));
}

}  // namespace tilestage::trainer
