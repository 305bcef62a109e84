#include "tiling/comm/communicator.h"

#include <chrono>
#include <cstdlib>
#include <limits>
#include <thread>

#include "tiling/comm/checks.h"

namespace tilestage {
namespace {

using comm_internal::CheckRoot;

class SingleProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status Barrier() override { return Status::Ok(); }
  Status Broadcast(std::span<float>, int root) override {
    return CheckRoot(root, 1, "Broadcast");
  }
  Status BroadcastBytes(std::string*, int root) override {
    return CheckRoot(root, 1, "BroadcastBytes");
  }
  Status AllreduceSum(std::span<float>) override { return Status::Ok(); }
  Status AllreduceSum(std::span<double>) override { return Status::Ok(); }
  Status AllreduceMax(std::span<uint8_t>) override { return Status::Ok(); }
  Status AllreduceMin(std::span<int64_t>) override { return Status::Ok(); }
  Result<int> StartAllreduceSum(std::span<float>) override { return 0; }
  Result<bool> Test(int) override { return true; }
  Status Wait(int) override { return Status::Ok(); }
  Result<std::vector<uint64_t>> AllgatherU64(uint64_t value) override {
    return std::vector<uint64_t>{value};
  }
  Status AllgatherBytesInPlace(std::span<uint8_t> buffer, std::span<const uint64_t> counts,
                               std::span<const uint64_t> offsets) override {
    return comm_internal::CheckBlocks(buffer.size(), counts, offsets, 1, "AllgatherBytesInPlace");
  }
  Result<std::vector<std::string>> GatherBytes(const std::string& bytes, int root) override {
    TS_RETURN_IF_ERROR(CheckRoot(root, 1, "GatherBytes"));
    return std::vector<std::string>{bytes};
  }
  Result<std::unique_ptr<Communicator>> Split(int color, int) override {
    if (color < 0) return std::unique_ptr<Communicator>();
    return NewSingleProcessCommunicator();
  }
  Result<std::unique_ptr<Communicator>> SplitByNode() override {
    return NewSingleProcessCommunicator();
  }
  [[noreturn]] void Abort(int exit_code) override { std::exit(exit_code); }
};

}  // namespace

std::unique_ptr<Communicator> NewSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

Status AgreeStatus(Communicator& comm, const Status& mine) {
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  int64_t first = mine.ok() ? kNone : comm.rank();
  TS_RETURN_IF_ERROR(comm.AllreduceMin(std::span<int64_t>(&first, 1)));
  if (first == kNone) return Status::Ok();
  // The failing rank's code as one byte, then its message.
  std::string packed;
  if (comm.rank() == first) packed = static_cast<char>(mine.code()) + mine.message();
  TS_RETURN_IF_ERROR(comm.BroadcastBytes(&packed, static_cast<int>(first)));
  if (packed.empty()) return Internal("AgreeStatus: rank ", first, " sent no status");
  return Status(static_cast<StatusCode>(packed[0]), packed.substr(1));
}

Status IdleBarrier(Communicator& comm) {
  float arrived = 1.0f;  // outlives the request: returned only once it completed
  TS_ASSIGN_OR_RETURN(const int request, comm.StartAllreduceSum(std::span<float>(&arrived, 1)));
  while (true) {
    TS_ASSIGN_OR_RETURN(const bool done, comm.Test(request));
    if (done) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Result<int> CountNodes(Communicator& comm) {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> node, comm.SplitByNode());
  TS_ASSIGN_OR_RETURN(std::vector<uint64_t> leaders,
                      comm.AllgatherU64(node->rank() == 0 ? 1 : 0));
  int nodes = 0;
  for (uint64_t leader : leaders) nodes += static_cast<int>(leader);
  return nodes;
}

}  // namespace tilestage
