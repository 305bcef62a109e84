#include "loaders/stager.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>

#include "loaders/stage_plan.h"
#include "tiling/checksum.h"
#include "tiling/manifest.h"
#include "tiling/mllog.h"
#include "tiling/store.h"

namespace tilestage {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kAlign = 4096;            // O_DIRECT alignment of buffers, offsets, lengths
constexpr uint64_t kReadPieceBytes = 8 << 20;  // parallel read granularity inside a chunk

uint64_t RoundUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// ------------------------------------------------------------------ aligned buffers and files

struct AlignedBuffer {
  explicit AlignedBuffer(uint64_t bytes)
      : size(RoundUp(std::max<uint64_t>(bytes, 1), kAlign)),
        data(static_cast<uint8_t*>(std::aligned_alloc(kAlign, size))) {}
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint64_t size;
  uint8_t* data;
};

// Source shard reader: the Storage seam, or an O_DIRECT descriptor when asked and allowed.
class SourceFile {
 public:
  static Result<std::unique_ptr<SourceFile>> Open(Storage& storage, const std::string& path,
                                                  bool direct) {
    auto f = std::unique_ptr<SourceFile>(new SourceFile());
    f->path_ = path;
    if (direct) {
      f->fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
      if (f->fd_ >= 0) return f;
      if (errno != EINVAL) return ErrnoStatus("open", path, errno);
      // The file system refuses O_DIRECT (tmpfs, some overlays): read through the page cache.
    }
    TS_ASSIGN_OR_RETURN(f->file_, storage.OpenRead(path));
    return f;
  }
  ~SourceFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool direct() const { return fd_ >= 0; }

  // Reads [offset, offset + n) into out; out has RoundUp(n, kAlign) bytes of aligned room.
  Status Read(uint64_t offset, uint64_t n, uint8_t* out) const {
    if (!direct()) return file_->ReadAt(offset, {out, n});
    const int64_t got = PreadFull(fd_, out, RoundUp(n, kAlign), offset);
    if (got < 0) return ErrnoStatus("read", path_, errno);
    if (static_cast<uint64_t>(got) < n)
      return DataLoss(path_, ": truncated: cannot read ", n, " bytes at offset ", offset);
    return Status::Ok();
  }

 private:
  SourceFile() = default;
  std::string path_;
  int fd_ = -1;
  std::unique_ptr<ReadableFile> file_;
};

// A destination shard (or, under --no-sync, the manifest): published under its name only by
// Commit (temporary name, fsync, rename), through the Storage seam or with O_DIRECT writes of the
// aligned part.
class DestFile {
 public:
  // Through the Storage seam (always synced), or with raw POSIX calls on the local file system
  // when O_DIRECT is asked for or syncing is turned off (scratch space).
  static Result<std::unique_ptr<DestFile>> Create(Storage& storage, const std::string& path,
                                                  bool direct, bool sync) {
    auto f = std::unique_ptr<DestFile>(new DestFile());
    f->path_ = path;
    f->sync_ = sync;
    const bool local = &storage == LocalStorage().get();
    if (local && (direct || !sync)) {
      f->tmp_path_ = TemporaryPath(path);
      const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
      if (direct) {
        f->fd_ = ::open(f->tmp_path_.c_str(), flags | O_DIRECT, 0644);
        if (f->fd_ >= 0) {
          f->direct_ = true;
          return f;
        }
        // The file system refuses O_DIRECT (tmpfs on older kernels): write through the cache.
        if (errno != EINVAL) return ErrnoStatus("create", f->tmp_path_, errno);
      }
      if (!sync) {
        f->fd_ = ::open(f->tmp_path_.c_str(), flags, 0644);
        if (f->fd_ < 0) return ErrnoStatus("create", f->tmp_path_, errno);
        return f;
      }
      f->tmp_path_.clear();
    }
    TS_ASSIGN_OR_RETURN(f->file_, storage.CreateAtomic(path));
    return f;
  }
  ~DestFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!tmp_path_.empty() && !committed_) ::unlink(tmp_path_.c_str());
  }
  bool direct() const { return direct_; }

  // `bytes` starts at an aligned address; only a shard's last piece may have an unaligned length.
  Status Append(const uint8_t* bytes, uint64_t n) {
    if (file_) return file_->Append({bytes, n});
    const uint64_t aligned = direct_ ? n / kAlign * kAlign : n;
    TS_RETURN_IF_ERROR(WriteAll(bytes, aligned));
    if (aligned < n) {
      // The unaligned tail ends the file; write it through the page cache.
      const int flags = ::fcntl(fd_, F_GETFL);
      if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
        return ErrnoStatus("fcntl", tmp_path_, errno);
      TS_RETURN_IF_ERROR(WriteAll(bytes + aligned, n - aligned));
    }
    return Status::Ok();
  }

  Status Commit() {
    if (file_) return file_->Commit();
    if (sync_ && ::fsync(fd_) != 0) return ErrnoStatus("fsync", tmp_path_, errno);
    ::close(fd_);
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0)
      return ErrnoStatus("rename to", path_, errno);
    committed_ = true;
    if (!sync_) return Status::Ok();
    (void)FsyncDirectoryOf(path_);  // best effort: the shard itself is durable
    return Status::Ok();
  }

 private:
  DestFile() = default;
  Status WriteAll(const uint8_t* p, uint64_t n) {
    uint64_t done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd_, p + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("write", tmp_path_, errno);
      }
      done += static_cast<uint64_t>(w);
    }
    return Status::Ok();
  }
  std::string path_, tmp_path_;
  int fd_ = -1;
  bool direct_ = false;
  bool sync_ = true;
  bool committed_ = false;
  std::unique_ptr<WritableFile> file_;
};

