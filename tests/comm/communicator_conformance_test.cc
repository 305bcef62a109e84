// One conformance suite for every Communicator: the single-process one and the one over MPI. The
// binary runs as one process (the MPI communicator is then a singleton of size 1) and under
// `mpirun -np 2` (size 2); every expectation is computed from rank() and size(), so the same tests
// hold for any rank count. Both implementations are checked in the same process: the
// single-process one stays size 1 under mpirun.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>  // clock_gettime

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_util.h"
#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"
#include "tiling/comm/mpi_status.h"

namespace tilestage {
namespace {

struct SingleProcessEnv {
  static std::unique_ptr<Communicator> Make() { return NewSingleProcessCommunicator(); }
};
struct MpiEnv {
  static std::unique_ptr<Communicator> Make() {
    auto comm = NewMpiCommunicator();
    EXPECT_TRUE(comm.ok()) << comm.status().ToString();
    return comm.ok() ? std::move(comm).value() : nullptr;
  }
};

template <typename Env>
class CommunicatorConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(comm_, nullptr); }
  Communicator& comm() { return *comm_; }
  int rank() { return comm_->rank(); }
  int size() { return comm_->size(); }
  std::unique_ptr<Communicator> comm_ = Env::Make();
};

using Envs = ::testing::Types<SingleProcessEnv, MpiEnv>;
class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, SingleProcessEnv> ? "SingleProcess" : "Mpi";
  }
};
TYPED_TEST_SUITE(CommunicatorConformanceTest, Envs, EnvNames);

// Bytes that differ per rank and per length, so a misplaced block shows.
std::string RankBytes(int rank, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (rank * 7 + i) % 26);
  return s;
}

TYPED_TEST(CommunicatorConformanceTest, RanksAreDistinctAndNumberedFromZero) {
  ASSERT_GE(this->size(), 1);
  auto all = this->comm().AllgatherU64(static_cast<uint64_t>(this->rank()));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<uint64_t> want(this->size());
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(*all, want);
  EXPECT_TRUE(this->comm().Barrier().ok());
}

