#include "bench/e2e/staging_analysis.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

namespace tilestage::bench {
namespace {

struct Interval {
  int64_t start_ms = 0;
  int64_t stop_ms = 0;
};

// Total length of the union of the intervals.
int64_t UnionMs(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.start_ms < b.start_ms; });
  int64_t total = 0;
  int64_t cur_start = 0, cur_stop = 0;
  bool open = false;
  for (const Interval& iv : intervals) {
    if (iv.stop_ms <= iv.start_ms) continue;
    if (!open || iv.start_ms > cur_stop) {
      if (open) total += cur_stop - cur_start;
      cur_start = iv.start_ms;
      cur_stop = iv.stop_ms;
      open = true;
    } else {
      cur_stop = std::max(cur_stop, iv.stop_ms);
    }
  }
  if (open) total += cur_stop - cur_start;
  return total;
}

std::vector<Interval> Clip(const std::vector<Interval>& intervals, const Interval& window) {
  std::vector<Interval> out;
  for (const Interval& iv : intervals) {
    Interval c{std::max(iv.start_ms, window.start_ms), std::min(iv.stop_ms, window.stop_ms)};
    if (c.stop_ms > c.start_ms) out.push_back(c);
  }
  return out;
}

std::vector<Interval> Concat(std::vector<Interval> a, const std::vector<Interval>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string InstanceOf(const MlEvent& event) {
  std::string instance;
  if (!event.ns.empty()) instance = "ns=" + event.ns;
  auto id = event.metadata.find("instance_id");
  if (id != event.metadata.end()) {
    if (!instance.empty()) instance += ",";
    instance += "instance_id=" + (id->is_string() ? id->get<std::string>() : id->dump());
  }
  return instance;
}

// Pairs X_start/X_stop events of one kind inside one run segment.
class IntervalPairer {
 public:
  IntervalPairer(std::string kind, bool by_epoch_num) : kind_(std::move(kind)),
                                                        by_epoch_num_(by_epoch_num) {}

  Status Start(const MlLogRecord& r, const std::string& where) {
    const std::string id = IdOf(r.event);
    auto it = open_.find(id);
    if (it != open_.end())
      return InvalidArgument(where, ":", r.line, ": ", kind_, "_start", Describe(id),
                             " while the ", kind_, "_start at line ", it->second.line,
                             " has no ", kind_, "_stop");
    open_[id] = {r.event.time_ms, r.line};
    return Status::Ok();
  }

  Status Stop(const MlLogRecord& r, const std::string& where) {
    const std::string id = IdOf(r.event);
    auto it = open_.find(id);
    // Loggers do not always repeat epoch_num on the stop event; one open interval is unambiguous.
    if (it == open_.end() && open_.size() == 1) it = open_.begin();
    if (it == open_.end())
      return InvalidArgument(where, ":", r.line, ": ", kind_, "_stop", Describe(id),
                             " without a matching ", kind_, "_start");
    if (r.event.time_ms < it->second.time_ms)
      return InvalidArgument(where, ":", r.line, ": ", kind_, "_stop at time_ms ",
                             r.event.time_ms, " is before its ", kind_, "_start (line ",
                             it->second.line, ", time_ms ", it->second.time_ms, ")");
    closed_.push_back({it->second.time_ms, r.event.time_ms});
    open_.erase(it);
    return Status::Ok();
  }

  const std::vector<Interval>& closed() const { return closed_; }
  // Line of an interval left open, or 0.
  int64_t FirstOpenLine() const {
    int64_t line = 0;
    for (const auto& [id, o] : open_)
      if (line == 0 || o.line < line) line = o.line;
    return line;
  }
  void Reset() {
    open_.clear();
    closed_.clear();
  }

 private:
  struct Open {
    int64_t time_ms;
    int64_t line;
  };
  std::string IdOf(const MlEvent& e) const {
    if (!by_epoch_num_) return "";
    auto n = e.metadata.find(mlkey::kEpochNum);
    return n == e.metadata.end() ? "" : n->dump();
  }
  static std::string Describe(const std::string& id) {
    return id.empty() ? "" : " (epoch_num " + id + ")";
  }
  std::string kind_;
  bool by_epoch_num_;
  std::map<std::string, Open> open_;
  std::vector<Interval> closed_;
};

std::optional<double> NumberOf(const Json& j) {
  if (j.is_number()) return j.get<double>();
  return std::nullopt;
}

// Analyzes the events of one instance; runs are appended to `out`.
Status AnalyzeInstance(const std::vector<const MlLogRecord*>& records, const std::string& path,
                       const std::string& instance, std::vector<RunAnalysis>* out) {
  std::string benchmark, org, platform;
  std::optional<int64_t> nodes;
  for (const MlLogRecord* r : records) {
    const MlEvent& e = r->event;
    if (e.key == mlkey::kSubmissionBenchmark && e.value.is_string()) benchmark = e.value;
    if (e.key == mlkey::kSubmissionOrg && e.value.is_string()) org = e.value;
    if (e.key == mlkey::kSubmissionPlatform && e.value.is_string()) platform = e.value;
    if (e.key == mlkey::kNumberOfNodes && e.value.is_number_integer())
      nodes = e.value.get<int64_t>();
  }

  IntervalPairer staging("staging", false), epochs("epoch", true), evals("eval", true),
      init("init", false);
  std::vector<double> logged_durations;
  const MlLogRecord* run_start = nullptr;
  bool any_run = false;
  int64_t last_stop_line = 0;

  for (const MlLogRecord* r : records) {
    const MlEvent& e = r->event;
    const std::string& k = e.key;
    if (k == mlkey::kRunStart) {
      if (run_start)
        return InvalidArgument(path, ":", r->line, ": run_start while the run_start at line ",
                               run_start->line, " has no run_stop");
      run_start = r;
    } else if (k == mlkey::kStagingStart) {
      TS_RETURN_IF_ERROR(staging.Start(*r, path));
    } else if (k == mlkey::kStagingStop) {
      TS_RETURN_IF_ERROR(staging.Stop(*r, path));
      auto d = e.metadata.find(mlkey::kStagingDuration);
      if (d != e.metadata.end() && d->is_number()) logged_durations.push_back(d->get<double>());
    } else if (k == mlkey::kStagingDuration) {
      auto d = NumberOf(e.value);
      if (!d)
        return InvalidArgument(path, ":", r->line, ": staging_duration value ", e.value.dump(),
                               " is not a number of seconds");
      logged_durations.push_back(*d);
    } else if (k == mlkey::kEpochStart) {
      TS_RETURN_IF_ERROR(epochs.Start(*r, path));
    } else if (k == mlkey::kEpochStop) {
      TS_RETURN_IF_ERROR(epochs.Stop(*r, path));
    } else if (k == mlkey::kEvalStart) {
      TS_RETURN_IF_ERROR(evals.Start(*r, path));
    } else if (k == mlkey::kEvalStop) {
      TS_RETURN_IF_ERROR(evals.Stop(*r, path));
    } else if (k == mlkey::kInitStart) {
      TS_RETURN_IF_ERROR(init.Start(*r, path));
    } else if (k == mlkey::kInitStop) {
      TS_RETURN_IF_ERROR(init.Stop(*r, path));
    } else if (k == mlkey::kRunStop) {
      if (!run_start)
        return InvalidArgument(path, ":", r->line, ": run_stop without a run_start",
                               last_stop_line ? StrCat(" (the previous run stopped at line ",
                                                       last_stop_line, ")")
                                              : std::string());
      if (e.time_ms < run_start->event.time_ms)
        return InvalidArgument(path, ":", r->line, ": run_stop at time_ms ", e.time_ms,
                               " is before run_start (line ", run_start->line, ", time_ms ",
                               run_start->event.time_ms, ")");
      if (int64_t open_line = staging.FirstOpenLine())
        return InvalidArgument(path, ":", open_line, ": staging_start has no staging_stop before",
                               " run_stop at line ", r->line);

      RunAnalysis run;
      run.file = path;
      run.instance = instance;
      run.run_start_line = run_start->line;
      run.run_stop_line = r->line;
      run.benchmark = benchmark;
      run.org = org;
      run.platform = platform;
      run.nodes = nodes;
      auto status = e.metadata.find("status");
      if (status != e.metadata.end() && status->is_string()) run.status = *status;
      const Interval window{run_start->event.time_ms, e.time_ms};
      run.run_s = static_cast<double>(window.stop_ms - window.start_ms) / 1000.0;
      if (!init.closed().empty()) {
        int64_t ms = 0;
        for (const Interval& iv : init.closed()) ms += iv.stop_ms - iv.start_ms;
        run.init_s = static_cast<double>(ms) / 1000.0;
      }
      if (!logged_durations.empty()) {
        double sum = 0;
        for (double d : logged_durations) sum += d;
        run.staging_logged_duration_s = sum;
      }
      if (!staging.closed().empty()) {
        int64_t ms = 0;
        for (const Interval& iv : staging.closed()) {
          ms += iv.stop_ms - iv.start_ms;
          if (iv.start_ms < window.start_ms || iv.stop_ms > window.stop_ms)
            run.staging_within_run = false;
        }
        run.staging_s = static_cast<double>(ms) / 1000.0;
        run.staging_source = "interval";
      } else if (run.staging_logged_duration_s) {
        run.staging_s = run.staging_logged_duration_s;
        run.staging_source = "staging_duration";
      }
      if (!run.staging_within_run)
        run.warnings.push_back("a staging interval lies (partly) outside run_start..run_stop");
      if (int64_t open_line = epochs.FirstOpenLine())
        run.warnings.push_back(StrCat("epoch_start at line ", open_line,
                                      " has no epoch_stop; that epoch is not counted"));
      if (int64_t open_line = evals.FirstOpenLine())
        run.warnings.push_back(StrCat("eval_start at line ", open_line,
                                      " has no eval_stop; that evaluation is not counted"));

      run.epochs = static_cast<int>(epochs.closed().size());
      if (run.epochs > 0) {
        int64_t ms = 0;
        for (const Interval& iv : epochs.closed()) {
          ms += iv.stop_ms - iv.start_ms;
          run.epoch_s.push_back(static_cast<double>(iv.stop_ms - iv.start_ms) / 1000.0);
        }
        run.mean_epoch_s = static_cast<double>(ms) / 1000.0 / run.epochs;
      }
      if (run.staging_s) {
        if (run.run_s > 0) run.staging_per_run = *run.staging_s / run.run_s;
        if (run.mean_epoch_s && *run.mean_epoch_s > 0)
          run.staging_per_epoch = *run.staging_s / *run.mean_epoch_s;
      }

      // The split, by priority staging > eval > training > other, over the run window.
      const auto s_iv = Clip(staging.closed(), window);
      const auto e_iv = Clip(evals.closed(), window);
      const auto t_iv = Clip(epochs.closed(), window);
      const int64_t run_ms = window.stop_ms - window.start_ms;
      int64_t staging_ms = UnionMs(s_iv);
      if (s_iv.empty() && run.staging_s) {
        // Only a duration was logged: it is taken to lie inside the run, outside epochs.
        staging_ms = std::min<int64_t>(run_ms, static_cast<int64_t>(*run.staging_s * 1000.0));
      }
      const int64_t se_ms = UnionMs(Concat(s_iv, e_iv));
      const int64_t set_ms = UnionMs(Concat(Concat(s_iv, e_iv), t_iv));
      const int64_t eval_ms = se_ms - UnionMs(s_iv);
      const int64_t train_ms = set_ms - se_ms;
      int64_t other_ms = run_ms - staging_ms - eval_ms - train_ms;
      if (other_ms < 0) other_ms = 0;
      run.split_staging_s = staging_ms / 1000.0;
      run.split_eval_s = eval_ms / 1000.0;
      run.split_training_s = train_ms / 1000.0;
      run.split_other_s = other_ms / 1000.0;
      out->push_back(std::move(run));

      any_run = true;
      last_stop_line = r->line;
      run_start = nullptr;
      staging.Reset();
      epochs.Reset();
      evals.Reset();
      init.Reset();
      logged_durations.clear();
    }
  }
  if (run_start)
    return InvalidArgument(path, ":", run_start->line,
                           ": run_start has no run_stop (truncated or aborted log?)");
  if (!any_run)
    return InvalidArgument(path, ": no run_start/run_stop pair",
                           instance.empty() ? std::string() : " for " + instance,
                           "; cannot measure a run");
  return Status::Ok();
}

std::string Fmt(double v, const char* format = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
std::string Fmt(const std::optional<double>& v, const char* format = "%.2f") {
  return v ? Fmt(*v, format) : "-";
}
std::string Pct(const std::optional<double>& v) { return v ? Fmt(*v * 100.0, "%.1f%%") : "-"; }

Json Opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

std::string Pad(const std::string& s, size_t width, bool left = false) {
  if (s.size() >= width) return s;
  return left ? s + std::string(width - s.size(), ' ') : std::string(width - s.size(), ' ') + s;
}

}  // namespace

namespace {

// "result_10.txt" after "result_9.txt": digit runs compare by value.
bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string_view da(a.data() + i, i2 - i), db(b.data() + j, j2 - j);
      while (da.size() > 1 && da[0] == '0') da.remove_prefix(1);
      while (db.size() > 1 && db[0] == '0') db.remove_prefix(1);
      if (da.size() != db.size()) return da.size() < db.size();
      if (da != db) return da < db;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

bool LooksLikeMlLog(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  const std::string ext = p.extension().string();
  return (name.rfind("result_", 0) == 0 && ext == ".txt") || ext == ".log" || ext == ".mllog";
}

}  // namespace

Result<std::vector<std::string>> ExpandMlLogPaths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& path : paths) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) return NotFound("mllog path ", path, " not found");
    if (!std::filesystem::is_directory(status)) {
      out.push_back(path);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && LooksLikeMlLog(it->path())) found.push_back(it->path());
    }
    if (ec) return IOError("cannot list ", path, ": ", ec.message());
    if (found.empty())
      return InvalidArgument("directory ", path,
                             " holds no MLPerf log files (result_*.txt, *.log, *.mllog)");
    std::sort(found.begin(), found.end(), NaturalLess);
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