// One shard on its way in: every node of the replica set hashes every transferred shard, even
// one it already holds, so all of them see a corrupt source shard at the same moment.
struct Landing {
  std::unique_ptr<DestFile> file;  // null when this node already holds the shard
  Hasher hasher;
  uint64_t received = 0;
};

// ------------------------------------------------------------------ local copy

// Staging between two local directories (one node, no MPI traffic): shards are copied in
// parallel, one thread per shard, largest first (two threads writing one ext4 file serialize on
// its inode lock: two threads copying halves of a 108 MB shard took 0.034-0.039 s here, one took
// 0.031 s). The source shard is mapped, and piece by piece of kLocalPieceBytes each piece is
// written from the mapping with one pwrite at a 2 MiB boundary, then hashed where it landed,
// through a mapping of the temporary file. That is one copy of every byte, as cp's
// copy_file_range makes (reading into a buffer first made two: `stage --no-sync` of a 108 MB
// shard took 0.053 s that way against 0.044 s mapped, and a 2.17 GB store 0.58-0.59 s against
// 0.45-0.50 s, warm); the check covers the bytes as they landed; and the page cache holds the
// staged shard in 2 MiB folios, each mapped by one page-table entry (copy_file_range lands it
// through a pipe in 4 KiB pages, which cost an entry and a first-touch fault each when mapped: on
// the 2-core VM the first epoch of a Loader on the staged store ran 3-5x slower over such pages).
// Each mapped piece is populated (PopulateMapped) before it is touched, and a pwrite from a piece
// that vanished fails with EFAULT, so a source cut short while it is copied is an error naming
// it, not a SIGBUS. A copied shard whose hash matches the manifest stays under its temporary name
// until every copy has ended; then, with sync, one syncfs makes all of them durable at once, and
// they are published (renamed), also when another shard failed. A file's own fsync waits for a
// journal commit of its own: 68 shards of 32 MiB took 1.9-2.2 s to stage with one fsync each
// against 1.4-1.5 s with one syncfs, and cp -r && sync 1.9-2.0 s. With sync, writeback is also
// started piece by piece (sync_file_range), so the disk works while the copy goes on. A shard
// that fails its check, or is cut short by another shard's error, has its temporary file removed.
constexpr uint64_t kLocalPieceBytes = 2 << 20;

// A mapping from MapForReading, unmapped when reset or destroyed.
struct ReadMapping {
  std::span<const uint8_t> bytes;
  ReadMapping() = default;
  ReadMapping(const ReadMapping&) = delete;
  ReadMapping& operator=(const ReadMapping&) = delete;
  ~ReadMapping() { Reset(); }
  Status Map(const std::string& path, uint64_t n) {
    // Without huge-page advice: a cold source read through 2 MiB folios was faster at 108 MB
    // but slower at 2.17 GB (bench/loaders/README.md).
    TS_ASSIGN_OR_RETURN(bytes, MapForReading(path, n, /*huge_pages=*/false));
    return Status::Ok();
  }
  void Reset() {
    if (!bytes.empty()) ::munmap(const_cast<uint8_t*>(bytes.data()), bytes.size());
    bytes = {};
  }
};

struct LocalShard {
  std::string src_path, dst_path, tmp_path;
  const std::string* expected_hash = nullptr;
  uint64_t bytes = 0;
  int dst = -1;
  ReadMapping src;         // the source shard
  ReadMapping landed;      // the temporary file, as far as it is written
  Hasher hasher;           // of the pieces landed so far, in order
  bool copied = false;     // complete under tmp_path, its hash the manifest's
  bool published = false;  // renamed to dst_path
  ~LocalShard() {
    if (dst >= 0) ::close(dst);
    if (!published && !tmp_path.empty()) ::unlink(tmp_path.c_str());
  }
};

