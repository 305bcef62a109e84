#include "bench/e2e/model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace tilestage::bench {
namespace {

struct Field {
  const char* name;
  double ModelParams::*member;
};

// Every numeric input, in config/JSON order. ingest_bytes_per_s is optional and handled apart.
constexpr Field kFields[] = {
    {"dataset_bytes", &ModelParams::dataset_bytes},
    {"samples", &ModelParams::samples},
    {"epochs", &ModelParams::epochs},
    {"staging_read_bytes_per_s", &ModelParams::staging_read_bytes_per_s},
    {"staging_write_bytes_per_s", &ModelParams::staging_write_bytes_per_s},
    {"loader_samples_per_s", &ModelParams::loader_samples_per_s},
    {"train_samples_per_s", &ModelParams::train_samples_per_s},
    {"fs_aggregate_bytes_per_s", &ModelParams::fs_aggregate_bytes_per_s},
    {"fs_node_bytes_per_s", &ModelParams::fs_node_bytes_per_s},
    {"local_write_bytes_per_s", &ModelParams::local_write_bytes_per_s},
    {"local_read_bytes_per_s", &ModelParams::local_read_bytes_per_s},
    {"interconnect_bytes_per_s", &ModelParams::interconnect_bytes_per_s},
    {"staging_overhead_s", &ModelParams::staging_overhead_s},
    {"gradient_bytes", &ModelParams::gradient_bytes},
    {"batch_per_node", &ModelParams::batch_per_node},
};

// The smallest of named rates, and its name.
struct Limit {
  double rate;
  const char* name;
};
Limit Slowest(std::initializer_list<Limit> limits) {
  Limit best = *limits.begin();
  for (const Limit& l : limits)
    if (l.rate < best.rate) best = l;
  return best;
}

// The longest of named phase times, and its name.
Limit Longest(std::initializer_list<Limit> phases) {
  Limit best = *phases.begin();
  for (const Limit& l : phases)
    if (l.rate > best.rate) best = l;
  return best;
}

std::string Fmt(double v, const char* format = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

Result<StagingMode> ParseStagingMode(const std::string& name) {
  if (name == "none") return StagingMode::kNone;
  if (name == "partition") return StagingMode::kPartition;
  if (name == "replicate") return StagingMode::kReplicate;
  if (name == "replicate-from-fs") return StagingMode::kReplicateFromFs;
  return InvalidArgument("staging mode '", name,
                         "': expected none, partition, replicate or replicate-from-fs");
}

const char* StagingModeName(StagingMode mode) {
  switch (mode) {
    case StagingMode::kNone: return "none";
    case StagingMode::kPartition: return "partition";
    case StagingMode::kReplicate: return "replicate";
    case StagingMode::kReplicateFromFs: return "replicate-from-fs";
  }
  return "partition";
}

Json ModelParams::ToJson() const {
  Json j = Json::object();
  for (const Field& f : kFields) j[f.name] = this->*f.member;
  j["mode"] = StagingModeName(mode);
  j["ingest_bytes_per_s"] = ingest_bytes_per_s ? Json(*ingest_bytes_per_s) : Json(nullptr);
  return j;
}

Result<ModelParams> ModelParams::FromJson(const Json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where, ": model config must be a JSON object");
  ModelParams p;
  for (const auto& [key, value] : j.items()) {
    if (key == "mode") {
      if (!value.is_string()) return InvalidArgument(where, ": \"mode\" must be a string");
      TS_ASSIGN_OR_RETURN(p.mode, ParseStagingMode(value.get<std::string>()));
      continue;
    }
    if (key == "ingest_bytes_per_s") {
      if (value.is_null()) continue;
      if (!value.is_number()) return InvalidArgument(where, ": \"", key, "\" must be a number");
      p.ingest_bytes_per_s = value.get<double>();
      continue;
    }
    if (key == "comment" || key == "source") continue;  // free text for the reader of the file
    const Field* field = nullptr;
    for (const Field& f : kFields)
      if (key == f.name) field = &f;
    if (!field) return InvalidArgument(where, ": unknown model input \"", key, "\"");
    if (!value.is_number())
      return InvalidArgument(where, ": \"", key, "\" must be a number, not ", value.dump());
    p.*(field->member) = value.get<double>();
  }
  return p;
}

Status ModelParams::Validate() const {
  auto positive = [](double v, const char* name) -> Status {
    if (!(v > 0) || !std::isfinite(v))
      return InvalidArgument("model input ", name, " must be a positive number, got ", v);
    return Status::Ok();
  };
  TS_RETURN_IF_ERROR(positive(dataset_bytes, "dataset_bytes"));
  TS_RETURN_IF_ERROR(positive(samples, "samples"));
  TS_RETURN_IF_ERROR(positive(epochs, "epochs"));
  TS_RETURN_IF_ERROR(positive(loader_samples_per_s, "loader_samples_per_s"));
  TS_RETURN_IF_ERROR(positive(train_samples_per_s, "train_samples_per_s"));
  TS_RETURN_IF_ERROR(positive(fs_aggregate_bytes_per_s, "fs_aggregate_bytes_per_s"));
  TS_RETURN_IF_ERROR(positive(fs_node_bytes_per_s, "fs_node_bytes_per_s"));
  if (mode != StagingMode::kNone) {
    TS_RETURN_IF_ERROR(positive(staging_read_bytes_per_s, "staging_read_bytes_per_s"));
    TS_RETURN_IF_ERROR(positive(staging_write_bytes_per_s, "staging_write_bytes_per_s"));
    TS_RETURN_IF_ERROR(positive(local_write_bytes_per_s, "local_write_bytes_per_s"));
    TS_RETURN_IF_ERROR(positive(local_read_bytes_per_s, "local_read_bytes_per_s"));
  }
  if (mode == StagingMode::kReplicate)
    TS_RETURN_IF_ERROR(positive(interconnect_bytes_per_s, "interconnect_bytes_per_s"));
  if (gradient_bytes > 0) {
    TS_RETURN_IF_ERROR(positive(batch_per_node, "batch_per_node (needed with gradient_bytes)"));
    TS_RETURN_IF_ERROR(positive(interconnect_bytes_per_s,
                                "interconnect_bytes_per_s (needed with gradient_bytes)"));
  }
  if (staging_overhead_s < 0)
    return InvalidArgument("model input staging_overhead_s must be >= 0, got ",
                           staging_overhead_s);
  if (ingest_bytes_per_s && !(*ingest_bytes_per_s > 0))
    return InvalidArgument("model input ingest_bytes_per_s must be positive, got ",
                           *ingest_bytes_per_s);
  return Status::Ok();
}

ModelPoint PredictAt(const ModelParams& p, int nodes) {
  ModelPoint m;
  m.nodes = nodes;
  const double n = nodes;
  const double bytes_per_sample = p.dataset_bytes / p.samples;
  const double samples_per_node = p.samples / n;

  // Gradient exchange per epoch: ring allreduce moves 2(N-1)/N of the gradient per step.
  if (p.gradient_bytes > 0 && nodes > 1) {
    const double steps = std::ceil(samples_per_node / p.batch_per_node);
    m.allreduce_s_per_epoch =
        steps * 2.0 * (n - 1) / n * p.gradient_bytes / p.interconnect_bytes_per_s;
  }

  // Reading in place: each node's share of the FS is its client limit or 1/N of the aggregate.
  const Limit inplace = Slowest({{p.train_samples_per_s, "train"},
                                 {p.loader_samples_per_s, "loader"},
                                 {p.fs_node_bytes_per_s / bytes_per_sample, "fs_node"},
                                 {p.fs_aggregate_bytes_per_s / n / bytes_per_sample,
                                  "fs_aggregate"}});
  m.inplace_epoch_s = samples_per_node / inplace.rate + m.allreduce_s_per_epoch;

  if (p.mode == StagingMode::kNone) {
    m.staging_bound = "none";
    m.epoch_s = m.inplace_epoch_s;
    m.node_samples_per_s = inplace.rate;
    m.epoch_bound = inplace.name;
  } else {
    // Phase 1, reading the FS: per node at the stager's rate or its FS client limit, in total at
    // most the FS aggregate.
    const Limit node_read = Slowest({{p.staging_read_bytes_per_s, "stager_read"},
                                     {p.fs_node_bytes_per_s, "fs_node"}});
    const bool fs_saturated = n * node_read.rate > p.fs_aggregate_bytes_per_s;
    m.staging_fs_bytes_per_s = fs_saturated ? p.fs_aggregate_bytes_per_s : n * node_read.rate;
    const double fs_bytes =
        p.mode == StagingMode::kReplicateFromFs ? n * p.dataset_bytes : p.dataset_bytes;
    m.staging_fs_read_s = fs_bytes / m.staging_fs_bytes_per_s;
    const char* read_bound = fs_saturated ? "fs_aggregate" : node_read.name;
    // Phase 2, replicate only: a ring allgather brings each node the (N-1)/N it did not read.
    if (p.mode == StagingMode::kReplicate && nodes > 1)
      m.staging_exchange_s = p.dataset_bytes * (n - 1) / n / p.interconnect_bytes_per_s;
    // Phase 3, writing node-local copies.
    m.bytes_per_node = p.mode == StagingMode::kPartition ? p.dataset_bytes / n : p.dataset_bytes;
    const Limit write = Slowest({{p.local_write_bytes_per_s, "local_write"},
                                 {p.staging_write_bytes_per_s, "stager_write"}});
    m.staging_local_write_s = m.bytes_per_node / write.rate;
    // The stager pipelines the three phases chunk by chunk, so the slowest one sets the pace.
    const Limit phase = Longest({{m.staging_fs_read_s, read_bound},
                                 {m.staging_exchange_s, "interconnect"},
                                 {m.staging_local_write_s, write.name}});
    m.staging_s = p.staging_overhead_s + phase.rate;
    m.staging_bound = phase.name;

    const Limit staged = Slowest({{p.train_samples_per_s, "train"},
                                  {p.loader_samples_per_s, "loader"},
                                  {p.local_read_bytes_per_s / bytes_per_sample, "local_read"}});
    m.node_samples_per_s = staged.rate;
    m.epoch_bound = staged.name;
    m.epoch_s = samples_per_node / staged.rate + m.allreduce_s_per_epoch;
    if (m.inplace_epoch_s > m.epoch_s)
      m.breakeven_epochs = m.staging_s / (m.inplace_epoch_s - m.epoch_s);
  }
  m.time_to_train_s = m.staging_s + p.epochs * m.epoch_s;
  m.staging_per_run = m.time_to_train_s > 0 ? m.staging_s / m.time_to_train_s : 0;
  m.staging_per_epoch = m.epoch_s > 0 ? m.staging_s / m.epoch_s : 0;
  if (p.ingest_bytes_per_s)
    m.ingest_s = p.dataset_bytes / std::min(n * *p.ingest_bytes_per_s, p.fs_aggregate_bytes_per_s);
  return m;
}

Result<std::vector<ModelPoint>> Predict(const ModelParams& params, const std::vector<int>& nodes) {
  TS_RETURN_IF_ERROR(params.Validate());
  std::vector<ModelPoint> points;
  for (int n : nodes) {
    if (n < 1) return InvalidArgument("node count must be >= 1, got ", n);
    points.push_back(PredictAt(params, n));
  }
  return points;
}

Result<double> ParseBytes(const std::string& text) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(value) || value < 0)
    return InvalidArgument("'", text, "' must start with a non-negative number");
  std::string unit(end);
  if (unit.size() >= 2 && unit.substr(unit.size() - 2) == "/s") unit.resize(unit.size() - 2);
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB" || unit == "kB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "TB") scale = 1e12;
  else if (unit == "PB") scale = 1e15;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  else if (unit == "TiB") scale = 1024.0 * 1024 * 1024 * 1024;
  else return InvalidArgument("'", text, "': unknown unit '", unit,
                              "' (B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, optionally /s)");
  return value * scale;
}