Result<GroupBy> ParseGroupBy(const std::string& name) {
  if (name == "dir" || name == "directory") return GroupBy::kDirectory;
  if (name == "file") return GroupBy::kFile;
  if (name == "platform") return GroupBy::kPlatform;
  if (name == "all") return GroupBy::kAll;
  return InvalidArgument("--group-by '", name, "': expected dir, file, platform or all");
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  if (n == 0) return 0;
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

Result<std::vector<RunAnalysis>> AnalyzeMlLog(const std::vector<MlLogRecord>& records,
                                              const std::string& path) {
  if (records.empty()) return InvalidArgument(path, ": no :::MLLOG lines");
  std::vector<std::string> order;
  std::map<std::string, std::vector<const MlLogRecord*>> by_instance;
  for (const MlLogRecord& r : records) {
    std::string instance = InstanceOf(r.event);
    auto [it, inserted] = by_instance.try_emplace(instance);
    if (inserted) order.push_back(instance);
    it->second.push_back(&r);
  }
  std::vector<RunAnalysis> runs;
  for (const std::string& instance : order)
    TS_RETURN_IF_ERROR(AnalyzeInstance(by_instance[instance], path, instance, &runs));
  return runs;
}

Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths,
                                          GroupBy group_by) {
  if (paths.empty()) return InvalidArgument("no mllog files given");
  StagingAnalysis analysis;
  for (const std::string& path : paths) {
    TS_ASSIGN_OR_RETURN(auto records, ReadMlLog(path));
    TS_ASSIGN_OR_RETURN(auto runs, AnalyzeMlLog(records, path));
    for (RunAnalysis& run : runs) {
      switch (group_by) {
        case GroupBy::kDirectory: {
          std::string dir = std::filesystem::path(path).parent_path().string();
          run.group = dir.empty() ? "." : dir;
          break;
        }
        case GroupBy::kFile: run.group = path; break;
        case GroupBy::kPlatform:
          run.group = (run.benchmark.empty() ? "?" : run.benchmark) + " " +
                      (run.org.empty() ? "?" : run.org) + " " +
                      (run.platform.empty() ? "?" : run.platform);
          break;
        case GroupBy::kAll: run.group = "all"; break;
      }
      analysis.runs.push_back(std::move(run));
    }
  }
  std::vector<std::string> order;
  std::map<std::string, std::vector<const RunAnalysis*>> groups;
  for (const RunAnalysis& run : analysis.runs) {
    auto [it, inserted] = groups.try_emplace(run.group);
    if (inserted) order.push_back(run.group);
    it->second.push_back(&run);
  }
  for (const std::string& name : order) {
    const auto& runs = groups[name];
    GroupSummary g;
    g.group = name;
    g.runs = static_cast<int>(runs.size());
    std::vector<double> run_s, staging_s, spr, epoch_s, spe, ss, se, st, so;
    for (const RunAnalysis* r : runs) {
      run_s.push_back(r->run_s);
      if (r->staging_s) staging_s.push_back(*r->staging_s);
      if (r->staging_per_run) spr.push_back(*r->staging_per_run);
      if (r->mean_epoch_s) epoch_s.push_back(*r->mean_epoch_s);
      if (r->staging_per_epoch) spe.push_back(*r->staging_per_epoch);
      ss.push_back(r->split_staging_s);
      se.push_back(r->split_eval_s);
      st.push_back(r->split_training_s);
      so.push_back(r->split_other_s);
    }
    g.runs_with_staging = static_cast<int>(staging_s.size());
    g.median_run_s = Median(run_s);
    if (!staging_s.empty()) g.median_staging_s = Median(staging_s);
    if (!spr.empty()) g.median_staging_per_run = Median(spr);
    if (!epoch_s.empty()) g.median_mean_epoch_s = Median(epoch_s);
    if (!spe.empty()) g.median_staging_per_epoch = Median(spe);
    g.median_split_staging_s = Median(ss);
    g.median_split_eval_s = Median(se);
    g.median_split_training_s = Median(st);
    g.median_split_other_s = Median(so);
    analysis.groups.push_back(g);
  }
  return analysis;
}