// Maps the source shard after checking that its size is the manifest's (its hash covers `bytes`
// bytes only, so a longer source is corrupt too).
Status MapLocalSource(LocalShard* s) {
  struct stat st;
  if (::stat(s->src_path.c_str(), &st) != 0) return ErrnoStatus("stat", s->src_path, errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < s->bytes)
    return DataLoss(s->src_path, ": truncated at ", size, " of ", s->bytes, " bytes");
  if (size > s->bytes)
    return DataLoss("source shard ", s->src_path, ": ", size, " bytes, the manifest says ",
                    s->bytes, "; not staged");
  return s->bytes == 0 ? Status::Ok() : s->src.Map(s->src_path, s->bytes);
}

// Writes [offset, offset + n) of the mapped source into the temporary file and adds the landed
// bytes to the shard's hash.
Status CopyLocalPiece(LocalShard* s, uint64_t offset, uint64_t n) {
  const uint8_t* piece = s->src.bytes.data() + offset;
  TS_RETURN_IF_ERROR(PopulateMapped({piece, n}, s->src_path, offset));
  for (uint64_t w = 0; w < n;) {
    const ssize_t put = ::pwrite(s->dst, piece + w, n - w, static_cast<off_t>(offset + w));
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && errno == EFAULT) return TruncatedWhileMapped(s->src_path, offset, n);
    if (put < 0) return ErrnoStatus("write", s->tmp_path, errno);
    w += static_cast<uint64_t>(put);
  }
  const uint8_t* landed = s->landed.bytes.data() + offset;
  TS_RETURN_IF_ERROR(PopulateMapped({landed, n}, s->tmp_path, offset));
  s->hasher.Update({landed, n});
  return Status::Ok();
}

// Copies the shard to s->tmp_path and checks its hash (s->copied), or returns early once
// `cancelled` is set by another shard.
Status CopyLocalShard(LocalShard* s, bool sync, const std::atomic<bool>& cancelled) {
  TS_RETURN_IF_ERROR(MapLocalSource(s));
  const std::string tmp = TemporaryPath(s->dst_path);
  s->dst = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s->dst < 0) return ErrnoStatus("create", tmp, errno);
  s->tmp_path = tmp;
  if (s->bytes > 0) TS_RETURN_IF_ERROR(s->landed.Map(tmp, s->bytes));
  for (uint64_t offset = 0; offset < s->bytes; offset += kLocalPieceBytes) {
    if (cancelled) return Status::Ok();
    const uint64_t n = std::min(kLocalPieceBytes, s->bytes - offset);
    TS_RETURN_IF_ERROR(CopyLocalPiece(s, offset, n));
    if (sync)
      ::sync_file_range(s->dst, static_cast<off_t>(offset), static_cast<off_t>(n),
                        SYNC_FILE_RANGE_WRITE);
  }
  s->src.Reset();
  s->landed.Reset();
  const std::string hex = HashToHex(s->hasher.Digest());
  if (hex != *s->expected_hash)
    return DataLoss("source shard ", s->src_path, ": hash ", hex, " does not match the manifest's ",
                    *s->expected_hash, " (corrupt source); not staged");
  const int dst = s->dst;
  s->dst = -1;
  if (::close(dst) != 0) return ErrnoStatus("close", tmp, errno);
  s->copied = true;
  return Status::Ok();
}

// ------------------------------------------------------------------ one node leader

class NodeStager {
 public:
  NodeStager(Communicator& leaders, int node, int nodes, const StageOptions& options)
      : leaders_(leaders), node_(node), nodes_(nodes), o_(options) {}
  ~NodeStager() { commits_.wait(); }

  Status Run(NodeStageReport* report);

 private:
  Status ReadManifest();
  Status CheckExisting();
  Status PrepareDestination();
  Status Transfer();
  Status TransferLocal(const std::vector<size_t>& moving);
  Status ReadChunk(const TransferChunk& chunk, uint8_t* out);
  Status Land(const TransferChunk& chunk, const uint8_t* bytes);
  Status WriteNodeManifest();
  // Shard names are plain file names (Manifest::FromJson refuses any other), so these stay
  // inside the source and the destination.
  std::string SourcePath(size_t s) const { return JoinPath(o_.from, manifest_.shards[s].file); }
  std::string DestPath(size_t s) const { return JoinPath(dest_, manifest_.shards[s].file); }
  // A temporary file that a stager (or the manifest writer) left in the destination for one of
  // this store's files; nothing else there is removed.
  bool IsStaleTemporary(const std::string& name) const;

