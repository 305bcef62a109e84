// Shard files: one file of records (samples) with a superblock, 4 KiB-aligned records and a
// fixed-size index at the end. The byte layout is specified in tiling/FORMAT.md.
//
// ShardWriter streams records to a temporary file and publishes it atomically in Finish(); one
// thread at a time. ShardReader validates superblock, footer and index on Open() and then serves
// random reads by record number; its const methods are safe from many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiling/codec.h"
#include "tiling/dtype.h"
#include "tiling/sample.h"
#include "tiling/status.h"
#include "tiling/storage.h"

namespace tilestage {

inline constexpr uint32_t kShardFormatVersion = 1;
inline constexpr std::array<uint8_t, 8> kShardMagic = {'T', 'S', 'S', 'H', 'A', 'R', 'D', 0};
inline constexpr std::array<uint8_t, 8> kFooterMagic = {'T', 'S', 'F', 'O', 'O', 'T', 'E', 'R'};
inline constexpr std::array<uint8_t, 4> kRecordMagic = {'T', 'R', 'E', 'C'};
inline constexpr size_t kSuperblockBytes = 64;
inline constexpr size_t kIndexEntryBytes = 48;
inline constexpr size_t kFooterBytes = 64;
inline constexpr uint32_t kDefaultAlignment = 4096;
inline constexpr uint32_t kFlagLittleEndian = 1;

struct IndexEntry {
  uint64_t offset = 0;       // of the record's stored bytes in the file
  uint64_t stored_size = 0;  // bytes on disk
  uint64_t raw_size = 0;     // bytes once decoded (header + raw field data)
  uint64_t checksum = 0;     // XXH3-64 of the stored bytes
  Codec codec = Codec::kNone;
  bool shuffled = false;
};

// A record ready to be written: encoded (compressed) stored bytes and their checksum. Encoding is
// the expensive part, so callers do it on their own thread and hand the result to a writer.
struct EncodedRecord {
  std::vector<uint8_t> stored;
  uint64_t raw_size = 0;
  uint64_t checksum = 0;
  CodecSpec codec;
};

Result<EncodedRecord> EncodeRecord(const Sample& sample, const CodecSpec& codec);

// One field of a stored record, as the record's header describes it. `name` points into the
// header bytes; `data` is set by ParseRecordView only.
struct FieldView {
  std::string_view name;
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
  uint64_t raw_bytes = 0;         // once decoded
  uint64_t stored_bytes = 0;      // in the record
  uint64_t payload_offset = 0;    // from the start of the record
  std::span<const uint8_t> data;  // raw (decoded) little-endian bytes
};

struct RecordHeader {
  uint32_t header_bytes = 0;  // fixed part, field table and metadata
  std::span<const uint8_t> meta;
};

// The one parser of a record's header (fixed part, field table, metadata; FORMAT.md §Records),
// from the first bytes of the record. record_bytes is the whole record's stored size: payload
// extents are checked against it and against the codec, so a header that parses is safe to read
// payloads by. Reuses *fields' vectors, so a caller that keeps them allocates nothing per record.
// Errors are DataLoss naming `where`. Thread-safety: plain functions over caller-owned data.
Status ParseRecordHeader(std::span<const uint8_t> header, uint64_t record_bytes,
                         const IndexEntry& entry, const std::string& where, RecordHeader* out,
                         std::vector<FieldView>* fields);

// The fields of `stored` (checksum already verified) located in place, for a loader's hot path:
// unlike DecodeRecord it neither parses the metadata JSON nor copies uncompressed payloads (an
// uncompressed field's data is a span into `stored`). Compressed or shuffled payloads are decoded
// into (*scratch)[field index]; the views stay valid while `stored` and *scratch live.
Status ParseRecordView(std::span<const uint8_t> stored, const IndexEntry& entry,
                       const std::string& where, std::vector<FieldView>* fields,
                       std::vector<std::vector<uint8_t>>* scratch);
// What verify checks of stored bytes (checksum already verified): the header, the metadata JSON
// and every payload decode, as DecodeRecord would, without copying uncompressed payloads
// (compressed ones are decoded into *scratch). DataLoss naming `where`.
Status CheckRecordDecodes(std::span<const uint8_t> stored, const IndexEntry& entry,
                          const std::string& where, std::vector<FieldView>* fields,
                          std::vector<std::vector<uint8_t>>* scratch);

// Decodes stored bytes (already checksum-verified) into a Sample. `where` names the shard and
// record in error messages.
Result<Sample> DecodeRecord(std::span<const uint8_t> stored, const IndexEntry& entry,
                            const std::string& where);

struct ReadOptions {
  // Off only for callers that verify by other means (e.g. a whole-shard hash after staging):
  // damaged bytes then decode silently or fail later with a less precise error.
  bool verify_checksum = true;
};

struct ShardInfo {
  std::string file;  // name within the store directory
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t hash = 0;  // XXH3-64 of the whole file
};

struct ShardWriterOptions {
  uint32_t alignment = kDefaultAlignment;  // power of two; 1 disables padding
};

class ShardWriter {
 public:
  static Result<std::unique_ptr<ShardWriter>> Create(Storage& storage, const std::string& path,
                                                     ShardWriterOptions options = {});
  // Without Finish(), removes the partial file (nothing half-written is published).
  ~ShardWriter();
  Status Append(const EncodedRecord& record);
  uint64_t records() const { return index_.size(); }
  // Bytes written so far (superblock, records and padding).
  uint64_t bytes() const { return offset_; }
  // Writes index and footer, syncs, and publishes the file under its final name.
  Result<ShardInfo> Finish();