TYPED_TEST(CommunicatorConformanceTest, BroadcastFloatsFromTheLastRankReachesEveryRank) {
  const int root = this->size() - 1;
  std::vector<float> data(1000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = this->rank() == root ? 0.5f * float(i) : -1.0f;
  ASSERT_TRUE(this->comm().Broadcast(data, root).ok());
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(data[i], 0.5f * float(i)) << i;
}

TYPED_TEST(CommunicatorConformanceTest, BroadcastBytesGivesEveryRankTheRootsBytesAndLength) {
  for (const size_t length : {size_t{0}, size_t{1}, size_t{100000}}) {
    std::string bytes = this->rank() == 0 ? RankBytes(0, length) : std::string(77, 'x');
    ASSERT_TRUE(this->comm().BroadcastBytes(&bytes, 0).ok());
    EXPECT_EQ(bytes, RankBytes(0, length)) << length;
  }
}

TYPED_TEST(CommunicatorConformanceTest, AllreduceSumsFloatsAndDoublesInPlace) {
  const int n = this->size();
  std::vector<float> f = {float(this->rank() + 1), 1.0f};
  std::vector<double> d = {0.25 * (this->rank() + 1), -1.0};
  ASSERT_TRUE(this->comm().AllreduceSum(std::span<float>(f)).ok());
  ASSERT_TRUE(this->comm().AllreduceSum(std::span<double>(d)).ok());
  EXPECT_EQ(f, (std::vector<float>{float(n * (n + 1) / 2), float(n)}));
  EXPECT_EQ(d, (std::vector<double>{0.25 * n * (n + 1) / 2, -double(n)}));
}

TYPED_TEST(CommunicatorConformanceTest, AllreduceMaxOfBytesAndMinOfInt64) {
  const int last = this->size() - 1;
  std::vector<uint8_t> flags = {uint8_t(this->rank() == last ? 1 : 0), 0, uint8_t(200)};
  ASSERT_TRUE(this->comm().AllreduceMax(flags).ok());
  EXPECT_EQ(flags, (std::vector<uint8_t>{1, 0, 200}));
  std::vector<int64_t> values = {int64_t{1} << 40 | this->rank(), -int64_t(this->rank())};
  ASSERT_TRUE(this->comm().AllreduceMin(values).ok());
  EXPECT_EQ(values, (std::vector<int64_t>{int64_t{1} << 40, -int64_t(last)}));
}

TYPED_TEST(CommunicatorConformanceTest, StartedSumsCompleteThroughTestOrWait) {
  const int n = this->size();
  std::vector<float> a(4096, 1.0f), b(16, float(this->rank()));
  auto ra = this->comm().StartAllreduceSum(a);
  auto rb = this->comm().StartAllreduceSum(b);
  ASSERT_TRUE(ra.ok() && rb.ok());
  bool done = false;
  while (!done) {
    auto t = this->comm().Test(*ra);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    done = *t;
  }
  ASSERT_TRUE(this->comm().Wait(*rb).ok());
  EXPECT_EQ(a, std::vector<float>(4096, float(n)));
  EXPECT_EQ(b, std::vector<float>(16, float(n * (n - 1) / 2)));
}

TYPED_TEST(CommunicatorConformanceTest, GatherBytesGivesTheRootEveryRanksBytesInRankOrder) {
  for (const int root : {0, this->size() - 1}) {
    // Rank r sends 3r bytes: rank 0 sends nothing, which must still take its place.
    auto got = this->comm().GatherBytes(RankBytes(this->rank(), 3 * this->rank()), root);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (this->rank() != root) {
      EXPECT_TRUE(got->empty());
      continue;
    }
    ASSERT_EQ(got->size(), size_t(this->size()));
    for (int r = 0; r < this->size(); ++r) EXPECT_EQ((*got)[r], RankBytes(r, 3 * r)) << r;
  }
}

TYPED_TEST(CommunicatorConformanceTest, AllgatherBytesInPlaceFillsEveryRanksBlockOnly) {
  const int n = this->size();
  const uint64_t block = 1000;
  // Blocks of different lengths with gaps between them; the gaps must stay untouched.
  std::vector<uint64_t> counts(n), offsets(n);
  for (int r = 0; r < n; ++r) {
    counts[r] = block - 10 * r;
    offsets[r] = r * (block + 24);
  }
  std::vector<uint8_t> buffer(n * (block + 24), 0xee);
  const std::string mine = RankBytes(this->rank(), counts[this->rank()]);
  std::memcpy(buffer.data() + offsets[this->rank()], mine.data(), mine.size());
  ASSERT_TRUE(this->comm().AllgatherBytesInPlace(buffer, counts, offsets).ok());
  for (int r = 0; r < n; ++r) {
    const std::string want = RankBytes(r, counts[r]);
    EXPECT_EQ(std::memcmp(buffer.data() + offsets[r], want.data(), want.size()), 0) << r;
    for (uint64_t i = offsets[r] + counts[r]; i < offsets[r] + block + 24; ++i)
      ASSERT_EQ(buffer[i], 0xee) << "gap byte " << i;
  }
}

TYPED_TEST(CommunicatorConformanceTest, BlockOutsideTheBufferOrWrongCountIsInvalidArgument) {
  const int n = this->size();
  std::vector<uint8_t> buffer(64);
  std::vector<uint64_t> counts(n, 8), offsets(n, 60);  // 60 + 8 > 64
  const Status outside = this->comm().AllgatherBytesInPlace(buffer, counts, offsets);
  EXPECT_EQ(outside.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(outside.message().find("outside the buffer of 64 bytes"), std::string::npos)
      << outside.message();
  std::vector<uint64_t> too_many(n + 1, 0);
  EXPECT_EQ(this->comm().AllgatherBytesInPlace(buffer, too_many, too_many).code(),
            StatusCode::kInvalidArgument);
}

TYPED_TEST(CommunicatorConformanceTest, RootOutsideTheCommunicatorIsInvalidArgument) {
  std::string bytes = "x";
  std::vector<float> data(1);
  for (const int root : {-1, this->size()}) {
    const Status b = this->comm().BroadcastBytes(&bytes, root);
    EXPECT_EQ(b.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(b.message().find("root " + std::to_string(root)), std::string::npos) << b.message();
    EXPECT_EQ(this->comm().Broadcast(data, root).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(this->comm().GatherBytes(bytes, root).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TYPED_TEST(CommunicatorConformanceTest, IdleBarrierWaitsForTheLastRankWithoutSpinning) {
  // Rank 0 arrives last, after writing a file: every rank sees the file once the barrier returns,
  // and a rank that waited used little CPU doing so (a spinning wait would use all of it).
  std::optional<testing::TempDir> rank0_dir;
  std::string dir;
  if (this->rank() == 0) dir = rank0_dir.emplace().path();
  ASSERT_TRUE(this->comm().BroadcastBytes(&dir, 0).ok());
  const std::string marker = dir + "/arrived";
  timespec cpu_before{}, cpu_after{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_before);
  if (this->rank() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::ofstream(marker) << "here";
  }
  ASSERT_TRUE(IdleBarrier(this->comm()).ok());
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_after);
  EXPECT_TRUE(std::filesystem::exists(marker));
  const double cpu_s = static_cast<double>(cpu_after.tv_sec - cpu_before.tv_sec) +
                       1e-9 * static_cast<double>(cpu_after.tv_nsec - cpu_before.tv_nsec);
  if (this->rank() != 0) {
    EXPECT_LT(cpu_s, 0.1) << "rank " << this->rank() << " spun while waiting";
  }
  ASSERT_TRUE(this->comm().Barrier().ok());  // no rank looks at the file once rank 0 removes it
}

TYPED_TEST(CommunicatorConformanceTest, AgreeStatusIsOkWhenEveryRankIsOk) {
  EXPECT_TRUE(AgreeStatus(this->comm(), Status::Ok()).ok());
}

TYPED_TEST(CommunicatorConformanceTest, AgreeStatusGivesEveryRankTheLowestFailingRanksStatus) {
  // The last two ranks fail with different codes; everyone learns the lower one's.
  const int first = std::max(0, this->size() - 2);
  Status mine;
  if (this->rank() == first) mine = DataLoss("shard s.tss of rank ", this->rank(), " is corrupt");
  if (this->rank() > first) mine = IOError("rank ", this->rank(), " cannot write");
  const Status agreed = AgreeStatus(this->comm(), mine);
  EXPECT_EQ(agreed.code(), StatusCode::kDataLoss);
  EXPECT_EQ(agreed.message(), "shard s.tss of rank " + std::to_string(first) + " is corrupt");
}

TYPED_TEST(CommunicatorConformanceTest, SplitGroupsRanksByColorOrderedByKey) {
  // Color: parity of the rank; key: descending rank, so the highest rank of a color comes first.
  auto sub = this->comm().Split(this->rank() % 2, -this->rank());
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  ASSERT_NE(*sub, nullptr);
  int same_color = 0, higher_same_color = 0;
  for (int r = 0; r < this->size(); ++r) {
    if (r % 2 != this->rank() % 2) continue;
    ++same_color;
    if (r > this->rank()) ++higher_same_color;
  }
  EXPECT_EQ((*sub)->size(), same_color);
  EXPECT_EQ((*sub)->rank(), higher_same_color);
  // The sub-communicator works on its own: its ranks sum to what the color's ranks are.
  std::vector<double> sum = {double(this->rank())};
  ASSERT_TRUE((*sub)->AllreduceSum(std::span<double>(sum)).ok());
  double want = 0;
  for (int r = this->rank() % 2; r < this->size(); r += 2) want += r;
  EXPECT_EQ(sum[0], want);
}

TYPED_TEST(CommunicatorConformanceTest, SplitWithNegativeColorLeavesThatRankOut) {
  // Rank 0 stays out; the others form one communicator.
  auto sub = this->comm().Split(this->rank() == 0 ? -1 : 0, this->rank());
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  if (this->rank() == 0) {
    EXPECT_EQ(*sub, nullptr);
  } else {
    ASSERT_NE(*sub, nullptr);
    EXPECT_EQ((*sub)->size(), this->size() - 1);
    EXPECT_EQ((*sub)->rank(), this->rank() - 1);
  }
}

TYPED_TEST(CommunicatorConformanceTest, OneHostIsOneNode) {
  // ctest runs every rank on this machine.
  auto node = this->comm().SplitByNode();
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ((*node)->size(), this->size());
  EXPECT_EQ((*node)->rank(), this->rank());
  auto nodes = CountNodes(this->comm());
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(*nodes, 1);
}

// The one error mapping of the MPI implementation, against MPI's own error string.
TEST(MpiStatus, IsIOErrorNamingTheCallWithMpisErrorString) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  ASSERT_EQ(MPI_Error_string(MPI_ERR_ROOT, text, &length), MPI_SUCCESS);
  const Status status = comm_internal::MpiStatus(MPI_ERR_ROOT, "MPI_Bcast");
  EXPECT_EQ(status.code(), StatusCode::kIOError);
  EXPECT_EQ(status.message(), "MPI_Bcast: " + std::string(text, length));
  EXPECT_TRUE(comm_internal::MpiStatus(MPI_SUCCESS, "MPI_Bcast").ok());
}

TEST(WorldCommunicator, IsTheMpiWorldWhileMpiRuns) {
  auto world = NewWorldCommunicator();
  ASSERT_TRUE(world.ok()) << world.status().ToString();
  int size = 0;
  ASSERT_EQ(MPI_Comm_size(MPI_COMM_WORLD, &size), MPI_SUCCESS);
  EXPECT_EQ((*world)->size(), size);
}

// Under mpirun, the rank's connections to the node's PMIx server (loopback TCP with Open MPI 4.1
// and PMIx 4) send without Nagle's delay, which held MPI_Finalize's fence back by 40 ms.
TEST(MpiSession, ConnectionsToTheLocalLauncherSendWithoutDelay) {
  int loopback = 0, without_delay = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    sockaddr_in peer{};
    socklen_t size = sizeof peer;
    char text[INET_ADDRSTRLEN] = "";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &size) != 0 ||
        peer.sin_family != AF_INET || !::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text) ||
        !std::string(text).starts_with("127."))
      continue;
    ++loopback;
    int on = 0;
    size = sizeof on;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &size) == 0 && on) ++without_delay;
  }
  EXPECT_EQ(without_delay, loopback);
  if (StartedByMpiLauncher()) {
    EXPECT_GE(loopback, 1) << "no connection to the launcher found";
  }
}

}  // namespace

// Prints each failed assertion of a rank whose progress lines are silenced, naming the rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
};

}  // namespace tilestage

// MPI for the whole run (a singleton outside mpirun); the process fails when any rank failed.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto session = tilestage::MpiSession::Start();
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
    return 1;
  }
  int failed = 0;
  {
    auto world = tilestage::NewMpiCommunicator();
    if (!world.ok()) return 1;
    if ((*world)->rank() != 0) {
      // One rank's progress lines are enough; the other ranks print only their failures.
      auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
      delete listeners.Release(listeners.default_result_printer());
      listeners.Append(new tilestage::FailurePrinter((*world)->rank()));
    }
    std::vector<int64_t> any_failed = {RUN_ALL_TESTS() != 0 ? -1 : 0};
    if (!(*world)->AllreduceMin(any_failed).ok()) return 1;
    failed = any_failed[0] < 0 ? 1 : 0;
  }
  return failed;
}