  Communicator& leaders_;
  int node_, nodes_;
  const StageOptions& o_;
  Storage* src_ = nullptr;
  Storage* dst_ = nullptr;
  Manifest manifest_;
  std::vector<uint64_t> shard_bytes_;
  StagePlan plan_;
  std::string dest_;
  std::vector<size_t> mine_;     // shards this node holds, in source order
  std::vector<uint8_t> intact_;  // per mine_: already present with the right hash
  std::unique_ptr<tbb::task_arena> arena_;
  std::map<size_t, std::unique_ptr<SourceFile>> sources_;
  std::mutex sources_mu_;
  std::map<size_t, Landing> landing_;
  NodeStageReport* report_ = nullptr;
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<uint64_t> shards_written_{0};
  std::atomic<bool> any_direct_read_{false}, any_direct_write_{false};
  tbb::task_group commits_;
  std::mutex commit_mu_;  // guards commit_status_
  std::mutex run_mu_;     // serializes commits_.run
  Status commit_status_;
};

Status NodeStager::ReadManifest() {
  std::string text;
  Status status;
  if (node_ == 0) {
    auto m = tilestage::ReadManifest(*src_, o_.from);
    if (m.ok()) text = m->ToJson().dump();
    else status = m.status().WithContext(StrCat("source store ", o_.from));
  }
  TS_RETURN_IF_ERROR(AgreeStatus(leaders_, status));
  TS_RETURN_IF_ERROR(leaders_.BroadcastBytes(&text, 0));
  auto j = nlohmann::json::parse(text, nullptr, false);
  TS_ASSIGN_OR_RETURN(manifest_, Manifest::FromJson(j, JoinPath(o_.from, kManifestName)));
  for (const auto& s : manifest_.shards) shard_bytes_.push_back(s.bytes);
  return Status::Ok();
}

bool NodeStager::IsStaleTemporary(const std::string& name) const {
  if (IsTemporaryNameOf(name, kManifestName)) return true;
  for (const ShardEntry& e : manifest_.shards)
    if (IsTemporaryNameOf(name, e.file)) return true;
  return false;
}

Status NodeStager::CheckExisting() {
  intact_.assign(mine_.size(), 0);
  arena_->execute([&] {
    tbb::parallel_for(size_t{0}, mine_.size(), [&](size_t k) {
      const std::string path = DestPath(mine_[k]);
      auto exists = dst_->Exists(path);
      if (!exists.ok() || !*exists) return;
      // A shard that cannot be read or does not match is simply staged again (replaced
      // atomically); only an intact one is skipped.
      auto file = dst_->OpenRead(path);
      if (!file.ok()) return;
      auto hash = HashWholeFile(**file);
      const ShardEntry& e = manifest_.shards[mine_[k]];
      if (hash.ok() && HashToHex(*hash) == e.hash && (*file)->size() == e.bytes) intact_[k] = 1;
    });
  });
  return Status::Ok();
}

Status NodeStager::PrepareDestination() {
  TS_RETURN_IF_ERROR(dst_->CreateDirs(dest_));
  TS_RETURN_IF_ERROR(CheckExisting());
  uint64_t needed = manifest_.ToJson().dump(2).size() + kAlign;
  for (size_t k = 0; k < mine_.size(); ++k)
    if (!intact_[k]) needed += RoundUp(shard_bytes_[mine_[k]], kAlign);
  // Stale temporaries of an interrupted run are removed below, so their space counts as free.
  TS_ASSIGN_OR_RETURN(auto names, dst_->List(dest_));
  uint64_t stale = 0;
  for (const auto& name : names)
    if (IsStaleTemporary(name)) {
      auto f = dst_->OpenRead(JoinPath(dest_, name));
      if (f.ok()) stale += (*f)->size();
    }
  TS_ASSIGN_OR_RETURN(uint64_t free_bytes, dst_->FreeBytes(dest_));
  if (free_bytes + stale < needed)
    return ResourceExhausted("destination ", dest_, " (node ", node_, ") has ",
                             free_bytes + stale, " bytes free but staging needs ", needed,
                             " bytes for ", mine_.size(), " shards; nothing was written");
  return Status::Ok();
}

Status NodeStager::ReadChunk(const TransferChunk& chunk, uint8_t* out) {
  SourceFile* file = nullptr;
  {
    std::lock_guard lock(sources_mu_);
    auto& slot = sources_[chunk.shard];
    if (!slot) {
      TS_ASSIGN_OR_RETURN(slot, SourceFile::Open(*src_, SourcePath(chunk.shard), o_.direct_io));
      if (slot->direct()) any_direct_read_ = true;
    }
    file = slot.get();
  }
  const uint64_t pieces = std::max<uint64_t>(1, (chunk.bytes + kReadPieceBytes - 1) /
                                                    kReadPieceBytes);
  std::vector<Status> status(pieces);
  arena_->execute([&] {
    tbb::parallel_for(uint64_t{0}, pieces, [&](uint64_t p) {
      const uint64_t off = p * kReadPieceBytes;
      const uint64_t n = std::min(kReadPieceBytes, chunk.bytes - std::min(off, chunk.bytes));
      if (n > 0) status[p] = file->Read(chunk.offset + off, n, out + off);
    });
  });
  for (const Status& s : status) TS_RETURN_IF_ERROR(s);
  report_->bytes_read_from_source += chunk.bytes;
  return Status::Ok();
}

