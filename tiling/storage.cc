#include "tiling/storage.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

namespace tilestage {

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty() || (!b.empty() && b.front() == '/')) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string BaseName(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string TemporaryPath(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  return StrCat(path, ".tmp-", ::getpid(), "-", counter++);
}

bool IsTemporaryNameOf(std::string_view name, std::string_view final_name) {
  constexpr std::string_view kTag = ".tmp-";
  if (name.size() <= final_name.size() + kTag.size() || !name.starts_with(final_name) ||
      name.substr(final_name.size(), kTag.size()) != kTag)
    return false;
  // "<pid>-<n>": two non-empty runs of digits.
  const std::string_view rest = name.substr(final_name.size() + kTag.size());
  const size_t dash = rest.find('-');
  const auto digits = [](std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  return dash != std::string_view::npos && digits(rest.substr(0, dash)) &&
         digits(rest.substr(dash + 1));
}

Result<std::vector<uint8_t>> Storage::ReadAll(const std::string& path) {
  TS_ASSIGN_OR_RETURN(auto file, OpenRead(path));
  std::vector<uint8_t> bytes(file->size());
  TS_RETURN_IF_ERROR(file->ReadAt(0, bytes));
  return bytes;
}

Status Storage::WriteAtomic(const std::string& path, std::span<const uint8_t> bytes) {
  TS_ASSIGN_OR_RETURN(auto file, CreateAtomic(path));
  TS_RETURN_IF_ERROR(file->Append(bytes));
  return file->Commit();
}

Status Storage::Rename(const std::string& from, const std::string& to) {
  return Unimplemented("rename ", from, " to ", to, ": this storage cannot rename");
}

Status Storage::Exchange(const std::string& a, const std::string& b) {
  return Unimplemented("exchange ", a, " and ", b, ": this storage cannot exchange");
}

Status Storage::RemoveAll(const std::string& path) {
  return Unimplemented("remove ", path, " recursively: this storage cannot");
}

// ---------------------------------------------------------------- local file system

bool WhollyInPageCache(int fd, uint64_t size) {
  constexpr long kCachestat = 451;  // the same number on every architecture
  struct {
    uint64_t offset = 0, length = 0;  // length 0: to the end of the file
  } range;
  struct {
    uint64_t cache, dirty, writeback, evicted, recently_evicted;
  } stat{};
  if (::syscall(kCachestat, fd, &range, &stat, 0) != 0) return false;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return stat.cache >= (size + page - 1) / page;
}

Result<std::span<const uint8_t>> MapForReading(const std::string& path, uint64_t size,
                                               bool huge_pages) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", path, errno);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (map == MAP_FAILED) return ErrnoStatus("map", path, map_errno);
  // Advice only: on a kernel without transparent huge pages the mapping works with small pages.
  if (huge_pages) ::madvise(map, size, MADV_HUGEPAGE);
  return std::span<const uint8_t>(static_cast<const uint8_t*>(map), size);
}

Status TruncatedWhileMapped(const std::string& path, uint64_t offset, uint64_t n) {
  return DataLoss(path, ": truncated while it was read: the ", n, " bytes at offset ", offset,
                  " are gone");
}

Status PopulateMapped(std::span<const uint8_t> bytes, const std::string& path, uint64_t offset) {
  if (bytes.empty()) return Status::Ok();
  void* start = const_cast<uint8_t*>(bytes.data());
  if (::madvise(start, bytes.size(), MADV_POPULATE_READ) == 0 || errno == EINVAL)
    return Status::Ok();
  if (errno == EFAULT) return TruncatedWhileMapped(path, offset, bytes.size());
  return ErrnoStatus("read", path, errno);
}

namespace {

Status TruncatedRead(const std::string& path, uint64_t offset, size_t n, uint64_t size) {
  return DataLoss(path, ": truncated: cannot read ", n, " bytes at offset ", offset,
                  " of a ", size, "-byte file");
}

class LocalReadableFile final : public ReadableFile {
 public:
  LocalReadableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~LocalReadableFile() override { ::close(fd_); }
  const std::string& path() const override { return path_; }
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset + out.size() > size_) return TruncatedRead(path_, offset, out.size(), size_);
    const int64_t got = PreadFull(fd_, out.data(), out.size(), offset);
    if (got < 0) return ErrnoStatus("read", path_, errno);
    if (static_cast<uint64_t>(got) < out.size())
      return TruncatedRead(path_, offset, out.size(), size_);
    return Status::Ok();
  }
  // A file wholly in the page cache (asked once) has nothing to fetch, and announcing a range
  // walks the page cache page by page: a tenth of a warm `verify`'s time.
  void WillRead(uint64_t offset, uint64_t length) const override {
    int cached = wholly_cached_.load(std::memory_order_relaxed);
    if (cached < 0) {
      cached = WhollyInPageCache(fd_, size_) ? 1 : 0;
      wholly_cached_.store(cached, std::memory_order_relaxed);
    }
    if (cached == 0)
      ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                      POSIX_FADV_WILLNEED);
  }

 private:
  std::string path_;
  int fd_;
  uint64_t size_;
  mutable std::atomic<int> wholly_cached_{-1};  // -1 not asked yet, else 0 or 1
};

}  // namespace

