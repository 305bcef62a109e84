// A tile store: a directory holding manifest.json and shard files (FORMAT.md).
//
// StoreWriter appends samples to shards that roll over at a target size; Append is thread-safe
// (encoding runs on the caller's thread, only the file write is serialized). Store opens a
// finished store and reads any record by global index; its const methods are thread-safe.
// VerifyStore checks every shard hash and record checksum against the manifest. StagingDir,
// PublishStore and RecoverStore replace a complete store without ever losing it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tiling/manifest.h"
#include "tiling/shard.h"
#include "tiling/storage.h"

namespace tilestage {

inline constexpr char kShardSuffix[] = ".tss";

struct StoreWriterOptions {
  CodecSpec codec;
  uint64_t shard_target_bytes = 256ull << 20;
  uint32_t alignment = kDefaultAlignment;
  // Shard files are named <prefix>shard-NNNNN.tss; MPI ranks and ingest lanes use distinct
  // prefixes ("r0001-", "l001-", "r0001-l001-").
  std::string shard_prefix;
};

class StoreWriter {
 public:
  // Creates dir if needed. A manifest already there is removed first, so a store being rewritten
  // never looks complete; old shard files with this writer's prefix are removed too.
  static Result<std::unique_ptr<StoreWriter>> Create(std::shared_ptr<Storage> storage,
                                                     const std::string& dir,
                                                     StoreWriterOptions options);
  ~StoreWriter();

  Status Append(const Sample& sample);
  Status AppendEncoded(const EncodedRecord& record);
  const CodecSpec& codec() const { return options_.codec; }
  // Finishes the open shard and returns every shard this writer published, in order.
  Result<std::vector<ShardEntry>> Close();

 private:
  StoreWriter(std::shared_ptr<Storage> storage, std::string dir, StoreWriterOptions options);
  Status FinishOpenShard();

  std::shared_ptr<Storage> storage_;
  std::string dir_;
  StoreWriterOptions options_;
  std::mutex mu_;
  std::unique_ptr<ShardWriter> open_;
  std::vector<ShardEntry> shards_;
  Status failed_;  // first error: later appends fail fast with it
  bool closed_ = false;
};

class Store {
 public:
  // Reads the manifest and opens every shard, checking that each exists and holds the number of
  // records and bytes the manifest says (DataLoss naming the shard otherwise). Records read from
  // an ingested store written before a metadata key was always set get that key's default
  // ("padded": false), so every record of a store has the same keys.
  static Result<std::unique_ptr<Store>> Open(std::shared_ptr<Storage> storage,
                                             const std::string& dir);

  struct Location {
    size_t shard = 0;
    uint64_t record = 0;
  };

  const std::string& dir() const { return dir_; }
  const Manifest& manifest() const { return manifest_; }
  uint64_t size() const { return offsets_.back(); }
  size_t num_shards() const { return shards_.size(); }
  const ShardReader& shard(size_t i) const { return *shards_[i]; }
  // First global index of shard i; shard_offset(num_shards()) == size().
  uint64_t shard_offset(size_t i) const { return offsets_[i]; }
  Result<Location> Locate(uint64_t index) const;
  Result<Sample> Read(uint64_t index) const;
  // Read() into an existing sample, reusing its buffers (ShardReader::ReadInto).
  Status ReadInto(uint64_t index, Sample* sample, const ReadOptions& options = {}) const;

 private:
  Store() = default;
  std::string dir_;
  Manifest manifest_;
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<uint64_t> offsets_{0};
};

// The compression every report shows for a store (ingest's summary, inspect), defined once from
// the shard indexes: the decoded bytes of all records (headers and raw field data) and their
// stored (encoded) bytes; ratio() = raw / stored. The codec's effect alone: shard files also hold
// alignment padding, superblocks and indexes (Manifest::TotalBytes counts those).
struct StoreSizes {
  uint64_t raw_bytes = 0;
  uint64_t stored_bytes = 0;
  double ratio() const {
    return stored_bytes ? static_cast<double>(raw_bytes) / static_cast<double>(stored_bytes) : 0.0;
  }
};
StoreSizes MeasureStore(const Store& store);

struct VerifyReport {
  uint64_t shards_checked = 0;
  uint64_t records_checked = 0;
  uint64_t bytes_checked = 0;
  std::vector<std::string> problems;  // one line each, naming the file and record
};

// Checks the manifest, every shard's whole-file hash, record count and size, and every record's
// checksum and decoding, reading each shard once; shards in parallel on `threads` threads (0: one
// per core). Returns the first problem as DataLoss/NotFound (all are in *report, in shard order
// whatever the thread count).
Status VerifyStore(Storage& storage, const std::string& dir, VerifyReport* report, int threads = 0);

// Replacing a complete store (ingest --overwrite). The new store is written into StagingDir(dir),
// a sibling directory on the same file system, and PublishStore puts it in place only once it is
// complete (its manifest written), so that a crash at any moment leaves exactly one complete
// store at dir: the old one until the swap, the new one after it.
//
// "<parent>/.<name>.tilestage-new" for dir "<parent>/<name>".
std::string StagingDir(const std::string& dir);
// Moves the complete store at `staged` to `dir`, replacing the store there: one atomic exchange of
// the two directories (Storage::Exchange), then the old store, now at `staged`, is removed. Where
// the file system cannot exchange, the old store is first renamed aside
// ("<parent>/.<name>.tilestage-old"): a crash between that and the second rename leaves dir empty
// with the old store aside, which RecoverStore puts back. A failure to remove the old store after
// the swap is not an error (the next RecoverStore removes it).
Status PublishStore(Storage& storage, const std::string& staged, const std::string& dir);
// Cleans up after an interrupted replacement of dir, before anything is written there: puts an
// old store that an interrupted PublishStore moved aside back where dir is missing, and removes a
// leftover staging directory (an unfinished new store, or an old one not yet removed).
Status RecoverStore(Storage& storage, const std::string& dir);
// Where a writer of a new store at `out` writes, after RecoverStore: `out` itself when it holds
// no complete store; StagingDir(out), created, when `overwrite` replaces the one there (publish it
// with PublishStore once complete); AlreadyExists naming --out and --overwrite otherwise.
Result<std::string> PrepareStoreOutput(Storage& storage, const std::string& out, bool overwrite);

}  // namespace tilestage