Result<std::vector<int>> ParseNodeList(const std::string& text) {
  auto parse_int = [&](const std::string& s) -> Result<int> {
    char* end = nullptr;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < 1 || v > (1 << 24))
      return InvalidArgument("node list '", text, "': '", s, "' is not a node count >= 1");
    return static_cast<int>(v);
  };
  std::vector<int> nodes;
  const size_t dots = text.find("..");
  if (dots != std::string::npos) {
    TS_ASSIGN_OR_RETURN(int first, parse_int(text.substr(0, dots)));
    TS_ASSIGN_OR_RETURN(int last, parse_int(text.substr(dots + 2)));
    if (last < first) return InvalidArgument("node list '", text, "': range goes backwards");
    for (long n = first; n < last; n *= 2) nodes.push_back(static_cast<int>(n));
    nodes.push_back(last);
    return nodes;
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    TS_ASSIGN_OR_RETURN(int n, parse_int(text.substr(start, comma - start)));
    nodes.push_back(n);
    start = comma + 1;
  }
  return nodes;
}

std::string FormatModelTable(const ModelParams& params, const std::vector<ModelPoint>& points) {
  std::ostringstream os;
  os << "mode " << StagingModeName(params.mode) << ", dataset " << Fmt(params.dataset_bytes / 1e9)
     << " GB, " << Fmt(params.samples, "%.0f") << " samples, " << Fmt(params.epochs, "%.0f")
     << " epochs\n";
  os << " nodes   staging_s  staging_bound   GB/node  epoch_s  epoch_bound  time_to_train_s"
        "  staging/run  staging/epoch  inplace_epoch_s  breakeven_epochs\n";
  for (const ModelPoint& m : points) {
    os << Pad(std::to_string(m.nodes), 6) << Pad(Fmt(m.staging_s), 12)
       << Pad(m.staging_bound, 15) << Pad(Fmt(m.bytes_per_node / 1e9), 10)
       << Pad(Fmt(m.epoch_s), 9) << Pad(m.epoch_bound, 13) << Pad(Fmt(m.time_to_train_s), 17)
       << Pad(Fmt(m.staging_per_run * 100, "%.1f%%"), 13) << Pad(Fmt(m.staging_per_epoch), 15)
       << Pad(Fmt(m.inplace_epoch_s), 17)
       << Pad(m.breakeven_epochs ? Fmt(*m.breakeven_epochs) : std::string("never"), 18) << "\n";
  }
  return os.str();
}