std::string FormatStagingAnalysis(const StagingAnalysis& analysis) {
  std::ostringstream os;
  os << "Per run (times in seconds; staging/epoch in epochs)\n";
  const char* header =
      "   staging_s       run_s  staging/run  epochs  mean_epoch_s  staging/epoch"
      "   training_s      eval_s     other_s  run\n";
  os << header;
  for (const RunAnalysis& r : analysis.runs) {
    std::string label = r.file;
    if (!r.instance.empty()) label += " [" + r.instance + "]";
    label += " (lines " + std::to_string(r.run_start_line) + "-" +
             std::to_string(r.run_stop_line) + ")";
    os << Pad(Fmt(r.staging_s), 12) << Pad(Fmt(r.run_s), 12) << Pad(Pct(r.staging_per_run), 13)
       << Pad(std::to_string(r.epochs), 8) << Pad(Fmt(r.mean_epoch_s), 14)
       << Pad(Fmt(r.staging_per_epoch), 15) << Pad(Fmt(r.split_training_s), 13)
       << Pad(Fmt(r.split_eval_s), 12) << Pad(Fmt(r.split_other_s), 12) << "  " << label << "\n";
    for (const std::string& w : r.warnings) os << "    warning: " << w << "\n";
  }
  os << "\nPer submission (medians over runs)\n";
  os << "  runs   staging_s       run_s  staging/run  mean_epoch_s  staging/epoch  submission\n";
  for (const GroupSummary& g : analysis.groups) {
    os << Pad(std::to_string(g.runs), 6) << Pad(Fmt(g.median_staging_s), 12)
       << Pad(Fmt(g.median_run_s), 12) << Pad(Pct(g.median_staging_per_run), 13)
       << Pad(Fmt(g.median_mean_epoch_s), 14) << Pad(Fmt(g.median_staging_per_epoch), 15)
       << "  " << g.group;
    if (g.runs_with_staging < g.runs)
      os << "  (" << g.runs - g.runs_with_staging << " run(s) without staging events)";
    os << "\n";
  }
  return os.str();
}