Status FsyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus("open directory", dir, errno);
  ::fsync(fd);
  ::close(fd);
  return Status::Ok();
}

Status SyncFileSystemOf(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory", dir, errno);
  const int synced = ::syncfs(fd);
  const int sync_errno = errno;
  ::close(fd);
  if (synced != 0) return ErrnoStatus("sync the file system of", dir, sync_errno);
  return Status::Ok();
}

namespace {

class LocalWritableFile final : public WritableFile {
 public:
  static constexpr size_t kBufferBytes = 1 << 20;
  static constexpr size_t kDirectBytes = 64 << 10;
  // Writeback of what was written is started every this many bytes, so that it overlaps the rest
  // of the work and Commit's fsync finds little left to write.
  static constexpr uint64_t kWritebackBytes = 8 << 20;

  LocalWritableFile(std::string path, std::string tmp_path, int fd)
      : path_(std::move(path)), tmp_path_(std::move(tmp_path)), fd_(fd) {
    buffer_.reserve(kBufferBytes);
  }
  ~LocalWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
  }
  const std::string& path() const override { return path_; }
  uint64_t size() const override { return size_; }

  Status Append(std::span<const uint8_t> bytes) override {
    if (fd_ < 0) return FailedPrecondition(path_, ": append after commit or failure");
    size_ += bytes.size();
    // Large appends (whole records) go to the kernel directly, with whatever is buffered in the
    // same call: copying them through the buffer first would add a pass over every byte.
    if (bytes.size() >= kDirectBytes) {
      Status s = WriteFully(buffer_, bytes);
      buffer_.clear();
      return s;
    }
    if (buffer_.size() + bytes.size() > kBufferBytes) TS_RETURN_IF_ERROR(Flush());
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return Status::Ok();
  }

  Status Commit() override {
    if (fd_ < 0) return FailedPrecondition(path_, ": commit after commit or failure");
    TS_RETURN_IF_ERROR(Flush());
    if (::fsync(fd_) != 0) return ErrnoStatus("fsync", tmp_path_, errno);
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
      return ErrnoStatus("rename to", path_, errno);
    committed_ = true;
    return FsyncDirectoryOf(path_);
  }

 private:
  Status Flush() {
    Status s = WriteFully(buffer_, {});
    buffer_.clear();
    return s;
  }
  // Writes first then second, resuming after short writes.
  Status WriteFully(std::span<const uint8_t> first, std::span<const uint8_t> second) {
    iovec parts[2] = {{const_cast<uint8_t*>(first.data()), first.size()},
                      {const_cast<uint8_t*>(second.data()), second.size()}};
    iovec* part = parts;
    int count = 2;
    while (count > 0) {
      if (part->iov_len == 0) {
        ++part;
        --count;
        continue;
      }
      const ssize_t n = ::writev(fd_, part, count);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", tmp_path_, errno);
      }
      size_t done = static_cast<size_t>(n);
      written_ += done;
      while (count > 0 && done >= part->iov_len) {
        done -= part->iov_len;
        ++part;
        --count;
      }
      if (count > 0) {
        part->iov_base = static_cast<uint8_t*>(part->iov_base) + done;
        part->iov_len -= done;
      }
    }
    StartWriteback();
    return Status::Ok();
  }

  // A hint: errors (a file system without it) are left to Commit's fsync to find.
  void StartWriteback() {
    if (written_ - writeback_from_ < kWritebackBytes) return;
    (void)::sync_file_range(fd_, static_cast<off64_t>(writeback_from_),
                            static_cast<off64_t>(written_ - writeback_from_),
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = written_;
  }

  std::string path_, tmp_path_;
  int fd_;
  uint64_t size_ = 0;
  uint64_t written_ = 0;         // bytes handed to the kernel
  uint64_t writeback_from_ = 0;  // bytes before this have had their writeback started
  bool committed_ = false;
  std::vector<uint8_t> buffer_;
};