Json ModelToJson(const ModelParams& params, const std::vector<ModelPoint>& points) {
  Json rows = Json::array();
  for (const ModelPoint& m : points) {
    Json j;
    j["nodes"] = m.nodes;
    j["staging_s"] = m.staging_s;
    j["staging_bound"] = m.staging_bound;
    j["staging_fs_read_s"] = m.staging_fs_read_s;
    j["staging_exchange_s"] = m.staging_exchange_s;
    j["staging_local_write_s"] = m.staging_local_write_s;
    j["staging_fs_bytes_per_s"] = m.staging_fs_bytes_per_s;
    j["bytes_per_node"] = m.bytes_per_node;
    j["epoch_s"] = m.epoch_s;
    j["epoch_bound"] = m.epoch_bound;
    j["node_samples_per_s"] = m.node_samples_per_s;
    j["allreduce_s_per_epoch"] = m.allreduce_s_per_epoch;
    j["inplace_epoch_s"] = m.inplace_epoch_s;
    j["time_to_train_s"] = m.time_to_train_s;
    j["staging_per_run"] = m.staging_per_run;
    j["staging_per_epoch"] = m.staging_per_epoch;
    j["breakeven_epochs"] = m.breakeven_epochs ? Json(*m.breakeven_epochs) : Json(nullptr);
    j["ingest_s"] = m.ingest_s ? Json(*m.ingest_s) : Json(nullptr);
    rows.push_back(std::move(j));
  }
  Json out;
  out["schema"] = "tilestage-model/1";
  out["inputs"] = params.ToJson();
  out["points"] = std::move(rows);
  return out;
}

