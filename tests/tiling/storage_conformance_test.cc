// One conformance suite for every Storage implementation (local directory, in-memory, and the
// fault-injecting wrapper with no faults), plus the fault wrapper's injected failures.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "tests/common/test_util.h"
#include "tiling/storage.h"
#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i)
    bytes[i] = static_cast<uint8_t>((i * 131 + seed * 7 + i / 251) & 0xff);
  return bytes;
}

// Each environment owns the storage and a root directory that exists and is empty.
struct LocalEnv {
  testing::TempDir tmp;
  std::shared_ptr<Storage> storage = LocalStorage();
  std::string root = tmp.path();
};
struct MemoryEnv {
  std::shared_ptr<Storage> storage = NewMemoryStorage();
  std::string root = "/mem/root";
  MemoryEnv() { EXPECT_TRUE(storage->CreateDirs(root).ok()); }
};
struct FaultLocalEnv {
  testing::TempDir tmp;
  std::shared_ptr<Storage> storage = NewFaultInjectingStorage(LocalStorage(), FaultOptions{});
  std::string root = tmp.path();
};
struct FaultMemoryEnv {
  std::shared_ptr<Storage> storage = NewFaultInjectingStorage(NewMemoryStorage(), FaultOptions{});
  std::string root = "/fault/root";
  FaultMemoryEnv() { EXPECT_TRUE(storage->CreateDirs(root).ok()); }
};

template <typename Env>
class StorageConformanceTest : public ::testing::Test {
 protected:
  Storage& storage() { return *env_.storage; }
  std::string Path(const std::string& name) { return JoinPath(env_.root, name); }
  Env env_;
};

using Envs = ::testing::Types<LocalEnv, MemoryEnv, FaultLocalEnv, FaultMemoryEnv>;
class EnvNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    if (std::is_same_v<T, LocalEnv>) return "Local";
    if (std::is_same_v<T, MemoryEnv>) return "Memory";
    if (std::is_same_v<T, FaultLocalEnv>) return "FaultWrappedLocal";
    return "FaultWrappedMemory";
  }
};
TYPED_TEST_SUITE(StorageConformanceTest, Envs, EnvNames);

TYPED_TEST(StorageConformanceTest, WriteAtomicThenReadAllReturnsSameBytes) {
  // 3 MiB crosses the local writer's 1 MiB buffer several times.
  const auto bytes = Pattern(3 << 20, 1);
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("a.bin"), bytes).ok());
  auto back = this->storage().ReadAll(this->Path("a.bin"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, bytes);
}

TYPED_TEST(StorageConformanceTest, FileIsInvisibleUntilCommit) {
  const std::string path = this->Path("pending.bin");
  auto file = this->storage().CreateAtomic(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(Pattern(1000, 2)).ok());
  EXPECT_EQ((*file)->size(), 1000u);
  EXPECT_FALSE(*this->storage().Exists(path));
  EXPECT_EQ(this->storage().OpenRead(path).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_TRUE(*this->storage().Exists(path));
  EXPECT_EQ(*this->storage().ReadAll(path), Pattern(1000, 2));
}

TYPED_TEST(StorageConformanceTest, AbandonedWriteLeavesNoFileBehind) {
  {
    auto file = this->storage().CreateAtomic(this->Path("abandoned.bin"));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append(Pattern(5000, 3)).ok());
  }
  EXPECT_FALSE(*this->storage().Exists(this->Path("abandoned.bin")));
  auto names = this->storage().List(this->env_.root);
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty()) << "left behind: " << (*names)[0];
}

TYPED_TEST(StorageConformanceTest, CommitReplacesExistingFile) {
  const std::string path = this->Path("f.bin");
  ASSERT_TRUE(this->storage().WriteAtomic(path, Pattern(100, 4)).ok());
  ASSERT_TRUE(this->storage().WriteAtomic(path, Pattern(50, 5)).ok());
  EXPECT_EQ(*this->storage().ReadAll(path), Pattern(50, 5));
}