Status NodeStager::Land(const TransferChunk& chunk, const uint8_t* bytes) {
  Landing& landing = landing_.at(chunk.shard);
  landing.hasher.Update({bytes, chunk.bytes});
  landing.received += chunk.bytes;
  if (landing.file) {
    TS_RETURN_IF_ERROR(landing.file->Append(bytes, chunk.bytes));
  }
  if (landing.received < shard_bytes_[chunk.shard]) return Status::Ok();
  const ShardEntry& e = manifest_.shards[chunk.shard];
  const std::string hash = HashToHex(landing.hasher.Digest());
  if (hash != e.hash) {
    landing.file.reset();  // drops the temporary file: no corrupt copy is left behind
    return DataLoss("source shard ", SourcePath(chunk.shard), ": hash ", hash,
                    " does not match the manifest's ", e.hash, " (corrupt source); not staged");
  }
  if (landing.file) {
    // fsync and rename in the background, so the next shard's bytes keep flowing meanwhile.
    DestFile* file = landing.file.release();
    std::lock_guard lock(run_mu_);  // Land runs on several threads at once
    commits_.run([this, file, bytes = e.bytes] {
      std::unique_ptr<DestFile> owned(file);
      Status s = owned->Commit();
      if (s.ok()) {
        bytes_written_ += bytes;
        ++shards_written_;
        return;
      }
      std::lock_guard lock(commit_mu_);
      if (commit_status_.ok()) commit_status_ = s;
    });
  }
  return Status::Ok();
}

Status NodeStager::Transfer() {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> replica_comm,
                      leaders_.Split(plan_.member_of(node_), plan_.group_of(node_)));
  Communicator& replicas = *replica_comm;
  const int me = replicas.rank(), count = replicas.size();

  // A shard moves when any node of the replica set lacks it.
  std::vector<uint8_t> missing(mine_.size());
  for (size_t k = 0; k < mine_.size(); ++k) missing[k] = intact_[k] ? 0 : 1;
  std::vector<uint8_t> any_missing = missing;
  TS_RETURN_IF_ERROR(replicas.AllreduceMax(any_missing));
  std::vector<size_t> moving;
  for (size_t k = 0; k < mine_.size(); ++k)
    if (any_missing[k]) moving.push_back(mine_[k]);
  // A node alone in its replica set, copying between local directories, needs no MPI traffic:
  // it copies shards in parallel in the kernel.
  const bool local = src_ == LocalStorage().get() && dst_ == LocalStorage().get();
  if (count == 1 && local && !o_.direct_io) return TransferLocal(moving);

  Status status;
  for (size_t k = 0; k < mine_.size(); ++k) {
    if (!any_missing[k]) continue;
    Landing& landing = landing_[mine_[k]];
    if (missing[k] && status.ok()) {
      auto file = DestFile::Create(*dst_, DestPath(mine_[k]), o_.direct_io, o_.sync);
      if (file.ok()) {
        if ((*file)->direct()) any_direct_write_ = true;
        landing.file = std::move(file).value();
      } else {
        status = file.status();
      }
    }
  }
  TS_RETURN_IF_ERROR(AgreeStatus(replicas, status));

  // MPI's allgather displacements are ints: keep count * chunk below 2 GiB.
  uint64_t chunk = std::min<uint64_t>(o_.chunk_bytes, kMaxStageChunkBytes);
  chunk = std::min<uint64_t>(chunk, (static_cast<uint64_t>(INT_MAX) / count) / kAlign * kAlign);
  chunk = std::max<uint64_t>(RoundUp(chunk, kAlign), kAlign);
  const auto schedule = ScheduleReads(moving, shard_bytes_, count, chunk);
  size_t rounds = 0;
  for (const auto& list : schedule) rounds = std::max(rounds, list.size());

  AlignedBuffer buffers[2] = {AlignedBuffer(chunk * count), AlignedBuffer(chunk * count)};
  std::vector<uint64_t> counts(count), offsets(count);
  for (int r = 0; r < count; ++r) offsets[r] = static_cast<uint64_t>(r) * chunk;
  tbb::task_group writes;
  Status write_status;
  auto land_round = [&](size_t round, uint8_t* base) {
    // Different slots hold different shards: land them in parallel.
    std::vector<Status> st(count);
    tbb::parallel_for(0, count, [&](int r) {
      if (round < schedule[r].size())
        st[r] = Land(schedule[r][round], base + static_cast<uint64_t>(r) * chunk);
    });
    for (const Status& s : st)
      if (!s.ok()) return s;
    return Status::Ok();
  };

  for (size_t round = 0; round < rounds; ++round) {
    uint8_t* base = buffers[round % 2].data;
    Status read_status;
    if (round < schedule[me].size())
      read_status = ReadChunk(schedule[me][round], base + static_cast<uint64_t>(me) * chunk);
    writes.wait();  // the previous round's landing used the other buffer
    Status mine = !write_status.ok() ? write_status : read_status;
    TS_RETURN_IF_ERROR(AgreeStatus(replicas, mine));
    for (int r = 0; r < count; ++r)
      counts[r] = round < schedule[r].size() ? schedule[r][round].bytes : 0;
    if (count > 1)
      TS_RETURN_IF_ERROR(replicas.AllgatherBytesInPlace({base, chunk * count}, counts, offsets));
    writes.run([&, round, base] { write_status = land_round(round, base); });
  }
  writes.wait();
  commits_.wait();
  if (write_status.ok()) write_status = commit_status_;
  return AgreeStatus(replicas, write_status);
}