namespace {

// A rate the validation does not model (node-local storage, the loader): never the bound.
constexpr double kUnbounded = 1e30;

ModelParams StagingOnly(double dataset_bytes) {
  ModelParams p;
  p.dataset_bytes = dataset_bytes;
  p.samples = 1;
  p.epochs = 1;
  p.mode = StagingMode::kPartition;
  p.loader_samples_per_s = p.train_samples_per_s = 1;  // epochs are not predicted here
  p.staging_write_bytes_per_s = p.local_write_bytes_per_s = p.local_read_bytes_per_s = kUnbounded;
  p.interconnect_bytes_per_s = kUnbounded;
  return p;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

}  // namespace

std::string SystemFamily(const std::string& system) {
  std::string out;
  size_t start = 0;
  while (start <= system.size()) {
    size_t end = system.find('_', start);
    if (end == std::string::npos) end = system.size();
    std::string_view token(system.data() + start, end - start);
    start = end + 1;
    const size_t x = token.find('x');
    if (AllDigits(token)) continue;                                             // "512"
    if (token.size() > 1 && token[0] == 'n' && AllDigits(token.substr(1))) continue;  // "n16"
    if (x != std::string_view::npos && x > 0 && AllDigits(token.substr(0, x))) {
      if (AllDigits(token.substr(x + 1))) continue;  // "256x4"
      token.remove_prefix(x + 1);                    // "512xA64FX", "16xNVIDIA DGX A100"
    }
    if (!out.empty()) out += '_';
    out += token;
  }
  return out;
}

std::vector<ScalingSeries> FindScalingSeries(const StagingAnalysis& analysis) {
  std::vector<ScalingSeries> series;
  for (const GroupSummary& g : analysis.groups) {
    if (g.compare || !g.staging_s || !g.nodes_min || *g.nodes_min != *g.nodes_max) continue;
    const std::string system = g.submitter + "/" + SystemFamily(g.system);
    auto it = std::find_if(series.begin(), series.end(), [&](const ScalingSeries& s) {
      return s.system == system && s.benchmark == g.benchmark && s.scale == g.scale &&
             s.round == g.round;
    });
    if (it == series.end()) {
      series.push_back({system, g.benchmark, g.scale, g.round, {}});
      it = series.end() - 1;
    }
    SeriesPoint p;
    p.submission = g.group;
    p.instances = g.instances.value_or(1);
    p.nodes = *g.nodes_min * p.instances;
    p.staging_s = g.staging_s->median;
    it->points.push_back(p);
  }
  std::vector<ScalingSeries> out;
  for (ScalingSeries& s : series) {
    std::sort(s.points.begin(), s.points.end(),
              [](const SeriesPoint& a, const SeriesPoint& b) { return a.nodes < b.nodes; });
    if (s.points.front().nodes != s.points.back().nodes) out.push_back(std::move(s));
  }
  return out;
}

Result<Calibration> ParseCalibration(const std::string& name) {
  if (name == "fs") return Calibration::kFileSystem;
  if (name == "node") return Calibration::kNode;
  return InvalidArgument("--calibrate '", name, "': expected fs or node");
}

const char* CalibrationName(Calibration calibration) {
  return calibration == Calibration::kFileSystem ? "fs" : "node";
}

Validation ValidateStagingModel(const std::vector<ScalingSeries>& series,
                                const ValidationOptions& options) {
  Validation v;
  v.calibration = options.calibration;
  for (const ScalingSeries& s : series) {
    auto d = options.dataset_bytes.find(s.benchmark);
    if (d == options.dataset_bytes.end() || !(d->second > 0)) {
      v.skipped.push_back(StrCat(s.system, " ", s.benchmark, ": no dataset size for '",
                                 s.benchmark, "' (give --dataset-size ", s.benchmark, "=BYTES)"));
      continue;
    }
    for (const SeriesPoint& c : s.points) {
      if (!(c.staging_s > 0)) continue;
      // The one calibrated parameter, from the calibration point alone.
      ModelParams base = StagingOnly(d->second * c.instances);
      const double n1 = static_cast<double>(c.nodes);
      if (options.calibration == Calibration::kFileSystem) {
        base.fs_aggregate_bytes_per_s = base.dataset_bytes / c.staging_s;
        // A run faster than the documented link allows sets the per-node limit to what it did.
        base.staging_read_bytes_per_s = base.fs_node_bytes_per_s =
            std::max(options.node_bytes_per_s, base.dataset_bytes / (n1 * c.staging_s));
      } else {
        base.fs_aggregate_bytes_per_s = kUnbounded;
        base.staging_read_bytes_per_s = base.fs_node_bytes_per_s =
            base.dataset_bytes / (n1 * c.staging_s);
      }
      for (const SeriesPoint& p : s.points) {
        if (p.nodes == c.nodes) continue;
        ModelParams params = base;
        params.dataset_bytes = d->second * p.instances;
        const ModelPoint m = PredictAt(params, static_cast<int>(p.nodes));
        ValidationRow row;
        row.system = s.system;
        row.benchmark = s.benchmark;
        row.scale = s.scale;
        row.round = s.round;
        row.calibration_nodes = c.nodes;
        row.calibration_staging_s = c.staging_s;
        row.nodes = p.nodes;
        row.published_s = p.staging_s;
        row.predicted_s = m.staging_s;
        row.ratio = m.staging_s / p.staging_s;
        row.bound = m.staging_bound;
        row.within_2x = row.ratio >= 0.5 && row.ratio <= 2.0;
        v.within_2x += row.within_2x;
        v.rows.push_back(std::move(row));
      }
    }
  }
  return v;
}

std::string FormatValidation(const Validation& v) {
  std::ostringstream os;
  os << "Calibration: " << CalibrationName(v.calibration) << " ("
     << (v.calibration == Calibration::kFileSystem
             ? "the calibration run's staging is taken as bound by the shared file system"
             : "the calibration run's staging is taken as bound by each node's stager")
     << "); staging times in seconds, published = the submission's median\n";
  os << " calibrated_on  calib_s   nodes  published_s  predicted_s   ratio  within_2x  bound"
        "          series\n";
  for (const ValidationRow& r : v.rows) {
    os << Pad(std::to_string(r.calibration_nodes), 14) << Pad(Fmt(r.calibration_staging_s), 9)
       << Pad(std::to_string(r.nodes), 8) << Pad(Fmt(r.published_s), 13)
       << Pad(Fmt(r.predicted_s), 13) << Pad(Fmt(r.ratio, "%.3f"), 8)
       << Pad(r.within_2x ? "yes" : "no", 11) << "  " << r.bound
       << std::string(r.bound.size() < 13 ? 13 - r.bound.size() : 1, ' ') << r.system << " "
       << r.benchmark << (r.scale.empty() ? "" : " " + r.scale)
       << (r.round.empty() ? "" : " " + r.round) << "\n";
  }
  for (const std::string& s : v.skipped) os << "skipped: " << s << "\n";
  os << "Within 2x of the published staging time: " << v.within_2x << " of " << v.rows.size()
     << " predictions (" << Fmt(v.Fraction() * 100, "%.0f") << "%); goal 80%: "
     << (v.rows.empty() ? "nothing to check" : v.Fraction() >= 0.8 ? "met" : "not met") << "\n";
  return os.str();
}

Json ValidationToJson(const Validation& v) {
  Json rows = Json::array();
  for (const ValidationRow& r : v.rows) {
    rows.push_back({{"system", r.system},
                    {"benchmark", r.benchmark},
                    {"scale", r.scale},
                    {"round", r.round},
                    {"calibration_nodes", r.calibration_nodes},
                    {"calibration_staging_s", r.calibration_staging_s},
                    {"nodes", r.nodes},
                    {"published_s", r.published_s},
                    {"predicted_s", r.predicted_s},
                    {"ratio", r.ratio},
                    {"bound", r.bound},
                    {"within_2x", r.within_2x}});
  }
  Json out;
  out["schema"] = "tilestage-model-validation/1";
  out["calibration"] = CalibrationName(v.calibration);
  out["rows"] = std::move(rows);
  out["within_2x"] = v.within_2x;
  out["predictions"] = v.rows.size();
  out["fraction_within_2x"] = v.Fraction();
  out["skipped"] = v.skipped;
  return out;
}

}  // namespace tilestage::bench