class LocalFileSystem final : public Storage {
 public:
  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus("stat", path, err);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return InvalidArgument(path, ": is a directory, expected a file");
    }
    return std::unique_ptr<ReadableFile>(new LocalReadableFile(path, fd, st.st_size));
  }

  Result<std::unique_ptr<WritableFile>> CreateAtomic(const std::string& path) override {
    std::string tmp = TemporaryPath(path);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("create", tmp, errno);
    return std::unique_ptr<WritableFile>(new LocalWritableFile(path, tmp, fd));
  }

  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return IOError("create directory ", dir, ": ", ec.message());
    return Status::Ok();
  }

  Result<bool> Exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Result<bool> IsDirectory(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Result<std::vector<std::string>> List(const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (auto it = std::filesystem::directory_iterator(dir, ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory)
        return NotFound("directory ", dir, " does not exist");
      return IOError("list ", dir, ": ", ec.message());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("remove", path, errno);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    struct stat st;
    if (::lstat(to.c_str(), &st) == 0) return AlreadyExists("rename ", from, " to ", to,
                                                            ": the target exists");
    if (::rename(from.c_str(), to.c_str()) != 0)
      return ErrnoStatus(StrCat("rename ", from, " to"), to, errno);
    return FsyncDirectoryOf(to);
  }

  Status Exchange(const std::string& a, const std::string& b) override {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
      const int err = errno;
      if (err == EINVAL || err == ENOSYS || err == EOPNOTSUPP)
        return Unimplemented("exchange ", a, " and ", b, ": the file system cannot (",
                             std::strerror(err), ")");
      return ErrnoStatus(StrCat("exchange ", a, " and"), b, err);
    }
    return FsyncDirectoryOf(b);
  }

  Status RemoveAll(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return IOError("remove ", path, " recursively: ", ec.message());
    return Status::Ok();
  }

  Result<uint64_t> FreeBytes(const std::string& dir) override {
    struct statvfs vfs;
    if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoStatus("statvfs", dir, errno);
    return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }
};

// ---------------------------------------------------------------- in memory

struct MemoryState {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const std::vector<uint8_t>>> files;
  std::set<std::string> dirs;
};

