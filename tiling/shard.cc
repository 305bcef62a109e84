#include "tiling/shard.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "tiling/checksum.h"
#include "tiling/json_read.h"

namespace tilestage {

static_assert(std::endian::native == std::endian::little,
              "the shard format is little-endian; big-endian hosts need byte swapping");

namespace {

template <typename T>
void Put(std::vector<uint8_t>& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

template <typename T>
T Get(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

// Bounds-checked cursor over untrusted bytes.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  template <typename T>
  bool Read(T* value) {
    if (pos_ + sizeof(T) > bytes_.size()) return false;
    *value = Get<T>(bytes_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool ReadBytes(size_t n, std::span<const uint8_t>* out) {
    if (n > bytes_.size() - pos_) return false;
    *out = bytes_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

constexpr uint64_t kMaxDims = 8;

std::vector<uint8_t> EncodeSuperblock(uint32_t alignment) {
  std::vector<uint8_t> sb(kShardMagic.begin(), kShardMagic.end());
  Put<uint32_t>(sb, kShardFormatVersion);
  Put<uint32_t>(sb, kFlagLittleEndian);
  Put<uint32_t>(sb, alignment);
  sb.resize(kSuperblockBytes - 8, 0);
  Put<uint64_t>(sb, Hash64(sb));
  return sb;
}

void EncodeIndexEntry(const IndexEntry& e, std::vector<uint8_t>& out) {
  const size_t start = out.size();
  Put<uint64_t>(out, e.offset);
  Put<uint64_t>(out, e.stored_size);
  Put<uint64_t>(out, e.raw_size);
  Put<uint64_t>(out, e.checksum);
  Put<uint8_t>(out, static_cast<uint8_t>(e.codec));
  Put<uint8_t>(out, e.shuffled ? 1 : 0);
  out.resize(start + kIndexEntryBytes, 0);
}

}  // namespace

// ------------------------------------------------------------------------------ records

Result<EncodedRecord> EncodeRecord(const Sample& sample, const CodecSpec& codec) {
  if (sample.fields.empty()) return InvalidArgument("a record needs at least one field");
  if (sample.fields.size() > UINT16_MAX) return InvalidArgument("too many fields in a record");
  const std::string meta = sample.meta.dump();

  EncodedRecord rec;
  rec.codec = codec;
  std::vector<uint8_t>& out = rec.stored;
  uint64_t raw_data_bytes = 0;
  for (const Field& f : sample.fields) raw_data_bytes += f.array.ByteSize();
  // One allocation and no intermediate payload copies: the header is written with placeholder
  // stored sizes, each payload is encoded straight after it, and the sizes are patched in.
  out.reserve(256 + meta.size() + (codec.codec == Codec::kNone ? raw_data_bytes : 0));
  out.insert(out.end(), kRecordMagic.begin(), kRecordMagic.end());
  Put<uint16_t>(out, static_cast<uint16_t>(sample.fields.size()));
  Put<uint16_t>(out, 0);
  Put<uint32_t>(out, static_cast<uint32_t>(meta.size()));
  Put<uint32_t>(out, 0);  // header_bytes, patched below
  std::vector<size_t> stored_size_at(sample.fields.size());
  for (size_t i = 0; i < sample.fields.size(); ++i) {
    const Field& f = sample.fields[i];
    const Array& a = f.array;
    if (a.ByteSize() != static_cast<size_t>(a.NumElements()) * DTypeSize(a.dtype))
      return InvalidArgument("field '", f.name, "': ", a.ByteSize(), " bytes do not match ",
                             a.Describe());
    if (a.shape.size() > kMaxDims)
      return InvalidArgument("field '", f.name, "': more than ", kMaxDims, " dims");
    if (f.name.empty() || f.name.size() > 255)
      return InvalidArgument("field name '", f.name, "' must have 1..255 bytes");
    Put<uint16_t>(out, static_cast<uint16_t>(f.name.size()));
    out.insert(out.end(), f.name.begin(), f.name.end());
    Put<uint8_t>(out, static_cast<uint8_t>(a.dtype));
    Put<uint8_t>(out, static_cast<uint8_t>(a.shape.size()));
    for (int64_t d : a.shape) Put<int64_t>(out, d);
    Put<uint64_t>(out, a.ByteSize());
    stored_size_at[i] = out.size();
    Put<uint64_t>(out, 0);  // stored size, patched below
  }
  out.insert(out.end(), meta.begin(), meta.end());
  const uint32_t header_bytes = static_cast<uint32_t>(out.size());
  std::memcpy(out.data() + 12, &header_bytes, sizeof header_bytes);
  for (size_t i = 0; i < sample.fields.size(); ++i) {
    const Array& a = sample.fields[i].array;
    const size_t start = out.size();
    TS_RETURN_IF_ERROR(EncodeBlock(codec, a.data, DTypeSize(a.dtype), &out));
    const uint64_t stored = out.size() - start;
    std::memcpy(out.data() + stored_size_at[i], &stored, sizeof stored);
  }
  rec.raw_size = header_bytes + raw_data_bytes;
  rec.checksum = Hash64(out);
  return rec;
}

// ------------------------------------------------------------------------------ parsing

Status ParseRecordHeader(std::span<const uint8_t> header, uint64_t record_bytes,
                         const IndexEntry& entry, const std::string& where, RecordHeader* out,
                         std::vector<FieldView>* fields) {
  Cursor c(header);
  std::span<const uint8_t> magic;
  uint16_t nfields = 0, reserved = 0;
  uint32_t meta_bytes = 0;
  if (!c.ReadBytes(4, &magic) || !std::equal(magic.begin(), magic.end(), kRecordMagic.begin()))
    return DataLoss(where, ": bad record magic");
  if (!c.Read(&nfields) || !c.Read(&reserved) || !c.Read(&meta_bytes) ||
      !c.Read(&out->header_bytes))
    return DataLoss(where, ": record header truncated");
  if (out->header_bytes > record_bytes)
    return DataLoss(where, ": record header of ", out->header_bytes, " bytes exceeds the ",
                    record_bytes, "-byte record");

  fields->resize(nfields);
  for (FieldView& d : *fields) {
    uint16_t name_len = 0;
    uint8_t dtype_code = 0, ndim = 0;
    std::span<const uint8_t> name;
    if (!c.Read(&name_len) || !c.ReadBytes(name_len, &name) || !c.Read(&dtype_code) ||
        !c.Read(&ndim))
      return DataLoss(where, ": field table truncated");
    d.name = std::string_view(reinterpret_cast<const char*>(name.data()), name.size());
    d.data = {};
    auto dtype = DTypeFromCode(dtype_code);
    if (!dtype.ok()) return DataLoss(where, ": field '", d.name, "': ", dtype.status().message());
    d.dtype = *dtype;
    if (ndim > kMaxDims) return DataLoss(where, ": field '", d.name, "': ", int(ndim), " dims");
    uint64_t elements = 1;
    d.shape.resize(ndim);
    for (int64_t& dim : d.shape) {
      if (!c.Read(&dim)) return DataLoss(where, ": field table truncated");
      if (dim < 0 || (dim > 0 && elements > (UINT64_MAX >> 4) / static_cast<uint64_t>(dim)))
        return DataLoss(where, ": field '", d.name, "': bad dimension ", dim);
      elements *= static_cast<uint64_t>(dim);
    }
    if (!c.Read(&d.raw_bytes) || !c.Read(&d.stored_bytes))
      return DataLoss(where, ": field table truncated");
    if (d.raw_bytes != elements * DTypeSize(d.dtype))
      return DataLoss(where, ": field '", d.name, "': ", d.raw_bytes, " raw bytes for ", elements,
                      " elements of ", DTypeName(d.dtype));
  }
  if (!c.ReadBytes(meta_bytes, &out->meta) || c.pos() != out->header_bytes)
    return DataLoss(where, ": record header size mismatch");

  uint64_t offset = out->header_bytes, raw_total = out->header_bytes;
  for (FieldView& d : *fields) {
    if (d.stored_bytes > record_bytes - offset)
      return DataLoss(where, ": field '", d.name, "' payload truncated");
    if (d.raw_bytes > entry.raw_size)
      return DataLoss(where, ": field '", d.name, "' larger than record");
    // Uncompressed payloads are read in place or copied by their stored size: exactly raw.
    if (entry.codec == Codec::kNone && d.stored_bytes != d.raw_bytes)
      return DataLoss(where, ": field '", d.name, "': stored ", d.stored_bytes, " bytes, raw ",
                      d.raw_bytes);
    // Checked before anything is allocated, so damaged sizes cannot exhaust memory.
    if (d.raw_bytes > MaxDecodedBytes(entry.codec, d.stored_bytes))
      return DataLoss(where, ": field '", d.name, "': ", d.raw_bytes,
                      " raw bytes cannot come from ", d.stored_bytes, " ",
                      CodecName(entry.codec), " bytes");
    d.payload_offset = offset;
    offset += d.stored_bytes;
    raw_total += d.raw_bytes;
  }
  if (raw_total != entry.raw_size)
    return DataLoss(where, ": decoded ", raw_total, " bytes, index says ", entry.raw_size);
  return Status::Ok();
}

namespace {

// Points each parsed field's data at its payload in `stored`, or decodes a compressed or
// shuffled payload into (*scratch)[field index].
Status LocatePayloads(std::span<const uint8_t> stored, const IndexEntry& entry,
                      const std::string& where, std::vector<FieldView>* fields,
                      std::vector<std::vector<uint8_t>>* scratch) {
  const bool in_place = entry.codec == Codec::kNone && !entry.shuffled;
  if (!in_place && scratch->size() < fields->size()) scratch->resize(fields->size());
  for (size_t k = 0; k < fields->size(); ++k) {
    FieldView& f = (*fields)[k];
    const std::span<const uint8_t> payload = stored.subspan(f.payload_offset, f.stored_bytes);
    if (in_place) {
      f.data = payload;
      continue;
    }
    std::vector<uint8_t>& buf = (*scratch)[k];
    buf.resize(f.raw_bytes);
    Status s = DecodeBlock(entry.codec, entry.shuffled, payload, DTypeSize(f.dtype), buf);
    if (!s.ok()) return DataLoss(where, ": field '", f.name, "': ", s.message());
    f.data = buf;
  }
  return Status::Ok();
}

}  // namespace

Status ParseRecordView(std::span<const uint8_t> stored, const IndexEntry& entry,
                       const std::string& where, std::vector<FieldView>* fields,
                       std::vector<std::vector<uint8_t>>* scratch) {
  RecordHeader header;
  TS_RETURN_IF_ERROR(ParseRecordHeader(stored, stored.size(), entry, where, &header, fields));
  return LocatePayloads(stored, entry, where, fields, scratch);
}

Status CheckRecordDecodes(std::span<const uint8_t> stored, const IndexEntry& entry,
                          const std::string& where, std::vector<FieldView>* fields,
                          std::vector<std::vector<uint8_t>>* scratch) {
  RecordHeader header;
  TS_RETURN_IF_ERROR(ParseRecordHeader(stored, stored.size(), entry, where, &header, fields));
  TS_RETURN_IF_ERROR(CheckBoundedJson(header.meta, "metadata").WithContext(where));
  return LocatePayloads(stored, entry, where, fields, scratch);
}

namespace {

// Sizes sample's fields to the layout, reusing the vectors already there (no reallocation and no
// zero-filling when a previous record had the same layout, the common case in a loader).
Status PrepareSample(const RecordHeader& header, const std::vector<FieldView>& fields,
                     const std::string& where, Sample* sample) {
  TS_ASSIGN_OR_RETURN(sample->meta, ParseBoundedJson(header.meta, where + ": metadata"));
  sample->fields.resize(fields.size());
  for (size_t k = 0; k < fields.size(); ++k) {
    const FieldView& d = fields[k];
    Field& f = sample->fields[k];
    if (f.name != d.name) f.name = d.name;
    f.array.dtype = d.dtype;
    f.array.shape = d.shape;
    f.array.data.resize(d.raw_bytes);
  }
  return Status::Ok();
}

Status DecodePayloads(std::span<const uint8_t> stored, const RecordHeader& header,
                      const std::vector<FieldView>& fields, const IndexEntry& entry,
                      const std::string& where, Sample* sample) {
  TS_RETURN_IF_ERROR(PrepareSample(header, fields, where, sample));
  for (size_t k = 0; k < fields.size(); ++k) {
    const FieldView& d = fields[k];
    Array& a = sample->fields[k].array;
    Status s = DecodeBlock(entry.codec, entry.shuffled,
                           stored.subspan(d.payload_offset, d.stored_bytes),
                           DTypeSize(a.dtype), a.data);
    if (!s.ok()) return DataLoss(where, ": field '", d.name, "': ", s.message());
  }
  return Status::Ok();
}

Status DecodeRecordInto(std::span<const uint8_t> stored, const IndexEntry& entry,
                        const std::string& where, Sample* sample) {
  RecordHeader header;
  std::vector<FieldView> fields;
  TS_RETURN_IF_ERROR(ParseRecordHeader(stored, stored.size(), entry, where, &header, &fields));
  return DecodePayloads(stored, header, fields, entry, where, sample);
}

// Per-thread scratch for stored bytes, reused across reads so that the hot path neither
// allocates nor page-faults. Holds the largest record this thread has read.
std::vector<uint8_t>& ThreadScratch() {
  thread_local std::vector<uint8_t> scratch;
  return scratch;
}

}  // namespace

Result<Sample> DecodeRecord(std::span<const uint8_t> stored, const IndexEntry& entry,
                            const std::string& where) {
  Sample sample;
  TS_RETURN_IF_ERROR(DecodeRecordInto(stored, entry, where, &sample));
  return sample;
}

// ------------------------------------------------------------------------------ writer

ShardWriter::ShardWriter(std::unique_ptr<WritableFile> file, ShardWriterOptions options)
    : file_(std::move(file)), options_(options), hasher_(std::make_unique<Hasher>()) {}

ShardWriter::~ShardWriter() = default;

Result<std::unique_ptr<ShardWriter>> ShardWriter::Create(Storage& storage, const std::string& path,
                                                         ShardWriterOptions options) {
  if (options.alignment == 0 || !std::has_single_bit(options.alignment))
    return InvalidArgument("shard alignment ", options.alignment, " is not a power of two");
  TS_ASSIGN_OR_RETURN(auto file, storage.CreateAtomic(path));
  std::unique_ptr<ShardWriter> writer(new ShardWriter(std::move(file), options));
  TS_RETURN_IF_ERROR(writer->Write(EncodeSuperblock(options.alignment)));
  return writer;
}

Status ShardWriter::Write(std::span<const uint8_t> bytes) {
  hasher_->Update(bytes);
  offset_ += bytes.size();
  return file_->Append(bytes);
}

Status ShardWriter::PadTo(uint64_t boundary) {
  static const std::vector<uint8_t> kZeros(kDefaultAlignment * 16, 0);
  uint64_t pad = (boundary - offset_ % boundary) % boundary;
  while (pad > 0) {
    uint64_t n = std::min<uint64_t>(pad, kZeros.size());
    TS_RETURN_IF_ERROR(Write({kZeros.data(), n}));
    pad -= n;
  }
  return Status::Ok();
}

Status ShardWriter::Append(const EncodedRecord& record) {
  if (finished_) return FailedPrecondition(file_->path(), ": append after Finish");
  TS_RETURN_IF_ERROR(PadTo(options_.alignment));
  IndexEntry e;
  e.offset = offset_;
  e.stored_size = record.stored.size();
  e.raw_size = record.raw_size;
  e.checksum = record.checksum;
  e.codec = record.codec.codec;
  e.shuffled = record.codec.shuffle;
  TS_RETURN_IF_ERROR(Write(record.stored));
  index_.push_back(e);
  return Status::Ok();
}

Result<ShardInfo> ShardWriter::Finish() {
  if (finished_) return FailedPrecondition(file_->path(), ": Finish called twice");
  finished_ = true;
  TS_RETURN_IF_ERROR(PadTo(options_.alignment));
  const uint64_t index_offset = offset_;
  std::vector<uint8_t> index;
  index.reserve(index_.size() * kIndexEntryBytes);
  for (const auto& e : index_) EncodeIndexEntry(e, index);
  TS_RETURN_IF_ERROR(Write(index));

  std::vector<uint8_t> footer(kFooterMagic.begin(), kFooterMagic.end());
  Put<uint32_t>(footer, kShardFormatVersion);
  Put<uint32_t>(footer, static_cast<uint32_t>(kIndexEntryBytes));
  Put<uint64_t>(footer, index_offset);
  Put<uint64_t>(footer, index_.size());
  Put<uint64_t>(footer, Hash64(index));
  footer.resize(kFooterBytes - 8, 0);
  Put<uint64_t>(footer, Hash64(footer));
  TS_RETURN_IF_ERROR(Write(footer));
  TS_RETURN_IF_ERROR(file_->Commit());
  return ShardInfo{BaseName(file_->path()), index_.size(), offset_, hasher_->Digest()};
}

// ------------------------------------------------------------------------------ reader

Result<std::unique_ptr<ShardReader>> ShardReader::Open(Storage& storage, const std::string& path) {
  TS_ASSIGN_OR_RETURN(auto file, storage.OpenRead(path));
  const uint64_t size = file->size();
  if (size < kSuperblockBytes + kFooterBytes)
    return DataLoss("shard ", path, ": truncated: ", size, " bytes is smaller than superblock "
                    "plus footer");

  std::vector<uint8_t> sb(kSuperblockBytes);
  TS_RETURN_IF_ERROR(file->ReadAt(0, sb));
  if (!std::equal(kShardMagic.begin(), kShardMagic.end(), sb.begin()))
    return DataLoss("shard ", path, ": bad magic '",
                    std::string(sb.begin(), sb.begin() + 7), "' (not a tilestage shard)");
  const uint32_t version = Get<uint32_t>(sb.data() + 8);
  if (version != kShardFormatVersion)
    return DataLoss("shard ", path, ": unknown format version ", version, " (this build reads ",
                    kShardFormatVersion, ")");
  if (Get<uint64_t>(sb.data() + kSuperblockBytes - 8) !=
      Hash64({sb.data(), kSuperblockBytes - 8}))
    return DataLoss("shard ", path, ": superblock checksum mismatch");
  const uint32_t flags = Get<uint32_t>(sb.data() + 12);
  if (!(flags & kFlagLittleEndian))
    return DataLoss("shard ", path, ": flags ", flags, " do not say little-endian");
  const uint32_t alignment = Get<uint32_t>(sb.data() + 16);
  if (alignment == 0 || !std::has_single_bit(alignment))
    return DataLoss("shard ", path, ": bad alignment ", alignment);

  std::vector<uint8_t> footer(kFooterBytes);
  TS_RETURN_IF_ERROR(file->ReadAt(size - kFooterBytes, footer));
  if (!std::equal(kFooterMagic.begin(), kFooterMagic.end(), footer.begin()))
    return DataLoss("shard ", path, ": truncated or damaged: no footer magic at the end of the ",
                    size, "-byte file");
  if (Get<uint64_t>(footer.data() + kFooterBytes - 8) != Hash64({footer.data(), kFooterBytes - 8}))
    return DataLoss("shard ", path, ": footer checksum mismatch");
  const uint32_t entry_bytes = Get<uint32_t>(footer.data() + 12);
  const uint64_t index_offset = Get<uint64_t>(footer.data() + 16);
  const uint64_t count = Get<uint64_t>(footer.data() + 24);
  const uint64_t index_hash = Get<uint64_t>(footer.data() + 32);
  if (entry_bytes != kIndexEntryBytes)
    return DataLoss("shard ", path, ": index entry size ", entry_bytes, ", expected ",
                    kIndexEntryBytes);
  if (index_offset > size - kFooterBytes ||
      count > (size - kFooterBytes - index_offset) / kIndexEntryBytes ||
      index_offset + count * kIndexEntryBytes != size - kFooterBytes)
    return DataLoss("shard ", path, ": index of ", count, " records at offset ", index_offset,
                    " does not fit the ", size, "-byte file");

  std::vector<uint8_t> index(count * kIndexEntryBytes);
  TS_RETURN_IF_ERROR(file->ReadAt(index_offset, index));
  if (Hash64(index) != index_hash)
    return DataLoss("shard ", path, ": index checksum mismatch (damaged index)");

  std::unique_ptr<ShardReader> reader(new ShardReader());
  reader->index_.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* p = index.data() + i * kIndexEntryBytes;
    IndexEntry& e = reader->index_[i];
    e.offset = Get<uint64_t>(p);
    e.stored_size = Get<uint64_t>(p + 8);
    e.raw_size = Get<uint64_t>(p + 16);
    e.checksum = Get<uint64_t>(p + 24);
    const uint8_t codec = p[32];
    if (codec > static_cast<uint8_t>(Codec::kZstd))
      return DataLoss("shard ", path, ": record ", i, ": unknown codec id ", int(codec));
    e.codec = static_cast<Codec>(codec);
    e.shuffled = p[33] & 1;
    if (e.offset < kSuperblockBytes || e.offset > index_offset ||
        e.stored_size > index_offset - e.offset)
      return DataLoss("shard ", path, ": record ", i, ": extent [", e.offset, ", +",
                      e.stored_size, ") lies outside the record area");
  }
  reader->file_ = std::move(file);
  reader->alignment_ = alignment;
  return reader;
}

Status ShardReader::ReadStored(uint64_t i, std::vector<uint8_t>* stored) const {
  if (i >= index_.size())
    return InvalidArgument("shard ", path(), ": record ", i, " out of range (", index_.size(),
                           " records)");
  const IndexEntry& e = index_[i];
  stored->resize(e.stored_size);
  TS_RETURN_IF_ERROR(file_->ReadAt(e.offset, *stored));
  const uint64_t actual = Hash64(*stored);
  if (actual != e.checksum)
    return DataLoss("shard ", path(), ": record ", i, ": checksum mismatch (stored ",
                    HashToHex(e.checksum), ", computed ", HashToHex(actual), ")");
  return Status::Ok();
}

Result<Sample> ShardReader::Read(uint64_t i) const {
  Sample sample;
  TS_RETURN_IF_ERROR(ReadInto(i, &sample));
  return sample;
}

Status ShardReader::ReadInto(uint64_t i, Sample* sample, const ReadOptions& options) const {
  if (i >= index_.size())
    return InvalidArgument("shard ", path(), ": record ", i, " out of range (", index_.size(),
                           " records)");
  const IndexEntry& e = index_[i];
  if (e.codec == Codec::kNone) {
    Status s = ReadUncompressedInto(i, sample, options);
    if (s.ok() || s.code() != StatusCode::kUnimplemented) return s;
  }
  std::vector<uint8_t>& stored = ThreadScratch();
  if (options.verify_checksum) {
    TS_RETURN_IF_ERROR(ReadStored(i, &stored));
  } else {
    stored.resize(e.stored_size);
    TS_RETURN_IF_ERROR(file_->ReadAt(e.offset, stored));
  }
  return DecodeRecordInto(stored, e, StrCat("shard ", path(), ": record ", i), sample);
}

// Codec none: the payloads are the array bytes, so they are read straight into the sample's
// arrays (one copy from the page cache, as a plain read(2) makes) and hashed there, instead of
// being read into a buffer and copied again. Answers Unimplemented, so that the caller falls
// back to the general path (which checks the checksum before decoding), whenever the header
// does not parse or the payloads need unshuffling.
Status ShardReader::ReadUncompressedInto(uint64_t i, Sample* sample,
                                         const ReadOptions& options) const {
  constexpr uint64_t kProbeBytes = 4096;
  const IndexEntry& e = index_[i];
  std::vector<uint8_t>& probe = ThreadScratch();
  const uint64_t probe_bytes = std::min<uint64_t>(kProbeBytes, e.stored_size);
  probe.resize(probe_bytes);
  TS_RETURN_IF_ERROR(file_->ReadAt(e.offset, probe));
  uint32_t header_bytes = 0;
  if (probe_bytes < 16) return Unimplemented("short record");
  std::memcpy(&header_bytes, probe.data() + 12, sizeof header_bytes);
  if (header_bytes > probe_bytes) {
    if (header_bytes > e.stored_size) return Unimplemented("bad header size");
    probe.resize(header_bytes);
    TS_RETURN_IF_ERROR(file_->ReadAt(e.offset, probe));
  }
  const std::string where = StrCat("shard ", path(), ": record ", i);
  RecordHeader header;
  std::vector<FieldView> fields;
  if (!ParseRecordHeader(probe, e.stored_size, e, where, &header, &fields).ok())
    return Unimplemented("header does not parse");
  for (const FieldView& d : fields)
    if (e.shuffled && DTypeSize(d.dtype) > 1) return Unimplemented("shuffled");
  // For codec none, ParseRecordHeader has checked stored == raw for every field.
  if (!PrepareSample(header, fields, where, sample).ok()) return Unimplemented("bad metadata");

  Hasher hasher;
  const bool verify = options.verify_checksum;
  const uint64_t have = probe.size();
  if (verify) hasher.Update(probe);
  for (size_t k = 0; k < fields.size(); ++k) {
    const FieldView& d = fields[k];
    uint8_t* out = sample->fields[k].array.data.data();
    // The part of the payload that came with the probe, then the rest straight from the file.
    const uint64_t in_probe =
        d.payload_offset < have ? std::min<uint64_t>(d.stored_bytes, have - d.payload_offset) : 0;
    if (in_probe) std::memcpy(out, probe.data() + d.payload_offset, in_probe);
    // In chunks that stay in cache between the read and the hash.
    constexpr uint64_t kChunkBytes = 256 << 10;
    for (uint64_t done = in_probe; done < d.stored_bytes;) {
      std::span<uint8_t> chunk(out + done, std::min(kChunkBytes, d.stored_bytes - done));
      TS_RETURN_IF_ERROR(file_->ReadAt(e.offset + d.payload_offset + done, chunk));
      if (verify) hasher.Update(chunk);
      done += chunk.size();
    }
  }
  if (!verify) return Status::Ok();
  const uint64_t actual = hasher.Digest();
  if (actual != e.checksum)
    return DataLoss("shard ", path(), ": record ", i, ": checksum mismatch (stored ",
                    HashToHex(e.checksum), ", computed ", HashToHex(actual), ")");
  return Status::Ok();
}

Result<uint64_t> ShardReader::HashFile() const { return HashWholeFile(*file_); }

Result<uint64_t> ShardReader::VerifyRecords(std::vector<Status>* problems,
                                            std::span<const uint8_t> mapped) const {
  // Blocks that fit in a core's L2 cache, so that the record checks reread cached bytes.
  constexpr uint64_t kBlockBytes = 1 << 20;
  constexpr uint64_t kReadAheadBytes = 4 * kBlockBytes;
  std::vector<uint64_t> by_offset(index_.size());
  uint64_t largest = 0;
  for (uint64_t i = 0; i < by_offset.size(); ++i) {
    by_offset[i] = i;
    largest = std::max(largest, index_[i].stored_size);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [&](uint64_t a, uint64_t b) { return index_[a].offset < index_[b].offset; });
  const uint64_t size = file_size();
  if (!mapped.empty() && mapped.size() != size)
    return Internal("shard ", path(), ": mapped ", mapped.size(), " bytes of a ", size,
                    "-byte file");
  Hasher file_hash;
  // The file's bytes [lo, hi) are at window + (offset - lo); every byte is read and hashed once.
  // Read, they sit in a buffer with room for a block after the largest record, allocated (and
  // zeroed) once; mapped, the window is the whole file.
  std::vector<uint8_t> buf(mapped.empty() ? std::min(size, largest + kBlockBytes) : 0);
  const uint8_t* window = mapped.empty() ? buf.data() : mapped.data();
  uint64_t lo = 0, hi = 0;
  uint64_t advised = 0;  // the device was told of the bytes before this
  auto map_to = [&](uint64_t end) -> Status {
    const uint64_t new_hi = std::min(size, std::max(end, hi + kBlockBytes));
    TS_RETURN_IF_ERROR(PopulateMapped(mapped.subspan(hi, new_hi - hi), path(), hi));
    file_hash.Update(mapped.subspan(hi, new_hi - hi));
    hi = new_hi;
    return Status::Ok();
  };
  // Reads on from hi to at least `end`, keeping the bytes from `keep` on.
  auto read_to = [&](uint64_t end, uint64_t keep) -> Status {
    if (!mapped.empty()) return map_to(end);
    keep = std::clamp(keep, lo, hi);
    std::memmove(buf.data(), buf.data() + (keep - lo), hi - keep);
    lo = keep;
    const uint64_t new_hi = std::min({size, lo + buf.size(), std::max(end, hi + kBlockBytes)});
    const std::span<uint8_t> fresh(buf.data() + (hi - lo), new_hi - hi);
    TS_RETURN_IF_ERROR(file_->ReadAt(hi, fresh));
    // The device fetches the next blocks while this one is hashed and checked. Each byte is
    // announced once: announcing a range walks the page cache for every page in it, which took a
    // quarter of a warm verify's time when the 4 MiB ahead were announced again at every block.
    const uint64_t ahead = std::min(size, new_hi + kReadAheadBytes);
    if (ahead > std::max(advised, new_hi)) {
      const uint64_t from = std::max(advised, new_hi);
      file_->WillRead(from, ahead - from);
      advised = ahead;
    }
    file_hash.Update(fresh);
    hi = new_hi;
    return Status::Ok();
  };
  std::vector<FieldView> fields;  // reused across records, like the loader's
  std::vector<std::vector<uint8_t>> scratch;
  std::string where;  // reused too: an allocation per record showed in a warm verify's profile
  for (uint64_t i : by_offset) {
    const IndexEntry& e = index_[i];
    const uint64_t end = e.offset + e.stored_size;
    while (end > hi) TS_RETURN_IF_ERROR(read_to(end, e.offset));
    const std::span<const uint8_t> stored(window + (e.offset - lo), e.stored_size);
    const uint64_t actual = Hash64(stored);
    if (actual != e.checksum) {
      problems->push_back(DataLoss("shard ", path(), ": record ", i, ": checksum mismatch (stored ",
                                   HashToHex(e.checksum), ", computed ", HashToHex(actual), ")"));
      continue;
    }
    where.assign("shard ").append(path()).append(": record ").append(std::to_string(i));
    if (Status decoded = CheckRecordDecodes(stored, e, where, &fields, &scratch); !decoded.ok())
      problems->push_back(decoded);
  }
  while (hi < size) TS_RETURN_IF_ERROR(read_to(hi + kBlockBytes, hi));
  return file_hash.Digest();
}

}  // namespace tilestage