Status NodeStager::TransferLocal(const std::vector<size_t>& moving) {
  // Largest shards first, so the last ones to start are the small ones.
  std::vector<size_t> order = moving;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return shard_bytes_[a] > shard_bytes_[b]; });
  std::vector<Status> status(order.size());
  std::vector<LocalShard> shards(order.size());
  std::atomic<bool> failed{false};
  // A shared queue in that order (not parallel_for's recursive range splitting, which could
  // leave the last large shard to one thread while the other had taken the small one early).
  std::atomic<size_t> next{0};
  auto copy_one = [&](size_t k) {
    if (failed) return;  // stop starting new shards after the first error
    const size_t s = order[k];
    LocalShard& shard = shards[k];
    shard.src_path = SourcePath(s);
    shard.dst_path = DestPath(s);
    shard.expected_hash = &manifest_.shards[s].hash;
    shard.bytes = shard_bytes_[s];
    status[k] = CopyLocalShard(&shard, o_.sync, failed);
    if (!status[k].ok()) failed = true;
  };
  arena_->execute([&] {
    tbb::parallel_for(0, arena_->max_concurrency(), [&](int) {
      for (size_t k; (k = next.fetch_add(1)) < order.size();) copy_one(k);
    });
  });
  // Every shard copied and checked is published, after one durability barrier for all of them.
  const bool any_copied = std::ranges::any_of(shards, [](const LocalShard& s) { return s.copied; });
  Status published = o_.sync && any_copied ? SyncFileSystemOf(dest_) : Status::Ok();
  for (LocalShard& shard : shards) {
    if (!published.ok() || !shard.copied) continue;
    if (::rename(shard.tmp_path.c_str(), shard.dst_path.c_str()) != 0) {
      published = ErrnoStatus("rename to", shard.dst_path, errno);
      continue;
    }
    shard.published = true;
    report_->bytes_read_from_source += shard.bytes;
    bytes_written_ += shard.bytes;
    ++shards_written_;
  }
  // The renames themselves: one fsync of the shards' directory for all of them.
  if (published.ok() && o_.sync && any_copied) published = FsyncDirectoryOf(DestPath(order[0]));
  for (const Status& st : status) TS_RETURN_IF_ERROR(st);
  return published;
}