Json StagingAnalysisToJson(const StagingAnalysis& analysis) {
  Json runs = Json::array();
  for (const RunAnalysis& r : analysis.runs) {
    Json j;
    j["file"] = r.file;
    j["instance"] = r.instance;
    j["group"] = r.group;
    j["run_start_line"] = r.run_start_line;
    j["run_stop_line"] = r.run_stop_line;
    j["benchmark"] = r.benchmark;
    j["org"] = r.org;
    j["platform"] = r.platform;
    j["status"] = r.status;
    j["nodes"] = r.nodes ? Json(*r.nodes) : Json(nullptr);
    j["run_s"] = r.run_s;
    j["init_s"] = Opt(r.init_s);
    j["staging_s"] = Opt(r.staging_s);
    j["staging_source"] = r.staging_source;
    j["staging_logged_duration_s"] = Opt(r.staging_logged_duration_s);
    j["staging_within_run"] = r.staging_within_run;
    j["epochs"] = r.epochs;
    j["mean_epoch_s"] = Opt(r.mean_epoch_s);
    j["epoch_s"] = r.epoch_s;
    j["staging_per_run"] = Opt(r.staging_per_run);
    j["staging_per_epoch"] = Opt(r.staging_per_epoch);
    j["time_to_train_split_s"] = {{"staging", r.split_staging_s},
                                  {"evaluation", r.split_eval_s},
                                  {"training", r.split_training_s},
                                  {"other", r.split_other_s}};
    j["warnings"] = r.warnings;
    runs.push_back(std::move(j));
  }
  Json groups = Json::array();
  for (const GroupSummary& g : analysis.groups) {
    Json j;
    j["group"] = g.group;
    j["runs"] = g.runs;
    j["runs_with_staging"] = g.runs_with_staging;
    j["median_run_s"] = g.median_run_s;
    j["median_staging_s"] = Opt(g.median_staging_s);
    j["median_staging_per_run"] = Opt(g.median_staging_per_run);
    j["median_mean_epoch_s"] = Opt(g.median_mean_epoch_s);
    j["median_staging_per_epoch"] = Opt(g.median_staging_per_epoch);
    j["median_time_to_train_split_s"] = {{"staging", g.median_split_staging_s},
                                         {"evaluation", g.median_split_eval_s},
                                         {"training", g.median_split_training_s},
                                         {"other", g.median_split_other_s}};
    groups.push_back(std::move(j));
  }
  Json out;
  out["schema"] = "tilestage-staging-analysis/1";
  out["definitions"] = {
      {"run_s", "run_stop.time_ms - run_start.time_ms, in seconds (MLPerf time-to-train)"},
      {"staging_s",
       "sum of staging_start->staging_stop intervals; if none, the logged staging_duration"},
      {"mean_epoch_s", "mean of epoch_start->epoch_stop intervals (includes nested evaluation)"},
      {"staging_per_run", "staging_s / run_s"},
      {"staging_per_epoch", "staging_s / mean_epoch_s"},
      {"time_to_train_split_s",
       "each instant of the run counted once, by priority staging > evaluation > training > "
       "other; sums to run_s"}};
  out["runs"] = std::move(runs);
  out["groups"] = std::move(groups);
  return out;
}

}  // namespace tilestage::bench