std::string Normalize(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

class MemoryReadableFile final : public ReadableFile {
 public:
  MemoryReadableFile(std::string path, std::shared_ptr<const std::vector<uint8_t>> bytes)
      : path_(std::move(path)), bytes_(std::move(bytes)) {}
  const std::string& path() const override { return path_; }
  uint64_t size() const override { return bytes_->size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    if (offset + out.size() > bytes_->size())
      return TruncatedRead(path_, offset, out.size(), bytes_->size());
    // memcpy with a null pointer is undefined even for 0 bytes (UBSan flags empty files).
    if (!out.empty()) std::memcpy(out.data(), bytes_->data() + offset, out.size());
    return Status::Ok();
  }

 private:
  std::string path_;
  std::shared_ptr<const std::vector<uint8_t>> bytes_;
};

class MemoryWritableFile final : public WritableFile {
 public:
  MemoryWritableFile(std::string path, std::shared_ptr<MemoryState> state)
      : path_(std::move(path)), state_(std::move(state)) {}
  const std::string& path() const override { return path_; }
  uint64_t size() const override { return bytes_.size(); }
  Status Append(std::span<const uint8_t> bytes) override {
    if (committed_) return FailedPrecondition(path_, ": append after commit");
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
    return Status::Ok();
  }
  Status Commit() override {
    if (committed_) return FailedPrecondition(path_, ": commit after commit");
    std::lock_guard lock(state_->mu);
    state_->files[path_] = std::make_shared<const std::vector<uint8_t>>(std::move(bytes_));
    committed_ = true;
    return Status::Ok();
  }

 private:
  std::string path_;
  std::shared_ptr<MemoryState> state_;
  std::vector<uint8_t> bytes_;
  bool committed_ = false;
};

class MemoryStorage final : public Storage {
 public:
  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    auto it = state_->files.find(Normalize(path));
    if (it == state_->files.end()) return NotFound("open ", path, ": No such file");
    return std::unique_ptr<ReadableFile>(new MemoryReadableFile(path, it->second));
  }
  Result<std::unique_ptr<WritableFile>> CreateAtomic(const std::string& path) override {
    return std::unique_ptr<WritableFile>(new MemoryWritableFile(Normalize(path), state_));
  }
  Status CreateDirs(const std::string& dir) override {
    std::lock_guard lock(state_->mu);
    std::string d = Normalize(dir);
    while (!d.empty() && d != "/" && d != ".") {
      state_->dirs.insert(d);
      auto slash = d.find_last_of('/');
      if (slash == std::string::npos) break;
      d = d.substr(0, slash);
    }
    return Status::Ok();
  }
  Result<bool> Exists(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    std::string p = Normalize(path);
    return state_->files.count(p) > 0 || state_->dirs.count(p) > 0;
  }
  Result<bool> IsDirectory(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    return state_->dirs.count(Normalize(path)) > 0;
  }
  Result<std::vector<std::string>> List(const std::string& dir) override {
    std::lock_guard lock(state_->mu);
    std::string d = Normalize(dir);
    if (!state_->dirs.count(d)) return NotFound("directory ", dir, " does not exist");
    std::set<std::string> names;
    const std::string prefix = d + "/";
    auto collect = [&](const std::string& p) {
      if (p.rfind(prefix, 0) != 0) return;
      std::string rest = p.substr(prefix.size());
      names.insert(rest.substr(0, rest.find('/')));
    };
    for (const auto& [p, _] : state_->files) collect(p);
    for (const auto& p : state_->dirs) collect(p);
    return std::vector<std::string>(names.begin(), names.end());
  }
  Status Remove(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    state_->files.erase(Normalize(path));
    return Status::Ok();
  }
  Result<uint64_t> FreeBytes(const std::string& dir) override { return UINT64_MAX; }

  Status Rename(const std::string& from, const std::string& to) override {
    std::lock_guard lock(state_->mu);
    const std::string f = Normalize(from), t = Normalize(to);
    if (Holds(t)) return AlreadyExists("rename ", from, " to ", to, ": the target exists");
    if (!Holds(f)) return NotFound("rename ", from, ": No such file or directory");
    Put(Take(f), t);
    return Status::Ok();
  }

  Status Exchange(const std::string& a, const std::string& b) override {
    std::lock_guard lock(state_->mu);
    const std::string pa = Normalize(a), pb = Normalize(b);
    if (!Holds(pa) || !Holds(pb)) return NotFound("exchange ", a, " and ", b, ": one is missing");
    Entries ea = Take(pa), eb = Take(pb);
    Put(std::move(ea), pb);
    Put(std::move(eb), pa);
    return Status::Ok();
  }

  Status RemoveAll(const std::string& path) override {
    std::lock_guard lock(state_->mu);
    Take(Normalize(path));
    return Status::Ok();
  }

 private:
  // The files and directories at or below a path, keyed by their path relative to it ("" for the
  // path itself).
  struct Entries {
    std::map<std::string, std::shared_ptr<const std::vector<uint8_t>>> files;
    std::set<std::string> dirs;
  };
  static bool Under(const std::string& p, const std::string& root) {
    return p == root || p.rfind(root + "/", 0) == 0;
  }
  bool Holds(const std::string& p) const {
    for (const auto& [f, _] : state_->files)
      if (Under(f, p)) return true;
    for (const auto& d : state_->dirs)
      if (Under(d, p)) return true;
    return false;
  }
  Entries Take(const std::string& root) {
    Entries out;
    for (auto it = state_->files.begin(); it != state_->files.end();) {
      if (!Under(it->first, root)) {
        ++it;
        continue;
      }
      out.files[it->first.substr(root.size())] = it->second;
      it = state_->files.erase(it);
    }
    for (auto it = state_->dirs.begin(); it != state_->dirs.end();) {
      if (!Under(*it, root)) {
        ++it;
        continue;
      }
      out.dirs.insert(it->substr(root.size()));
      it = state_->dirs.erase(it);
    }
    return out;
  }
  void Put(Entries entries, const std::string& to) {
    for (auto& [rel, bytes] : entries.files) state_->files[to + rel] = std::move(bytes);
    for (const auto& rel : entries.dirs) state_->dirs.insert(to + rel);
  }

  std::shared_ptr<MemoryState> state_ = std::make_shared<MemoryState>();
};

// ---------------------------------------------------------------- fault injection

struct FaultState {
  FaultOptions options;
  std::atomic<uint64_t> written{0};
  std::atomic<uint64_t> changes{0};
  // Counts one change; fails it (and every later one) once the crash point is passed.
  Status Change(const char* what, const std::string& path) {
    if (changes.fetch_add(1) < options.crash_after_changes) return Status::Ok();
    return IOError(what, " ", path, ": injected crash after ", options.crash_after_changes,
                   " changes");
  }
};

class FaultReadableFile final : public ReadableFile {
 public:
  explicit FaultReadableFile(std::unique_ptr<ReadableFile> base) : base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  uint64_t size() const override { return base_->size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) const override {
    return IOError("read ", path(), " at offset ", offset, ": Input/output error (injected)");
  }