TYPED_TEST(StorageConformanceTest, AppendAfterCommitFails) {
  auto file = this->storage().CreateAtomic(this->Path("done.bin"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Commit().ok());
  EXPECT_FALSE((*file)->Append(Pattern(10, 1)).ok());
  EXPECT_FALSE((*file)->Commit().ok());
}

TYPED_TEST(StorageConformanceTest, EmptyFileRoundTrips) {
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("empty"), {}).ok());
  auto file = this->storage().OpenRead(this->Path("empty"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_TRUE((*file)->ReadAt(0, {}).ok());
}

TYPED_TEST(StorageConformanceTest, ReadAtReturnsTheRequestedRange) {
  const auto bytes = Pattern(10000, 6);
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("r.bin"), bytes).ok());
  auto file = this->storage().OpenRead(this->Path("r.bin"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->size(), bytes.size());
  EXPECT_EQ((*file)->path(), this->Path("r.bin"));
  std::vector<uint8_t> out(777);
  ASSERT_TRUE((*file)->ReadAt(1234, out).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes.begin() + 1234));
  std::vector<uint8_t> tail(10);
  ASSERT_TRUE((*file)->ReadAt(bytes.size() - 10, tail).ok());
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), bytes.end() - 10));
}

TYPED_TEST(StorageConformanceTest, ReadPastEndIsDataLossNamingPath) {
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("short.bin"), Pattern(100, 7)).ok());
  auto file = this->storage().OpenRead(this->Path("short.bin"));
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> out(20);
  Status s = (*file)->ReadAt(90, out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(this->Path("short.bin")));
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
}

TYPED_TEST(StorageConformanceTest, OpenMissingFileIsNotFoundNamingPath) {
  auto file = this->storage().OpenRead(this->Path("nope.bin"));
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr("nope.bin"));
}

TYPED_TEST(StorageConformanceTest, ListReturnsSortedNamesOfFilesAndDirs) {
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("b"), Pattern(1, 1)).ok());
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("a"), Pattern(1, 1)).ok());
  ASSERT_TRUE(this->storage().CreateDirs(this->Path("c/d")).ok());
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("c/d/e"), Pattern(1, 1)).ok());
  auto names = this->storage().List(this->env_.root);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(*this->storage().List(this->Path("c/d")), std::vector<std::string>{"e"});
}

TYPED_TEST(StorageConformanceTest, ListMissingDirectoryIsNotFound) {
  EXPECT_EQ(this->storage().List(this->Path("missing")).status().code(), StatusCode::kNotFound);
}

TYPED_TEST(StorageConformanceTest, CreateDirsIsNestedAndIdempotent) {
  ASSERT_TRUE(this->storage().CreateDirs(this->Path("x/y/z")).ok());
  ASSERT_TRUE(this->storage().CreateDirs(this->Path("x/y/z")).ok());
  EXPECT_TRUE(*this->storage().IsDirectory(this->Path("x")));
  EXPECT_TRUE(*this->storage().IsDirectory(this->Path("x/y/z")));
  EXPECT_TRUE(*this->storage().Exists(this->Path("x/y")));
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("x/file"), Pattern(3, 1)).ok());
  EXPECT_FALSE(*this->storage().IsDirectory(this->Path("x/file")));
  EXPECT_FALSE(*this->storage().IsDirectory(this->Path("x/none")));
}

TYPED_TEST(StorageConformanceTest, RemoveDeletesAndIgnoresMissing) {
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("gone"), Pattern(3, 1)).ok());
  ASSERT_TRUE(this->storage().Remove(this->Path("gone")).ok());
  EXPECT_FALSE(*this->storage().Exists(this->Path("gone")));
  EXPECT_TRUE(this->storage().Remove(this->Path("never-existed")).ok());
}

// Writes dir/f (bytes of `seed`) and dir/sub/g, the shape of a store directory.
void WriteTree(Storage& storage, const std::string& dir, uint32_t seed) {
  ASSERT_TRUE(storage.CreateDirs(dir + "/sub").ok());
  ASSERT_TRUE(storage.WriteAtomic(dir + "/f", Pattern(10, seed)).ok());
  ASSERT_TRUE(storage.WriteAtomic(dir + "/sub/g", Pattern(5, seed)).ok());
}