Status NodeStager::WriteNodeManifest() {
  Manifest m = manifest_;
  m.shards.clear();
  for (size_t s : mine_) m.shards.push_back(manifest_.shards[s]);
  m.attrs["staging"] = {{"source", o_.from},
                        {"mode", StageModeName(o_.mode)},
                        {"node", node_},
                        {"nodes", nodes_},
                        {"group", plan_.group},
                        {"to", o_.to},
                        {"source_shards", manifest_.shards.size()},
                        {"source_records", manifest_.TotalRecords()},
                        {"source_fingerprint", StoreFingerprint(manifest_)}};
  if (o_.sync) return WriteManifest(*dst_, dest_, m);
  // Scratch space: published by rename like the shards, without the two fsyncs (0.5-1 ms).
  const std::string text = ManifestText(m);
  TS_ASSIGN_OR_RETURN(auto file, DestFile::Create(*dst_, JoinPath(dest_, kManifestName),
                                                  /*direct=*/false, /*sync=*/false));
  TS_RETURN_IF_ERROR(file->Append(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  return file->Commit();
}

Status NodeStager::Run(NodeStageReport* report) {
  const auto t0 = Clock::now();
  report_ = report;
  src_ = o_.source_storage.get();
  dst_ = o_.dest_storage.get();
  arena_ = o_.threads > 0 ? std::make_unique<tbb::task_arena>(o_.threads)
                          : std::make_unique<tbb::task_arena>();
  TS_RETURN_IF_ERROR(ReadManifest());
  int group = o_.group;
  if (o_.mode == StageMode::kReplicate) {
    if (group > 1)
      return InvalidArgument("--group ", group, " applies to partition mode; replicate puts "
                             "every shard on every node");
    group = 1;
  } else if (group == 0) {
    group = nodes_;
  }
  TS_ASSIGN_OR_RETURN(plan_, MakeStagePlan(shard_bytes_, nodes_, group));
  mine_ = plan_.shards_of_node(node_);
  dest_ = StageDestination(o_.to, node_);
  report->node = node_;
  report->dest = dest_;
  report->group = plan_.group;
  report->store_bytes = manifest_.TotalBytes();
  report->shards_held = mine_.size();
  for (size_t s : mine_) report->bytes_held += shard_bytes_[s];

  // Nothing is removed or written until every node knows it has room.
  TS_RETURN_IF_ERROR(AgreeStatus(leaders_, PrepareDestination()));
  Status cleanup = dst_->Remove(JoinPath(dest_, kManifestName));
  if (cleanup.ok()) {
    auto names = dst_->List(dest_);
    if (!names.ok()) cleanup = names.status();
    else
      for (const auto& name : *names)
        if (IsStaleTemporary(name) && cleanup.ok())
          cleanup = dst_->Remove(JoinPath(dest_, name));
  }
  TS_RETURN_IF_ERROR(AgreeStatus(leaders_, cleanup));
  // Errors inside one replica set are agreed within it; the caller agrees across the job.
  TS_RETURN_IF_ERROR(Transfer());
  TS_RETURN_IF_ERROR(WriteNodeManifest());
  report->shards_written = shards_written_;
  report->shards_skipped = std::count(intact_.begin(), intact_.end(), 1);
  report->bytes_written = bytes_written_;
  report->direct_io_read = any_direct_read_;
  report->direct_io_write = any_direct_write_;
  report->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return Status::Ok();
}

}  // namespace

// ------------------------------------------------------------------ public

std::string StageDestination(const std::string& pattern, int node) {
  std::string out = pattern;
  const std::string key = "{node}";
  for (size_t pos; (pos = out.find(key)) != std::string::npos;)
    out.replace(pos, key.size(), std::to_string(node));
  return out;
}

Result<StageMode> ParseStageMode(const std::string& text) {
  if (text == "partition") return StageMode::kPartition;
  if (text == "replicate") return StageMode::kReplicate;
  return InvalidArgument("stage mode '", text, "' is not one of partition, replicate");
}

const char* StageModeName(StageMode mode) {
  return mode == StageMode::kPartition ? "partition" : "replicate";
}

nlohmann::json NodeStageReport::ToJson() const {
  return {{"node", node},
          {"dest", dest},
          {"shards_held", shards_held},
          {"shards_written", shards_written},
          {"shards_skipped", shards_skipped},
          {"bytes_held", bytes_held},
          {"bytes_written", bytes_written},
          {"bytes_read_from_source", bytes_read_from_source},
          {"seconds", seconds},
          {"gb_per_s", gb_per_s()},
          {"direct_io_read", direct_io_read},
          {"direct_io_write", direct_io_write},
          {"group", group},
          {"store_bytes", store_bytes}};
}

NodeStageReport NodeStageReport::FromJson(const nlohmann::json& j) {
  NodeStageReport r;
  r.node = j.value("node", 0);
  r.dest = j.value("dest", "");
  r.shards_held = j.value("shards_held", uint64_t{0});
  r.shards_written = j.value("shards_written", uint64_t{0});
  r.shards_skipped = j.value("shards_skipped", uint64_t{0});
  r.bytes_held = j.value("bytes_held", uint64_t{0});
  r.bytes_written = j.value("bytes_written", uint64_t{0});
  r.bytes_read_from_source = j.value("bytes_read_from_source", uint64_t{0});
  r.seconds = j.value("seconds", 0.0);
  r.direct_io_read = j.value("direct_io_read", false);
  r.direct_io_write = j.value("direct_io_write", false);
  r.group = j.value("group", 0);
  r.store_bytes = j.value("store_bytes", uint64_t{0});
  return r;
}

uint64_t StageReport::bytes_written() const {
  uint64_t n = 0;
  for (const auto& r : node_reports) n += r.bytes_written;
  return n;
}

uint64_t StageReport::bytes_read_from_source() const {
  uint64_t n = 0;
  for (const auto& r : node_reports) n += r.bytes_read_from_source;
  return n;
}

nlohmann::json StageReport::ToJson() const {
  nlohmann::json nodes_json = nlohmann::json::array();
  for (const auto& r : node_reports) nodes_json.push_back(r.ToJson());
  return {{"mode", mode},
          {"ranks", ranks},
          {"nodes", nodes},
          {"group", group},
          {"store_bytes", store_bytes},
          {"seconds", seconds},
          {"bytes_written", bytes_written()},
          {"bytes_read_from_source", bytes_read_from_source()},
          {"aggregate_gb_per_s", aggregate_gb_per_s()},
          {"start_ms", start_ms},
          {"stop_ms", stop_ms},
          {"per_node", nodes_json}};
}

Result<StageReport> StageStore(Communicator& comm, const StageOptions& options_in) {
  StageOptions options = options_in;
  if (!options.source_storage) options.source_storage = LocalStorage();
  if (!options.dest_storage) options.dest_storage = LocalStorage();
  const int rank = comm.rank(), size = comm.size();

  std::unique_ptr<Communicator> node_comm;
  if (options.ranks_per_node > 0) {
    TS_ASSIGN_OR_RETURN(node_comm, comm.Split(rank / options.ranks_per_node, rank));
  } else {
    TS_ASSIGN_OR_RETURN(node_comm, comm.SplitByNode());
  }
  const bool leader = node_comm->rank() == 0;
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> leaders, comm.Split(leader ? 0 : -1, rank));
  // The node's number and the node count, from its leader (the only rank that knows them).
  constexpr int64_t kUnknown = INT64_MAX;
  int64_t ids[2] = {leader ? leaders->rank() : kUnknown, leader ? leaders->size() : kUnknown};
  TS_RETURN_IF_ERROR(node_comm->AllreduceMin(ids));

  StageReport report;
  report.mode = StageModeName(options.mode);
  report.ranks = size;
  report.nodes = static_cast<int>(ids[1]);
  Status status;
  if (options.from.empty() || options.to.empty())
    status = InvalidArgument("staging needs a source (--from) and a destination (--to)");
  else if (options.chunk_bytes == 0 || options.chunk_bytes > kMaxStageChunkBytes)
    status = InvalidArgument("chunk size ", options.chunk_bytes, " must be in (0, 1 GiB]");
  else if (report.nodes > 1 && options.to.find("{node}") == std::string::npos &&
           options.ranks_per_node > 0)
    status = InvalidArgument("destination ", options.to, " must contain {node} when several ",
                             "simulated nodes share this host");
  TS_RETURN_IF_ERROR(AgreeStatus(comm, status));

  TS_RETURN_IF_ERROR(comm.Barrier());
  const auto t0 = Clock::now();
  report.start_ms = MlLogger::NowMs();
  NodeStageReport mine;
  const int node = static_cast<int>(ids[0]);
  if (leader) status = NodeStager(*leaders, node, report.nodes, options).Run(&mine);
  // The other ranks of a node wait without taking a core from its leader's copying threads.
  TS_RETURN_IF_ERROR(IdleBarrier(comm));
  status = AgreeStatus(comm, status.ok() ? status
                                         : status.WithContext(StrCat("rank ", rank, " (node ",
                                                                     node, ")")));
  TS_RETURN_IF_ERROR(comm.Barrier());
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  report.stop_ms = MlLogger::NowMs();
  TS_RETURN_IF_ERROR(status);

  // Per-node reports to rank 0.
  TS_ASSIGN_OR_RETURN(std::vector<std::string> texts,
                      comm.GatherBytes(leader ? mine.ToJson().dump() : std::string(), 0));
  if (rank == 0) {
    for (const std::string& text : texts)
      if (!text.empty())
        report.node_reports.push_back(NodeStageReport::FromJson(nlohmann::json::parse(text)));
  } else if (leader) {
    report.node_reports.push_back(mine);
  }
  if (!report.node_reports.empty()) {
    report.group = report.node_reports.front().group;
    report.store_bytes = report.node_reports.front().store_bytes;
  }
  return report;
}

Result<std::vector<MlEvent>> StagingMlEvents(const StageReport& report, const std::string& source,
                                             SourceLocation where) {
  const auto start = static_cast<int64_t>(report.start_ms);
  const auto stop = static_cast<int64_t>(report.stop_ms);
  std::vector<MlEvent> events;
  TS_ASSIGN_OR_RETURN(
      events.emplace_back(),
      MakeMlEvent(MlEventType::kIntervalStart, mlkey::kStagingStart, nullptr, start,
                  {{"mode", report.mode}, {"nodes", report.nodes}, {"source", source}}, where));
  TS_ASSIGN_OR_RETURN(events.emplace_back(),
                      MakeMlEvent(MlEventType::kIntervalEnd, mlkey::kStagingStop, nullptr, stop,
                                  {{"staged_bytes", report.bytes_written()}}, where));
  TS_ASSIGN_OR_RETURN(events.emplace_back(),
                      MakeMlEvent(MlEventType::kPointInTime, mlkey::kStagingDuration,
                                  report.seconds, stop, {{"unit", "s"}}, where));
  return events;
}

}  // namespace tilestage