 private:
  ShardWriter(std::unique_ptr<WritableFile> file, ShardWriterOptions options);
  Status Write(std::span<const uint8_t> bytes);
  Status PadTo(uint64_t boundary);

  std::unique_ptr<WritableFile> file_;
  ShardWriterOptions options_;
  std::vector<IndexEntry> index_;
  uint64_t offset_ = 0;
  std::unique_ptr<class Hasher> hasher_;
  bool finished_ = false;
};

class ShardReader {
 public:
  // Reads and validates superblock, footer and index. Errors name the path and the bad field.
  static Result<std::unique_ptr<ShardReader>> Open(Storage& storage, const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint64_t num_records() const { return index_.size(); }
  uint64_t file_size() const { return file_->size(); }
  uint32_t alignment() const { return alignment_; }
  const IndexEntry& entry(uint64_t i) const { return index_[i]; }

  // Stored bytes of record i, checksum verified (DataLoss naming shard and record on mismatch).
  Status ReadStored(uint64_t i, std::vector<uint8_t>* stored) const;
  Result<Sample> Read(uint64_t i) const;
  // Read() into an existing sample, reusing its field buffers when the layout matches (as in a
  // loader that reads record after record into the same Sample). On error *sample is
  // unspecified. Uses a per-thread scratch buffer of the largest record read so far.
  Status ReadInto(uint64_t i, Sample* sample, const ReadOptions& options = {}) const;
  // XXH3-64 of the whole file, read in large blocks.
  Result<uint64_t> HashFile() const;
  // Reads the file once, front to back in blocks, and from the same bytes while they are in
  // cache computes the whole-file hash and checks every record's checksum and decoding. Each
  // damaged record is appended to *problems (DataLoss naming shard and record). Returns the
  // whole-file hash, or the error that stopped the read. `mapped`, when not empty, is the whole
  // file mapped by the caller (MapForReading): its pages are hashed where they are, with no copy,
  // each block populated first so that a file cut short since it was opened is an error.
  Result<uint64_t> VerifyRecords(std::vector<Status>* problems,
                                 std::span<const uint8_t> mapped = {}) const;

 private:
  ShardReader() = default;
  Status ReadUncompressedInto(uint64_t i, Sample* sample, const ReadOptions& options) const;
  std::unique_ptr<ReadableFile> file_;
  uint32_t alignment_ = 1;
  std::vector<IndexEntry> index_;
};

}  // namespace tilestage