TYPED_TEST(StorageConformanceTest, RenameMovesADirectoryTreeAndRefusesAnExistingTarget) {
  WriteTree(this->storage(), this->Path("a"), 1);
  ASSERT_TRUE(this->storage().Rename(this->Path("a"), this->Path("b")).ok());
  EXPECT_FALSE(*this->storage().Exists(this->Path("a")));
  EXPECT_EQ(*this->storage().ReadAll(this->Path("b/sub/g")), Pattern(5, 1));
  WriteTree(this->storage(), this->Path("c"), 2);
  Status s = this->storage().Rename(this->Path("c"), this->Path("b"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(*this->storage().ReadAll(this->Path("b/f")), Pattern(10, 1));
}

TYPED_TEST(StorageConformanceTest, ExchangeSwapsTwoDirectoriesWhole) {
  WriteTree(this->storage(), this->Path("old"), 1);
  WriteTree(this->storage(), this->Path("new"), 2);
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("new/only-new"), Pattern(1, 3)).ok());
  ASSERT_TRUE(this->storage().Exchange(this->Path("new"), this->Path("old")).ok());
  EXPECT_EQ(*this->storage().ReadAll(this->Path("old/sub/g")), Pattern(5, 2));
  EXPECT_EQ(*this->storage().ReadAll(this->Path("new/f")), Pattern(10, 1));
  EXPECT_TRUE(*this->storage().Exists(this->Path("old/only-new")));
  EXPECT_FALSE(*this->storage().Exists(this->Path("new/only-new")));
}

TYPED_TEST(StorageConformanceTest, RemoveAllDeletesATreeAndIgnoresMissing) {
  WriteTree(this->storage(), this->Path("t"), 1);
  ASSERT_TRUE(this->storage().RemoveAll(this->Path("t")).ok());
  EXPECT_FALSE(*this->storage().Exists(this->Path("t")));
  EXPECT_FALSE(*this->storage().Exists(this->Path("t/sub/g")));
  EXPECT_EQ(*this->storage().List(this->env_.root), std::vector<std::string>{});
  EXPECT_TRUE(this->storage().RemoveAll(this->Path("never-existed")).ok());
}

TYPED_TEST(StorageConformanceTest, FreeBytesIsPositive) {
  auto free_bytes = this->storage().FreeBytes(this->env_.root);
  ASSERT_TRUE(free_bytes.ok());
  EXPECT_GT(*free_bytes, 0u);
}

