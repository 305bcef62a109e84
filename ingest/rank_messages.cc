#include "ingest/rank_messages.h"

#include <cstring>
#include <type_traits>

namespace tilestage::ingest {
namespace {

static_assert(std::is_trivially_copyable_v<ChannelStats>);

class Writer {
 public:
  template <typename T>
  void Put(const T& value) {
    static_assert(std::is_arithmetic_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void Put(const std::string& s) {
    Put<uint64_t>(s.size());
    bytes_.append(s);
  }
  void Put(const Status& s) {
    Put<int32_t>(static_cast<int32_t>(s.code()));
    Put(s.message());
  }
  void Put(const std::vector<ChannelStats>& stats) {
    Put<uint64_t>(stats.size());
    bytes_.append(reinterpret_cast<const char*>(stats.data()), stats.size() * sizeof(ChannelStats));
  }
  template <typename T, typename PutOne>
  void PutList(const std::vector<T>& list, PutOne put_one) {
    Put<uint64_t>(list.size());
    for (const T& v : list) put_one(v);
  }
  std::string Take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

// Reads in the order the Writer wrote; after the first short read every further read is a no-op
// and Finish() reports where the message ended.
class Reader {
 public:
  Reader(const std::string& bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  template <typename T>
  void Get(T* value, const char* field) {
    static_assert(std::is_arithmetic_v<T>);
    if (!Have(sizeof(T), field)) return;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
  }
  void Get(std::string* s, const char* field) {
    uint64_t n = 0;
    Get(&n, field);
    if (!Have(n, field)) return;
    s->assign(bytes_.data() + pos_, n);
    pos_ += n;
  }
  void Get(Status* s, const char* field) {
    int32_t code = 0;
    std::string message;
    Get(&code, field);
    Get(&message, field);
    *s = code == 0 ? Status::Ok() : Status(static_cast<StatusCode>(code), message);
  }
  void Get(std::vector<ChannelStats>* stats, const char* field) {
    uint64_t n = 0;
    Get(&n, field);
    if (!Have(n <= (bytes_.size() - pos_) / sizeof(ChannelStats) ? 0 : UINT64_MAX, field)) return;
    stats->resize(n);
    if (n > 0) std::memcpy(stats->data(), bytes_.data() + pos_, n * sizeof(ChannelStats));
    pos_ += n * sizeof(ChannelStats);
  }
  // Each element takes at least one byte, so a damaged count cannot allocate more than the
  // message holds.
  template <typename T, typename GetOne>
  void GetList(std::vector<T>* list, const char* field, GetOne get_one) {
    uint64_t n = 0;
    Get(&n, field);
    if (!Have(n <= bytes_.size() - pos_ ? 0 : UINT64_MAX, field)) return;
    list->resize(n);
    for (T& v : *list) get_one(&v);
  }
  Status Finish() const {
    if (!short_field_.empty())
      return Internal(what_, ": ", bytes_.size(), "-byte message ends inside ", short_field_);
    if (pos_ != bytes_.size())
      return Internal(what_, ": ", bytes_.size() - pos_, " bytes left over after the message");
    return Status::Ok();
  }

 private:
  bool Have(uint64_t n, const char* field) {
    if (!short_field_.empty()) return false;
    if (n <= bytes_.size() - pos_) return true;
    short_field_ = field;
    return false;
  }
  const std::string& bytes_;
  std::string what_;
  size_t pos_ = 0;
  std::string short_field_;
};

}  // namespace

std::string EncodeOutputDecision(const OutputDecision& decision) {
  Writer w;
  w.Put(decision.status);
  w.Put(decision.dir);
  return w.Take();
}

Result<OutputDecision> DecodeOutputDecision(const std::string& bytes) {
  Reader r(bytes, "output decision from rank 0");
  OutputDecision d;
  r.Get(&d.status, "status");
  r.Get(&d.dir, "dir");
  TS_RETURN_IF_ERROR(r.Finish());
  return d;
}

std::string EncodeRankReport(const RankReport& report) {
  Writer w;
  w.Put(report.status);
  if (!report.status.ok()) return w.Take();
  w.PutList(report.shards, [&](const ShardEntry& s) {
    w.Put(s.file);
    w.Put(s.records);
    w.Put(s.bytes);
    w.Put(s.hash);
  });
  w.Put(report.first_item);
  w.PutList(report.tiles_per_item, [&](uint64_t t) { w.Put(t); });
  w.Put(report.x_stats);
  w.Put(report.y_stats);
  w.PutList(report.sources, [&](const SourceHash& s) {
    w.Put(s.path);
    w.Put(s.bytes);
    w.Put(s.xxh3);
  });
  for (uint64_t n : {report.considered, report.written, report.dropped, report.raw_bytes}) w.Put(n);
  return w.Take();
}

Result<RankReport> DecodeRankReport(const std::string& bytes, int rank) {
  Reader r(bytes, StrCat("ingest report from rank ", rank));
  RankReport report;
  r.Get(&report.status, "status");
  if (report.status.ok()) {
    r.GetList(&report.shards, "shards", [&](ShardEntry* s) {
      r.Get(&s->file, "shard file");
      r.Get(&s->records, "shard records");
      r.Get(&s->bytes, "shard bytes");
      r.Get(&s->hash, "shard hash");
    });
    r.Get(&report.first_item, "first item");
    r.GetList(&report.tiles_per_item, "tiles per item", [&](uint64_t* t) { r.Get(t, "tiles"); });
    r.Get(&report.x_stats, "x statistics");
    r.Get(&report.y_stats, "y statistics");
    r.GetList(&report.sources, "sources", [&](SourceHash* s) {
      r.Get(&s->path, "source path");
      r.Get(&s->bytes, "source bytes");
      r.Get(&s->xxh3, "source hash");
    });
    r.Get(&report.considered, "counts");
    r.Get(&report.written, "counts");
    r.Get(&report.dropped, "counts");
    r.Get(&report.raw_bytes, "counts");
  }
  TS_RETURN_IF_ERROR(r.Finish());
  return report;
}

std::string EncodeIngestOutcome(const IngestOutcome& outcome) {
  Writer w;
  w.Put(outcome.status);
  const IngestSummary& s = outcome.summary;
  w.Put(s.out);
  w.Put(s.kind);
  w.Put(s.items);
  for (uint64_t n : {s.tiles_considered, s.tiles_written, s.tiles_dropped, s.raw_bytes,
                     s.stored_bytes, s.shards})
    w.Put(n);
  w.Put(s.compression_ratio);
  w.Put(s.elapsed_s);
  w.Put(s.ranks);
  w.Put(s.threads);
  w.PutList(s.items_without_tiles, [&](const std::string& name) { w.Put(name); });
  return w.Take();
}

Result<IngestOutcome> DecodeIngestOutcome(const std::string& bytes) {
  Reader r(bytes, "ingest outcome from rank 0");
  IngestOutcome outcome;
  IngestSummary& s = outcome.summary;
  r.Get(&outcome.status, "status");
  r.Get(&s.out, "out");
  r.Get(&s.kind, "kind");
  r.Get(&s.items, "items");
  for (uint64_t* n : {&s.tiles_considered, &s.tiles_written, &s.tiles_dropped, &s.raw_bytes,
                      &s.stored_bytes, &s.shards})
    r.Get(n, "counts");
  r.Get(&s.compression_ratio, "compression ratio");
  r.Get(&s.elapsed_s, "elapsed");
  r.Get(&s.ranks, "ranks");
  r.Get(&s.threads, "threads");
  r.GetList(&s.items_without_tiles, "items without tiles",
            [&](std::string* name) { r.Get(name, "item name"); });
  TS_RETURN_IF_ERROR(r.Finish());
  return outcome;
}

}  // namespace tilestage::ingest
