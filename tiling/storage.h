// Storage: the seam between the tile store and where its bytes live.
//
// Implementations: the local file system (atomic writes by temporary name + fsync + rename), an
// in-memory store (tests, fuzzing), and a fault-injecting wrapper (full disk, failing reads) for
// tests. All satisfy tests/tiling/storage_conformance_test.cc.
//
// Thread-safety: Storage methods and ReadableFile::ReadAt may be called from many threads at
// once. A WritableFile belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiling/status.h"

namespace tilestage {

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual const std::string& path() const = 0;
  virtual uint64_t size() const = 0;
  // Reads exactly out.size() bytes at offset. Reading past the end is DataLoss naming the path
  // and the range ("truncated").
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) const = 0;
  // A hint that [offset, offset + length) is read soon, so that a file on a device can fetch it
  // while the caller works on what it has (readers that go front to back in large blocks).
  virtual void WillRead(uint64_t offset, uint64_t length) const {}
};

// A file that becomes visible at its path only when Commit() succeeds. Destroying it without a
// successful Commit() removes the partial data, so no half-written file ever looks whole.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual const std::string& path() const = 0;
  virtual Status Append(std::span<const uint8_t> bytes) = 0;
  virtual uint64_t size() const = 0;
  // Flushes, syncs and publishes the file under its final path (replacing any old one).
  virtual Status Commit() = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;
  virtual Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) = 0;
  virtual Result<std::unique_ptr<WritableFile>> CreateAtomic(const std::string& path) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;
  virtual Result<bool> Exists(const std::string& path) = 0;
  virtual Result<bool> IsDirectory(const std::string& path) = 0;
  // Names (not paths) of the entries directly in dir, sorted.
  virtual Result<std::vector<std::string>> List(const std::string& dir) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Result<uint64_t> FreeBytes(const std::string& dir) = 0;
  // Directory operations for replacing a whole store (tiling/store.h, PublishStore); storages
  // without them answer Unimplemented.
  // Moves a file or directory to `to`, which must not exist (AlreadyExists otherwise).
  virtual Status Rename(const std::string& from, const std::string& to);
  // Swaps two existing entries in one atomic step (renameat2 RENAME_EXCHANGE): a reader sees
  // either both old or both new. Unimplemented where the file system cannot do it.
  virtual Status Exchange(const std::string& a, const std::string& b);
  // Removes a file or a directory with everything below it; Ok when it does not exist.
  virtual Status RemoveAll(const std::string& path);
  // Reads a whole file; convenience over OpenRead + ReadAt.
  Result<std::vector<uint8_t>> ReadAll(const std::string& path);
  Status WriteAtomic(const std::string& path, std::span<const uint8_t> bytes);
};

// The process-wide local file system. Paths are ordinary file-system paths. Its files skip
// WillRead hints when the whole file is already in the page cache (WhollyInPageCache).
std::shared_ptr<Storage> LocalStorage();
// Whether every page of the open file `fd` of `size` bytes is in the page cache, by cachestat(2)
// (Linux 6.5): one walk over the file's cached folios. False where the kernel lacks the call.
bool WhollyInPageCache(int fd, uint64_t size);
// Maps the first `size` bytes of the local file `path` read-only and shared, by default advised
// for huge pages: pages read into the page cache through the mapping then come in 2 MiB folios
// that one page-table entry maps, where small folios cost an entry and a first-touch fault each
// 4 KiB. The bytes may reach past the file's end for a file still being written (touch only what
// it holds). An error naming the path when it cannot be opened or mapped (an empty `size`
// cannot be mapped). The caller unmaps with munmap.
Result<std::span<const uint8_t>> MapForReading(const std::string& path, uint64_t size,
                                               bool huge_pages = true);
// Faults in `bytes`, part of a read-only mapping of the local file `path` that starts at `offset`
// of the file, so that a file cut short since it was mapped is an error (TruncatedWhileMapped)
// rather than the SIGBUS that touching the vanished bytes raises; another failed read is an
// IOError naming the path. Before Linux 5.14 (no MADV_POPULATE_READ) it does nothing: the bytes
// are faulted in when they are touched.
Status PopulateMapped(std::span<const uint8_t> bytes, const std::string& path, uint64_t offset);
// DataLoss: the `n` bytes at `offset` of the mapped file `path` are gone (it was truncated).
Status TruncatedWhileMapped(const std::string& path, uint64_t offset, uint64_t n);
// A fresh, empty in-memory storage.
std::shared_ptr<Storage> NewMemoryStorage();

struct FaultOptions {
  // Total bytes the wrapper accepts across all writes before answering ResourceExhausted
  // ("No space left on device"), as a full disk would; FreeBytes reports what is left.
  uint64_t write_budget_bytes = UINT64_MAX;
  // Reads from any path containing this substring fail with IOError (empty: never).
  std::string fail_reads_containing;
  // A crash: after this many successful changes (CreateAtomic, Append, Commit, CreateDirs,
  // Remove, Rename, Exchange, RemoveAll) every later change fails with IOError, as if the
  // process had died there and nothing more reached the disk.
  uint64_t crash_after_changes = UINT64_MAX;
  // Exchange answers Unimplemented, as on file systems without RENAME_EXCHANGE.
  bool no_exchange = false;
};
std::shared_ptr<Storage> NewFaultInjectingStorage(std::shared_ptr<Storage> base,
                                                  FaultOptions options);

// pread(2) of `bytes` bytes at `offset` until all are read or the file ends, retrying short reads
// and EINTR: the number of bytes read (fewer only at the end of the file), or -1 with errno set.
// For the local file system's readers and others that hold a file descriptor.
int64_t PreadFull(int fd, void* out, uint64_t bytes, uint64_t offset);

// fsync(2) of the directory holding `path`, so that a rename into it is durable.
Status FsyncDirectoryOf(const std::string& path);
// syncfs(2) of the file system holding the directory `dir`: every file written there so far is
// durable (one journal commit for all of them, where an fsync each waits for one each). An error
// naming `dir` when it cannot be opened or the file system reports a write error.
Status SyncFileSystemOf(const std::string& dir);

// "a/b" from ("a", "b"); keeps b when it is absolute.
std::string JoinPath(const std::string& a, const std::string& b);
std::string BaseName(const std::string& path);

// Files are written under a temporary name beside their final one, "<path>.tmp-<pid>-<n>"
// (FORMAT.md), then renamed. Unique within the process; thread-safe.
std::string TemporaryPath(const std::string& path);
// True when `name` is a temporary name, from any process, of the file named `final_name`.
bool IsTemporaryNameOf(std::string_view name, std::string_view final_name);

}  // namespace tilestage