TYPED_TEST(StorageConformanceTest, ConcurrentReadAtFromManyThreadsSeesCorrectBytes) {
  const auto bytes = Pattern(1 << 20, 8);
  ASSERT_TRUE(this->storage().WriteAtomic(this->Path("shared.bin"), bytes).ok());
  auto file = this->storage().OpenRead(this->Path("shared.bin"));
  ASSERT_TRUE(file.ok());
  const ReadableFile& shared = **file;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> out(4096);
      for (int k = 0; k < 200; ++k) {
        const uint64_t offset =
            (static_cast<uint64_t>(t) * 7919 + k * 104729) % (bytes.size() - 4096);
        if (!shared.ReadAt(offset, out).ok() ||
            !std::equal(out.begin(), out.end(), bytes.begin() + offset))
          ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TYPED_TEST(StorageConformanceTest, ReadOpenedBeforeReplaceKeepsOldContents) {
  // Readers hold a consistent snapshot: an atomic replace does not change an open file.
  const std::string path = this->Path("snap");
  ASSERT_TRUE(this->storage().WriteAtomic(path, Pattern(64, 1)).ok());
  auto file = this->storage().OpenRead(path);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(this->storage().WriteAtomic(path, Pattern(64, 2)).ok());
  std::vector<uint8_t> out(64);
  ASSERT_TRUE((*file)->ReadAt(0, out).ok());
  EXPECT_EQ(out, Pattern(64, 1));
}

// ------------------------------------------------------------------------ injected faults

FaultOptions Budget(uint64_t bytes) {
  FaultOptions options;
  options.write_budget_bytes = bytes;
  return options;
}
FaultOptions FailReads(const std::string& needle) {
  FaultOptions options;
  options.fail_reads_containing = needle;
  return options;
}

TEST(FaultInjectingStorage, WriteBudgetExhaustedIsResourceExhaustedAndLeavesNoFile) {
  testing::TempDir tmp;
  auto storage = NewFaultInjectingStorage(LocalStorage(), Budget(1000));
  const std::string path = tmp.Sub("big.bin");
  Status s = storage->WriteAtomic(path, Pattern(5000, 1));
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "a temporary file was left behind";
}

TEST(FaultInjectingStorage, FreeBytesReportsTheRemainingBudget) {
  auto storage = NewFaultInjectingStorage(NewMemoryStorage(), Budget(1000));
  ASSERT_TRUE(storage->WriteAtomic("/f", Pattern(300, 1)).ok());
  EXPECT_EQ(*storage->FreeBytes("/"), 700u);
}

TEST(FaultInjectingStorage, StoreWriterOnFullDiskFailsWithoutPublishingAnything) {
  testing::TempDir tmp;
  auto storage = NewFaultInjectingStorage(LocalStorage(), Budget(200 << 10));
  const std::string dir = tmp.Sub("store");
  StoreWriterOptions options;
  options.shard_target_bytes = 64 << 10;
  Status failure;
  {
    auto writer = StoreWriter::Create(storage, dir, options);
    ASSERT_TRUE(writer.ok());
    SynthSpec spec{{1, 64, 64}, DType::kF32, 1, 0};
    for (uint64_t i = 0; i < 100 && failure.ok(); ++i)
      failure = (*writer)->Append(MakeSynthSample(spec, i));
    EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted);
    // Later appends and Close fail fast with the same error.
    EXPECT_EQ((*writer)->Append(MakeSynthSample(spec, 0)).code(), StatusCode::kResourceExhausted);
    EXPECT_EQ((*writer)->Close().status().code(), StatusCode::kResourceExhausted);
  }
  EXPECT_THAT(failure.message(), HasSubstr(dir));
  EXPECT_FALSE(std::filesystem::exists(dir + "/manifest.json"));
  // Shards finished before the disk filled stay whole; nothing partial remains.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_THAT(name, ::testing::Not(HasSubstr(".tmp"))) << "partial file left behind";
    auto reader = ShardReader::Open(*LocalStorage(), entry.path().string());
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  }
}

TEST(FaultInjectingStorage, FailingReadsAreIOErrorNamingTheShard) {
  auto memory = NewMemoryStorage();
  StoreWriterOptions options;
  options.shard_target_bytes = 16 << 10;
  auto writer = StoreWriter::Create(memory, "/s", options);
  ASSERT_TRUE(writer.ok());
  SynthSpec spec{{1, 32, 32}, DType::kU16, 2, 0};
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE((*writer)->Append(MakeSynthSample(spec, i)).ok());
  Manifest manifest;
  manifest.shards = *(*writer)->Close();
  ASSERT_GE(manifest.shards.size(), 2u);
  manifest.fields.push_back({"x", DType::kU16, {1, 32, 32}, {}, {}, {}});
  ASSERT_TRUE(WriteManifest(*memory, "/s", manifest).ok());

  auto faulty = NewFaultInjectingStorage(memory, FailReads("shard-00001"));
  auto store = Store::Open(faulty, "/s");
  EXPECT_EQ(store.status().code(), StatusCode::kIOError);
  EXPECT_THAT(store.status().message(), HasSubstr("/s/shard-00001.tss"));

  // The healthy shard still reads through the wrapper.
  auto healthy = ShardReader::Open(*faulty, "/s/shard-00000.tss");
  ASSERT_TRUE(healthy.ok());
  EXPECT_TRUE((*healthy)->Read(0).ok());
}

TEST(TemporaryName, RecognisesOnlyTheWritersPatternForThatFile) {
  const std::string a = TemporaryPath("/d/a.tss"), b = TemporaryPath("/d/a.tss");
  EXPECT_NE(a, b);
  EXPECT_TRUE(IsTemporaryNameOf(BaseName(a), "a.tss")) << a;
  EXPECT_TRUE(IsTemporaryNameOf("a.tss.tmp-99999-0", "a.tss"));
  for (const char* name : {"a.tss", "a.tss.tmp-keep", "a.tss.tmp-1-", "a.tss.tmp--1",
                           "a.tss.tmp-1-2x", "a.tss.tmp-1", "ba.tss.tmp-1-2", "a.tss.tmp-1-2/x"})
    EXPECT_FALSE(IsTemporaryNameOf(name, "a.tss")) << name;
}

