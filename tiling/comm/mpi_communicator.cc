// The Communicator over MPI: every call's return code becomes a Status (MPI_ERRORS_RETURN is set
// on each communicator this file creates, so MPI reports errors instead of aborting).

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>

#include "tiling/comm/checks.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_status.h"

namespace tilestage {
namespace {

using comm_internal::CheckRoot;
using comm_internal::MpiStatus;

// MPI counts are int: a larger count is refused rather than truncated.
Result<int> MpiCount(uint64_t n, const char* call) {
  if (n > static_cast<uint64_t>(INT_MAX))
    return InvalidArgument(call, ": ", n, " elements exceed MPI's int count");
  return static_cast<int>(n);
}

class MpiCommunicator : public Communicator {
 public:
  // Takes ownership of comm (freed by the destructor).
  static Result<std::unique_ptr<Communicator>> Adopt(MPI_Comm comm) {
    std::unique_ptr<MpiCommunicator> c(new MpiCommunicator(comm));
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN),
                                 "MPI_Comm_set_errhandler"));
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Comm_rank(comm, &c->rank_), "MPI_Comm_rank"));
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Comm_size(comm, &c->size_), "MPI_Comm_size"));
    return std::unique_ptr<Communicator>(std::move(c));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
    for (auto& [id, request] : requests_) comm_internal::ReportMpiFailure(MPI_Request_free(&request), "MPI_Request_free");
    comm_internal::ReportMpiFailure(MPI_Comm_free(&comm_), "MPI_Comm_free");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status Barrier() override { return MpiStatus(MPI_Barrier(comm_), "MPI_Barrier"); }
  Status Broadcast(std::span<float> data, int root) override {
    TS_RETURN_IF_ERROR(CheckRoot(root, size_, "Broadcast"));
    TS_ASSIGN_OR_RETURN(int n, MpiCount(data.size(), "MPI_Bcast"));
    return MpiStatus(MPI_Bcast(data.data(), n, MPI_FLOAT, root, comm_), "MPI_Bcast");
  }
  Status BroadcastBytes(std::string* bytes, int root) override {
    TS_RETURN_IF_ERROR(CheckRoot(root, size_, "BroadcastBytes"));
    uint64_t length = bytes->size();
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast"));
    bytes->resize(length);
    // Pieces below 2 GiB keep the int count honest for any length.
    constexpr uint64_t kPiece = INT_MAX / 2;
    for (uint64_t off = 0; off < length; off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, length - off));
      TS_RETURN_IF_ERROR(
          MpiStatus(MPI_Bcast(bytes->data() + off, n, MPI_CHAR, root, comm_), "MPI_Bcast"));
    }
    return Status::Ok();
  }
  Status AllreduceSum(std::span<float> data) override {
    return Allreduce(data.data(), data.size(), MPI_FLOAT, MPI_SUM);
  }
  Status AllreduceSum(std::span<double> data) override {
    return Allreduce(data.data(), data.size(), MPI_DOUBLE, MPI_SUM);
  }
  Status AllreduceMax(std::span<uint8_t> data) override {
    return Allreduce(data.data(), data.size(), MPI_UINT8_T, MPI_MAX);
  }
  Status AllreduceMin(std::span<int64_t> data) override {
    return Allreduce(data.data(), data.size(), MPI_INT64_T, MPI_MIN);
  }
  Result<int> StartAllreduceSum(std::span<float> data) override {
    TS_ASSIGN_OR_RETURN(int n, MpiCount(data.size(), "MPI_Iallreduce"));
    MPI_Request request;
    TS_RETURN_IF_ERROR(MpiStatus(
        MPI_Iallreduce(MPI_IN_PLACE, data.data(), n, MPI_FLOAT, MPI_SUM, comm_, &request),
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
  Status AllgatherBytesInPlace(std::span<uint8_t> buffer, std::span<const uint64_t> counts,
                               std::span<const uint64_t> offsets) override {
    TS_RETURN_IF_ERROR(comm_internal::CheckBlocks(buffer.size(), counts, offsets, size_,
                                                  "AllgatherBytesInPlace"));
    const size_t n = static_cast<size_t>(size_);
    std::vector<int> c(n), d(n);
    for (size_t r = 0; r < n; ++r) {
      TS_ASSIGN_OR_RETURN(c[r], MpiCount(counts[r], "MPI_Allgatherv"));
      TS_ASSIGN_OR_RETURN(d[r], MpiCount(offsets[r], "MPI_Allgatherv"));
    }
    return MpiStatus(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buffer.data(), c.data(),
                                    d.data(), MPI_BYTE, comm_),
                     "MPI_Allgatherv");
  }
  Result<std::vector<std::string>> GatherBytes(const std::string& bytes, int root) override {
    TS_RETURN_IF_ERROR(CheckRoot(root, size_, "GatherBytes"));
    TS_ASSIGN_OR_RETURN(int length, MpiCount(bytes.size(), "MPI_Gatherv"));
    const bool is_root = rank_ == root;
    std::vector<int> lengths(is_root ? size_ : 0), displs(lengths.size());
    TS_RETURN_IF_ERROR(MpiStatus(
        MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm_), "MPI_Gather"));
    uint64_t total = 0;
    for (size_t r = 0; r < lengths.size(); ++r) {
      TS_ASSIGN_OR_RETURN(displs[r], MpiCount(total, "MPI_Gatherv"));
      total += static_cast<uint64_t>(lengths[r]);
    }
    std::string all(total, '\0');
    TS_RETURN_IF_ERROR(MpiStatus(MPI_Gatherv(bytes.data(), length, MPI_CHAR, all.data(),
                                             lengths.data(), displs.data(), MPI_CHAR, root,
                                             comm_),
                                 "MPI_Gatherv"));
    std::vector<std::string> out;
    for (size_t r = 0; r < lengths.size(); ++r) out.push_back(all.substr(displs[r], lengths[r]));
    return out;
  }
  Result<std::unique_ptr<Communicator>> Split(int color, int key) override {
    MPI_Comm out = MPI_COMM_NULL;
    TS_RETURN_IF_ERROR(MpiStatus(
        MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &out), "MPI_Comm_split"));
    if (out == MPI_COMM_NULL) return std::unique_ptr<Communicator>();
    return Adopt(out);
  }
  Result<std::unique_ptr<Communicator>> SplitByNode() override {
    MPI_Comm out = MPI_COMM_NULL;
    TS_RETURN_IF_ERROR(MpiStatus(
        MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &out),
        "MPI_Comm_split_type"));
    return Adopt(out);
  }
  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);  // returns only when MPI cannot abort: exit anyway
    std::exit(exit_code);
  }

 private:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {}

  Status Allreduce(void* data, size_t n, MPI_Datatype type, MPI_Op op) {
    TS_ASSIGN_OR_RETURN(int count, MpiCount(n, "MPI_Allreduce"));
    return MpiStatus(MPI_Allreduce(MPI_IN_PLACE, data, count, type, op, comm_), "MPI_Allreduce");
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  int next_id_ = 1;
  std::map<int, MPI_Request> requests_;
};

Result<bool> MpiRunning() {
  int initialized = 0, finalized = 0;
  TS_RETURN_IF_ERROR(MpiStatus(MPI_Initialized(&initialized), "MPI_Initialized"));
  TS_RETURN_IF_ERROR(MpiStatus(MPI_Finalized(&finalized), "MPI_Finalized"));
  return initialized && !finalized;
}

}  // namespace

Result<std::unique_ptr<Communicator>> NewMpiCommunicator() {
  TS_ASSIGN_OR_RETURN(bool running, MpiRunning());
  if (!running) return FailedPrecondition("NewMpiCommunicator: MPI is not initialized");
  MPI_Comm comm = MPI_COMM_NULL;
  TS_RETURN_IF_ERROR(MpiStatus(MPI_Comm_dup(MPI_COMM_WORLD, &comm), "MPI_Comm_dup"));
  return MpiCommunicator::Adopt(comm);
}

Result<std::unique_ptr<Communicator>> NewWorldCommunicator() {
  TS_ASSIGN_OR_RETURN(bool running, MpiRunning());
  if (!running) return NewSingleProcessCommunicator();
  return NewMpiCommunicator();
}

}  // namespace tilestage