 private:
  std::unique_ptr<ReadableFile> base_;
};

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(std::unique_ptr<WritableFile> base, std::shared_ptr<FaultState> state)
      : base_(std::move(base)), state_(std::move(state)) {}
  const std::string& path() const override { return base_->path(); }
  uint64_t size() const override { return base_->size(); }
  Status Append(std::span<const uint8_t> bytes) override {
    TS_RETURN_IF_ERROR(state_->Change("write", path()));
    uint64_t before = state_->written.fetch_add(bytes.size());
    if (before + bytes.size() > state_->options.write_budget_bytes)
      return ResourceExhausted("write ", path(), ": No space left on device (injected after ",
                               state_->options.write_budget_bytes, " bytes)");
    return base_->Append(bytes);
  }
  Status Commit() override {
    TS_RETURN_IF_ERROR(state_->Change("commit", path()));
    return base_->Commit();
  }

 private:
  std::unique_ptr<WritableFile> base_;
  std::shared_ptr<FaultState> state_;
};

class FaultInjectingStorage final : public Storage {
 public:
  FaultInjectingStorage(std::shared_ptr<Storage> base, FaultOptions options)
      : base_(std::move(base)), state_(std::make_shared<FaultState>()) {
    state_->options = std::move(options);
  }
  Result<std::unique_ptr<ReadableFile>> OpenRead(const std::string& path) override {
    TS_ASSIGN_OR_RETURN(auto file, base_->OpenRead(path));
    const auto& needle = state_->options.fail_reads_containing;
    if (!needle.empty() && path.find(needle) != std::string::npos)
      return std::unique_ptr<ReadableFile>(new FaultReadableFile(std::move(file)));
    return file;
  }
  Result<std::unique_ptr<WritableFile>> CreateAtomic(const std::string& path) override {
    TS_RETURN_IF_ERROR(state_->Change("create", path));
    TS_ASSIGN_OR_RETURN(auto file, base_->CreateAtomic(path));
    return std::unique_ptr<WritableFile>(new FaultWritableFile(std::move(file), state_));
  }
  Status CreateDirs(const std::string& dir) override {
    TS_RETURN_IF_ERROR(state_->Change("create directory", dir));
    return base_->CreateDirs(dir);
  }
  Result<bool> Exists(const std::string& path) override { return base_->Exists(path); }
  Result<bool> IsDirectory(const std::string& path) override { return base_->IsDirectory(path); }
  Result<std::vector<std::string>> List(const std::string& dir) override {
    return base_->List(dir);
  }
  Status Remove(const std::string& path) override {
    TS_RETURN_IF_ERROR(state_->Change("remove", path));
    return base_->Remove(path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    TS_RETURN_IF_ERROR(state_->Change("rename", from));
    return base_->Rename(from, to);
  }
  Status Exchange(const std::string& a, const std::string& b) override {
    if (state_->options.no_exchange)
      return Unimplemented("exchange ", a, " and ", b, ": not supported (injected)");
    TS_RETURN_IF_ERROR(state_->Change("exchange", a));
    return base_->Exchange(a, b);
  }
  Status RemoveAll(const std::string& path) override {
    TS_RETURN_IF_ERROR(state_->Change("remove", path));
    return base_->RemoveAll(path);
  }
  Result<uint64_t> FreeBytes(const std::string& dir) override {
    TS_ASSIGN_OR_RETURN(uint64_t base_free, base_->FreeBytes(dir));
    const uint64_t budget = state_->options.write_budget_bytes;
    const uint64_t used = state_->written.load();
    return std::min(base_free, used >= budget ? 0 : budget - used);
  }

 private:
  std::shared_ptr<Storage> base_;
  std::shared_ptr<FaultState> state_;
};

}  // namespace

std::shared_ptr<Storage> LocalStorage() {
  static auto local = std::make_shared<LocalFileSystem>();
  return local;
}
std::shared_ptr<Storage> NewMemoryStorage() { return std::make_shared<MemoryStorage>(); }
std::shared_ptr<Storage> NewFaultInjectingStorage(std::shared_ptr<Storage> base,
                                                  FaultOptions options) {
  return std::make_shared<FaultInjectingStorage>(std::move(base), std::move(options));
}

int64_t PreadFull(int fd, void* out, uint64_t bytes, uint64_t offset) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd, static_cast<uint8_t*>(out) + done, bytes - done,
                                static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (got == 0) break;
    done += static_cast<uint64_t>(got);
  }
  return static_cast<int64_t>(done);
}

}  // namespace tilestage