// Pages of the file in the page cache, by mincore over a mapping of it.
size_t ResidentPages(int fd, size_t size) {
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(map, MAP_FAILED);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((size + page - 1) / page);
  EXPECT_EQ(::mincore(map, size, in_core.data()), 0);
  ::munmap(map, size);
  return static_cast<size_t>(
      std::count_if(in_core.begin(), in_core.end(), [](unsigned char c) { return c & 1; }));
}

// Against mincore: a file just written is wholly cached; once its pages are dropped (where the
// file system can drop them: not on tmpfs) it is not, and each answer agrees with mincore's.
TEST(WhollyInPageCache, AgreesWithMincoreBeforeAndAfterThePagesAreDropped) {
  testing::TempDir tmp;
  const std::string path = tmp.Sub("file");
  const std::vector<uint8_t> bytes = Pattern(3 << 20, 5);
  ASSERT_TRUE(LocalStorage()->WriteAtomic(path, bytes).ok());
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const size_t pages = (bytes.size() + ::sysconf(_SC_PAGESIZE) - 1) / ::sysconf(_SC_PAGESIZE);
  ASSERT_EQ(ResidentPages(fd, bytes.size()), pages);
  EXPECT_TRUE(WhollyInPageCache(fd, bytes.size()));

  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  EXPECT_EQ(WhollyInPageCache(fd, bytes.size()), ResidentPages(fd, bytes.size()) == pages);
  ::close(fd);
}

// The VmFlags line of the mapping that starts at `address`, from /proc/self/smaps; empty when
// there is none.
std::string VmFlagsOf(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool found = false;
  while (std::getline(smaps, line)) {
    const size_t dash = line.find('-');
    if (!found && dash != std::string::npos && line.find(' ') > dash &&
        std::strtoull(line.substr(0, dash).c_str(), nullptr, 16) ==
            reinterpret_cast<uintptr_t>(address))
      found = true;
    else if (found && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return "";
}

// The mapping holds the file's bytes and carries the huge-page advice (VmFlags "hg") that lets
// the kernel bring uncached pages in as 2 MiB folios and map them whole; a file that cannot be
// mapped, missing or empty, is an error naming it.
TEST(MapForReading, MapsTheFileAdvisedForHugePagesAndNamesAFileItCannotMap) {
  testing::TempDir tmp;
  const std::string path = tmp.Sub("file");
  const std::vector<uint8_t> bytes = Pattern(3 << 20, 7);
  ASSERT_TRUE(LocalStorage()->WriteAtomic(path, bytes).ok());
  auto map = MapForReading(path, bytes.size());
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_TRUE(std::equal(map->begin(), map->end(), bytes.begin(), bytes.end()));
  if (std::filesystem::exists("/sys/kernel/mm/transparent_hugepage")) {  // a kernel with THP
    EXPECT_THAT(VmFlagsOf(map->data()), HasSubstr(" hg"));
  }
  ::munmap(const_cast<uint8_t*>(map->data()), map->size());

  auto missing = MapForReading(tmp.Sub("missing"), 4096);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(tmp.Sub("missing")));
  ASSERT_TRUE(LocalStorage()->WriteAtomic(tmp.Sub("empty"), {}).ok());
  auto empty = MapForReading(tmp.Sub("empty"), 0);
  EXPECT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr(tmp.Sub("empty")));
}

TEST(SyncFileSystemOf, SyncsAnExistingDirectoryAndNamesOneThatIsMissing) {
  testing::TempDir tmp;
  EXPECT_TRUE(SyncFileSystemOf(tmp.path()).ok());
  const std::string missing = tmp.Sub("no-such-dir");
  const Status status = SyncFileSystemOf(missing);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(missing), std::string::npos) << status.ToString();
}

}  // namespace
}  // namespace tilestage
