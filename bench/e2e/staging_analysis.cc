#include "bench/e2e/staging_analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>
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

// Total length of the union of the intervals. Times are plausible (0..kMaxPlausibleTimeMs), so
// no difference or sum here can overflow.
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

double SumSeconds(const std::vector<Interval>& intervals) {
  double ms = 0;
  for (const Interval& iv : intervals) ms += static_cast<double>(iv.stop_ms - iv.start_ms);
  return ms / 1000.0;
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

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// At most this many problems of one kind are spelled out per run; the rest are counted.
constexpr size_t kProblemsShown = 3;

// Pairs X_start/X_stop events of one kind inside one run. Events that do not pair up are
// recorded as problems; the intervals that did pair are kept.
class IntervalPairer {
 public:
  IntervalPairer(std::string kind, bool by_epoch_num)
      : kind_(std::move(kind)), by_epoch_num_(by_epoch_num) {}

  void Start(const MlLogRecord& r, const std::string& path) {
    const std::string id = IdOf(r.event);
    auto it = open_.find(id);
    if (it != open_.end())
      Problem(StrCat(path, ":", r.line, ": ", kind_, "_start", Describe(id), " while the ", kind_,
                     "_start at line ", it->second.line, " has no ", kind_, "_stop"));
    open_[id] = {r.event.time_ms, r.line};
  }

  void Stop(const MlLogRecord& r, const std::string& path) {
    const std::string id = IdOf(r.event);
    auto it = open_.find(id);
    // Loggers do not always repeat epoch_num on the stop event; one open interval is unambiguous.
    if (it == open_.end() && open_.size() == 1 && (id.empty() || open_.begin()->first.empty()))
      it = open_.begin();
    if (it == open_.end()) {
      Problem(StrCat(path, ":", r.line, ": ", kind_, "_stop", Describe(id), " without a matching ",
                     kind_, "_start"));
      return;
    }
    if (r.event.time_ms < it->second.time_ms) {
      Problem(StrCat(path, ":", r.line, ": ", kind_, "_stop at time_ms ", r.event.time_ms,
                     " is before its ", kind_, "_start (line ", it->second.line, ", time_ms ",
                     it->second.time_ms, ")"));
    } else {
      closed_.push_back({it->second.time_ms, r.event.time_ms});
    }
    open_.erase(it);
  }

  // Intervals still open when the run ends: a problem when `spoils` (an unfinished staging has
  // no duration), otherwise only not counted (a last epoch cut short by run_stop).
  void CloseRun(const std::string& path, const std::string& at, bool spoils) {
    for (const auto& [id, o] : open_) {
      std::string message = StrCat(path, ":", o.line, ": ", kind_, "_start", Describe(id),
                                   " has no ", kind_, "_stop before ", at);
      if (spoils) Problem(std::move(message));
      else left_open_.push_back(message + "; that interval is not counted");
    }
    open_.clear();
  }

  const std::vector<Interval>& closed() const { return closed_; }
  bool clean() const { return problems_ == 0; }
  // The problems, the first few spelled out, with `consequence` appended to the first.
  void AppendWarnings(const std::string& consequence, std::vector<std::string>* out) const {
    for (size_t i = 0; i < shown_.size(); ++i)
      out->push_back(i == 0 ? shown_[i] + "; " + consequence : shown_[i]);
    if (problems_ > shown_.size())
      out->push_back(StrCat("... and ", problems_ - shown_.size(), " more unmatched ", kind_,
                            " events in this run"));
    out->insert(out->end(), left_open_.begin(), left_open_.end());
  }
  void Reset() {
    left_open_.clear();
    open_.clear();
    closed_.clear();
    shown_.clear();
    problems_ = 0;
  }

 private:
  struct Open {
    int64_t time_ms;
    int64_t line;
  };
  void Problem(std::string message) {
    if (shown_.size() < kProblemsShown) shown_.push_back(std::move(message));
    ++problems_;
  }
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
  std::vector<std::string> shown_, left_open_;
  size_t problems_ = 0;
};

// Analyzes the events of one instance; runs are appended to `out`, problems outside any run to
// `stray`.
class InstanceAnalyzer {
 public:
  InstanceAnalyzer(const std::string& path, const std::string& instance)
      : path_(path), instance_(instance) {}

  void Run(const std::vector<const MlLogRecord*>& records, std::vector<RunAnalysis>* out,
           std::vector<std::string>* stray) {
    out_ = out;
    stray_ = stray;
    ReadMetadata(records);
    for (const MlLogRecord* r : records) {
      if (r->event.time_ms < 0 || r->event.time_ms > kMaxPlausibleTimeMs) {
        Warn(StrCat(path_, ":", r->line, ": ", r->event.key, " at time_ms ", r->event.time_ms,
                    " is not a plausible time (0..", kMaxPlausibleTimeMs,
                    " ms since the Unix epoch); event ignored"));
        continue;
      }
      Handle(*r);
      if (run_start_) last_time_ms_ = std::max(last_time_ms_, r->event.time_ms);
    }
    if (run_start_) {
      pending_.push_back(StrCat(path_, ":", run_start_->line,
                                ": run_start has no run_stop (truncated or aborted log?)"));
      Finish(nullptr);
    }
  }

 private:
  void ReadMetadata(const std::vector<const MlLogRecord*>& records) {
    for (const MlLogRecord* r : records) {
      const MlEvent& e = r->event;
      if (e.key == mlkey::kSubmissionBenchmark && e.value.is_string()) benchmark_ = Lower(e.value);
      if (e.key == mlkey::kSubmissionOrg && e.value.is_string()) org_ = e.value;
      if (e.key == mlkey::kSubmissionPlatform && e.value.is_string()) platform_ = e.value;
      if (e.key == mlkey::kNumberOfNodes && e.value.is_number_integer())
        nodes_ = e.value.get<int64_t>();
      if (e.key == "accelerators_per_node" && e.value.is_number_integer())
        accelerators_ = e.value.get<int64_t>();
    }
  }

  void Warn(std::string message) {
    (run_start_ ? pending_ : *stray_).push_back(std::move(message));
  }

  // A staging_duration (seconds) from `where`; implausible values are warnings and ignored.
  void LoggedDuration(const Json& value, const MlLogRecord& r, const char* where) {
    if (!value.is_number()) {
      Warn(StrCat(path_, ":", r.line, ": ", where, " ", value.dump(),
                  " is not a number of seconds; ignored"));
      return;
    }
    const double d = value.get<double>();
    if (!std::isfinite(d) || d < 0 || d > kMaxPlausibleStagingS) {
      Warn(StrCat(path_, ":", r.line, ": ", where, " ", value.dump(),
                  " s is implausible (outside 0..", kMaxPlausibleStagingS, " s); ignored"));
      staging_implausible_ = true;
      return;
    }
    logged_durations_.push_back(d);
  }

  void Handle(const MlLogRecord& r) {
    const MlEvent& e = r.event;
    const std::string& k = e.key;
    if (k == mlkey::kRunStart) {
      if (run_start_) {
        pending_.push_back(StrCat(path_, ":", run_start_->line, ": run_start has no run_stop (",
                                  "another run_start follows at line ", r.line, ")"));
        Finish(nullptr);
      }
      run_start_ = &r;
      last_time_ms_ = e.time_ms;
      return;
    }
    if (k == mlkey::kRunStop) {
      if (!run_start_) {
        Warn(StrCat(path_, ":", r.line, ": run_stop without a run_start; ignored"));
      } else if (e.time_ms < run_start_->event.time_ms) {
        Warn(StrCat(path_, ":", r.line, ": run_stop at time_ms ", e.time_ms,
                    " is before run_start (line ", run_start_->line, ", time_ms ",
                    run_start_->event.time_ms, "); ignored"));
      } else {
        Finish(&r);
      }
      return;
    }
    if (k == mlkey::kStagingStart) {
      saw_staging_ = true;
      staging_.Start(r, path_);
    } else if (k == mlkey::kStagingStop) {
      saw_staging_ = true;
      staging_.Stop(r, path_);
      auto d = e.metadata.find(mlkey::kStagingDuration);
      if (d != e.metadata.end()) LoggedDuration(*d, r, "staging_stop metadata staging_duration");
    } else if (k == mlkey::kStagingDuration) {
      saw_staging_ = true;
      LoggedDuration(e.value, r, "staging_duration value");
    } else if (k == mlkey::kEpochStart) {
      epochs_.Start(r, path_);
    } else if (k == mlkey::kEpochStop) {
      epochs_.Stop(r, path_);
    } else if (k == mlkey::kEvalStart) {
      evals_.Start(r, path_);
    } else if (k == mlkey::kEvalStop) {
      evals_.Stop(r, path_);
    } else if (k == mlkey::kInitStart) {
      init_.Start(r, path_);
    } else if (k == mlkey::kInitStop) {
      init_.Stop(r, path_);
    }
  }

  // Closes the current run at `stop` (nullptr: the run never stopped).
  void Finish(const MlLogRecord* stop) {
    RunAnalysis run;
    run.file = path_;
    run.instance = instance_;
    run.run_start_line = run_start_->line;
    run.benchmark = benchmark_;
    run.org = org_;
    run.platform = platform_;
    run.nodes = nodes_;
    run.accelerators_per_node = accelerators_;
    const std::string at = stop ? StrCat("run_stop at line ", stop->line) : "the end of the run";
    // Staging and init often precede run_start, so their open intervals are judged at run end.
    staging_.CloseRun(path_, at, true);
    epochs_.CloseRun(path_, at, false);
    evals_.CloseRun(path_, at, false);
    init_.CloseRun(path_, at, false);

    const Interval window{run_start_->event.time_ms, stop ? stop->event.time_ms : last_time_ms_};
    run.run_start_ms = window.start_ms;
    run.run_stop_ms = window.stop_ms;
    run.run_s = static_cast<double>(window.stop_ms - window.start_ms) / 1000.0;
    if (stop) {
      run.run_stop_line = stop->line;
      auto status = stop->event.metadata.find("status");
      if (status != stop->event.metadata.end() && status->is_string()) run.status = *status;
    }
    if (!init_.closed().empty()) run.init_s = SumSeconds(init_.closed());
    if (!logged_durations_.empty()) {
      double sum = 0;
      for (double d : logged_durations_) sum += d;
      run.staging_logged_duration_s = sum;
    }

    std::vector<std::string>& w = run.warnings;
    w = std::move(pending_);
    staging_.AppendWarnings("the run's staging time is unusable", &w);
    epochs_.AppendWarnings("the run's epoch figures are left out", &w);
    evals_.AppendWarnings("unmatched evaluations are not counted", &w);
    init_.AppendWarnings("init_s counts the matched intervals only", &w);

    if (staging_.clean() && !staging_.closed().empty()) {
      for (const Interval& iv : staging_.closed())
        if (iv.start_ms < window.start_ms || iv.stop_ms > window.stop_ms)
          run.staging_within_run = false;
      run.staging_s = SumSeconds(staging_.closed());
      run.staging_source = "interval";
    } else if (staging_.clean() && !staging_implausible_ && run.staging_logged_duration_s) {
      run.staging_s = run.staging_logged_duration_s;
      run.staging_source = "staging_duration";
    }
    if (!run.staging_within_run)
      w.push_back(StrCat(path_, ":", run.run_start_line,
                         ": a staging interval lies (partly) outside run_start..run_stop"));
    // Staging is part of the time to train; a longer one is a broken log, not a share above 100%.
    if (run.staging_s && *run.staging_s > run.run_s) {
      w.push_back(StrCat(path_, ":", run.run_start_line, ": staging (", *run.staging_s, " s, ",
                         run.staging_source, ") exceeds the run (", run.run_s,
                         " s); the run's staging time is unusable"));
      run.staging_s.reset();
      run.staging_source = "none";
      staging_implausible_ = true;
    }

    if (epochs_.clean()) {
      run.epochs = static_cast<int>(epochs_.closed().size());
      for (const Interval& iv : epochs_.closed())
        run.epoch_s.push_back(static_cast<double>(iv.stop_ms - iv.start_ms) / 1000.0);
      if (run.epochs > 0) run.mean_epoch_s = SumSeconds(epochs_.closed()) / run.epochs;
    }
    if (run.staging_s) {
      if (run.run_s > 0) run.staging_per_run = *run.staging_s / run.run_s;
      if (run.mean_epoch_s && *run.mean_epoch_s > 0)
        run.staging_per_epoch = *run.staging_s / *run.mean_epoch_s;
    }

    if (!stop) {
      run.state = RunState::kAborted;
    } else if (!run.status.empty() && run.status != "success") {
      run.state = RunState::kAborted;
      w.push_back(StrCat(path_, ":", stop->line, ": run_stop status '", run.status,
                         "'; the run is left out of the medians"));
    } else if (!run.staging_s) {
      run.state = saw_staging_ || staging_implausible_ ? RunState::kStagingUnusable
                                                       : RunState::kNoStaging;
    }

    // The split, by priority staging > eval > training > other, over the run window.
    const auto s_iv = Clip(staging_.closed(), window);
    const auto e_iv = Clip(evals_.closed(), window);
    const auto t_iv = Clip(epochs_.closed(), window);
    const int64_t run_ms = window.stop_ms - window.start_ms;
    int64_t staging_ms = run.staging_s ? UnionMs(s_iv) : 0;
    if (run.staging_source == "staging_duration") {
      // Only a duration was logged: it is taken to lie inside the run, outside epochs. It is at
      // most run_s (checked above), so the conversion stays in range.
      staging_ms = static_cast<int64_t>(std::min(static_cast<double>(run_ms),
                                                 *run.staging_s * 1000.0));
    }
    const int64_t se_ms = UnionMs(Concat(s_iv, e_iv));
    const int64_t set_ms = UnionMs(Concat(Concat(s_iv, e_iv), t_iv));
    const int64_t eval_ms = se_ms - UnionMs(s_iv);
    const int64_t train_ms = set_ms - se_ms;
    const int64_t other_ms = std::max<int64_t>(0, run_ms - staging_ms - eval_ms - train_ms);
    run.split_staging_s = staging_ms / 1000.0;
    run.split_eval_s = eval_ms / 1000.0;
    run.split_training_s = train_ms / 1000.0;
    run.split_other_s = other_ms / 1000.0;
    out_->push_back(std::move(run));

    run_start_ = nullptr;
    pending_.clear();
    staging_.Reset();
    epochs_.Reset();
    evals_.Reset();
    init_.Reset();
    logged_durations_.clear();
    saw_staging_ = staging_implausible_ = false;
  }

  const std::string& path_;
  const std::string& instance_;
  std::vector<RunAnalysis>* out_ = nullptr;
  std::vector<std::string>* stray_ = nullptr;
  std::string benchmark_, org_, platform_;
  std::optional<int64_t> nodes_, accelerators_;

  IntervalPairer staging_{"staging", false}, epochs_{"epoch", true}, evals_{"eval", true},
      init_{"init", false};
  std::vector<double> logged_durations_;
  bool saw_staging_ = false, staging_implausible_ = false;
  const MlLogRecord* run_start_ = nullptr;
  int64_t last_time_ms_ = 0;
  std::vector<std::string> pending_;  // warnings of the open run
};

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

// "v1.0" from a component such as "hpc_results_v1.0" or "v2.0".
std::string RoundOf(const std::string& component) {
  size_t at = component.rfind('v');
  if (at == std::string::npos || at + 1 >= component.size()) return "";
  if (at > 0 && component[at - 1] != '_' && component[at - 1] != '-') return "";
  const std::string rest = component.substr(at + 1);
  if (rest.find('.') == std::string::npos) return "";  // "v1.0", not a system name's "v100"
  bool digit = false;
  for (char c : rest) {
    if (std::isdigit(static_cast<unsigned char>(c))) digit = true;
    else if (c != '.') return "";
  }
  return digit ? "v" + rest : "";
}

// Fills round, submitter, system and scale from an MLPerf results path
// (<submitter>/results/<system>/[strong|weak/]<benchmark>/[pruned_results/]result_N.txt) and
// reports whether the run was pruned; the benchmark folder overrides the logged name.
bool PlaceFromPath(const std::string& path, RunAnalysis* run) {
  std::vector<std::string> parts;
  for (const auto& p : std::filesystem::path(path).parent_path()) {
    const std::string s = p.string();
    if (!s.empty() && s != "/" && s != ".") parts.push_back(s);
  }
  for (const std::string& p : parts)
    if (std::string r = RoundOf(p); !r.empty()) run->round = r;
  for (size_t i = parts.size(); i-- > 0;) {
    if (parts[i] != "results" || i + 1 >= parts.size()) continue;
    if (i > 0) run->submitter = parts[i - 1];
    run->system = parts[i + 1];
    size_t next = i + 2;
    if (next < parts.size() && (parts[next] == "strong" || parts[next] == "weak"))
      run->scale = parts[next++];
    if (next < parts.size() && parts[next] != "pruned_results") run->benchmark = Lower(parts[next]);
    break;
  }
  return !parts.empty() && parts.back() == "pruned_results";
}

std::string Join(std::initializer_list<std::string> parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// Who ran it: the path's submitter/system, else the logged org/platform, else the directory.
std::string SubmissionLabel(const RunAnalysis& r, const std::string& path) {
  std::string who = r.submitter.empty() && r.system.empty() ? Join({r.org, r.platform}, "/")
                                                             : Join({r.submitter, r.system}, "/");
  if (who.empty()) who = std::filesystem::path(path).parent_path().string();
  return Join({r.round, who.empty() ? "." : who, r.scale, r.benchmark}, " ");
}

std::string GroupOf(const RunAnalysis& run, const std::string& path, GroupBy group_by) {
  switch (group_by) {
    case GroupBy::kSubmission: return SubmissionLabel(run, path);
    case GroupBy::kDirectory: {
      std::string dir = std::filesystem::path(path).parent_path().string();
      return dir.empty() ? "." : dir;
    }
    case GroupBy::kFile: return path;
    case GroupBy::kPlatform:
      return (run.benchmark.empty() ? "?" : run.benchmark) + " " +
             (run.org.empty() ? "?" : run.org) + " " + (run.platform.empty() ? "?" : run.platform);
    case GroupBy::kAll: return "all";
  }
  return path;
}

GroupSummary Summarize(const std::string& name, const std::vector<const RunAnalysis*>& runs) {
  GroupSummary g;
  g.group = name;
  const RunAnalysis& first = *runs.front();
  g.round = first.round;
  g.submitter = first.submitter.empty() ? first.org : first.submitter;
  g.system = first.system.empty() ? first.platform : first.system;
  g.scale = first.scale;
  g.benchmark = first.benchmark;
  g.runs = static_cast<int>(runs.size());
  std::vector<double> run_s, staging_s, spr, epochs, epoch_s, spe, ss, se, st, so;
  int64_t first_start = 0, last_stop = 0;
  for (const RunAnalysis* r : runs) {
    if (r->nodes) {
      g.nodes_min = g.nodes_min ? std::min(*g.nodes_min, *r->nodes) : *r->nodes;
      g.nodes_max = g.nodes_max ? std::max(*g.nodes_max, *r->nodes) : *r->nodes;
    }
    if (r->accelerators_per_node && !g.accelerators_per_node)
      g.accelerators_per_node = r->accelerators_per_node;
    if (r->state == RunState::kAborted) ++g.runs_aborted;
    if (r->state == RunState::kPruned) ++g.runs_pruned;
    if (!Counted(r->state)) continue;
    if (g.runs_counted == 0 || r->run_start_ms < first_start) first_start = r->run_start_ms;
    if (g.runs_counted == 0 || r->run_stop_ms > last_stop) last_stop = r->run_stop_ms;
    ++g.runs_counted;
    run_s.push_back(r->run_s);
    if (r->staging_s) staging_s.push_back(*r->staging_s);
    if (r->staging_per_run) spr.push_back(*r->staging_per_run);
    if (r->mean_epoch_s) {
      epochs.push_back(r->epochs);
      epoch_s.push_back(*r->mean_epoch_s);
    }
    if (r->staging_per_epoch) spe.push_back(*r->staging_per_epoch);
    ss.push_back(r->split_staging_s);
    se.push_back(r->split_eval_s);
    st.push_back(r->split_training_s);
    so.push_back(r->split_other_s);
  }
  g.runs_with_staging = static_cast<int>(staging_s.size());
  g.staging_s = SpreadOf(staging_s);
  g.run_s = SpreadOf(run_s);
  g.staging_per_run = SpreadOf(spr);
  g.epochs = SpreadOf(epochs);
  g.mean_epoch_s = SpreadOf(epoch_s);
  g.staging_per_epoch = SpreadOf(spe);
  g.median_split_staging_s = Median(ss);
  g.median_split_eval_s = Median(se);
  g.median_split_training_s = Median(st);
  g.median_split_other_s = Median(so);
  if (g.scale == "weak" && g.runs_counted > 0) {
    g.instances = g.runs_counted;
    g.time_to_train_all_s = static_cast<double>(last_stop - first_start) / 1000.0;
    if (*g.time_to_train_all_s > 0)
      g.models_per_min = g.runs_counted / (*g.time_to_train_all_s / 60.0);
  }
  return g;
}

// Reads one file into `analysis`, labelling its runs; returns how many runs it held.
size_t AddFile(const std::string& path, GroupBy group_by, bool compare,
               StagingAnalysis* analysis, std::vector<std::string>* group_order,
               std::vector<bool>* group_is_compare) {
  auto contents = ReadMlLogTolerant(path);
  if (!contents.ok()) {
    analysis->warnings.push_back(std::string(contents.status().message()));
    ++analysis->files_without_runs;
    return 0;
  }
  ++analysis->files_read;
  for (std::string& m : contents->malformed)
    analysis->warnings.push_back(m + "; line skipped");
  auto runs = AnalyzeMlLog(contents->records, path);
  if (!runs.ok()) {
    analysis->warnings.push_back(std::string(runs.status().message()));
    ++analysis->files_without_runs;
    return 0;
  }
  bool several_instances = false;
  for (const RunAnalysis& r : *runs) several_instances |= !r.instance.empty();
  for (RunAnalysis& run : *runs) {
    const bool pruned = PlaceFromPath(path, &run);
    if (run.scale.empty() && several_instances) run.scale = "weak";
    if (pruned && run.state != RunState::kAborted) run.state = RunState::kPruned;
    run.group = compare ? "tilestage " + path : GroupOf(run, path, group_by);
    if (std::find(group_order->begin(), group_order->end(), run.group) == group_order->end()) {
      group_order->push_back(run.group);
      group_is_compare->push_back(compare);
    }
    analysis->runs.push_back(std::move(run));
  }
  return runs->size();
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

// "346.05 [345.70-364.61]"; a single run shows its value alone.
std::string SpreadText(const std::optional<Spread>& s, double scale = 1, const char* f = "%.2f") {
  if (!s) return "-";
  std::string out = Fmt(s->median * scale, f);
  if (s->count > 1) out += " [" + Fmt(s->min * scale, f) + "-" + Fmt(s->max * scale, f) + "]";
  return out;
}

Json Opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }
Json SpreadJson(const std::optional<Spread>& s) {
  if (!s) return nullptr;
  return {{"median", s->median}, {"min", s->min}, {"max", s->max}, {"runs", s->count}};
}

std::string Pad(const std::string& s, size_t width, bool left = false) {
  if (s.size() >= width) return s;
  return left ? s + std::string(width - s.size(), ' ') : std::string(width - s.size(), ' ') + s;
}

std::string NodesText(const GroupSummary& g) {
  if (!g.nodes_min) return "-";
  std::string out = std::to_string(*g.nodes_min);
  if (*g.nodes_max != *g.nodes_min) out += "-" + std::to_string(*g.nodes_max);
  if (g.accelerators_per_node && *g.accelerators_per_node > 0)
    out += "x" + std::to_string(*g.accelerators_per_node);
  return out;
}

std::string RunLabel(const RunAnalysis& r) {
  std::string label = r.file;
  if (!r.instance.empty()) label += " [" + r.instance + "]";
  label += " (lines " + std::to_string(r.run_start_line) + "-" +
           (r.run_stop_line ? std::to_string(r.run_stop_line) : std::string("end")) + ")";
  return label;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}
std::string CsvNum(const std::optional<double>& v) { return v ? Fmt(*v, "%.6g") : ""; }

}  // namespace

const char* RunStateName(RunState state) {
  switch (state) {
    case RunState::kOk: return "ok";
    case RunState::kNoStaging: return "no staging events";
    case RunState::kStagingUnusable: return "staging unusable";
    case RunState::kAborted: return "aborted";
    case RunState::kPruned: return "pruned";
  }
  return "ok";
}

std::optional<Spread> SpreadOf(const std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  Spread s;
  s.median = Median(values);
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  s.count = static_cast<int>(values.size());
  return s;
}

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
  if (name == "submission") return GroupBy::kSubmission;
  if (name == "dir" || name == "directory") return GroupBy::kDirectory;
  if (name == "file") return GroupBy::kFile;
  if (name == "platform") return GroupBy::kPlatform;
  if (name == "all") return GroupBy::kAll;
  return InvalidArgument("--group-by '", name,
                         "': expected submission, dir, file, platform or all");
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
  std::vector<std::string> stray;
  for (const std::string& instance : order)
    InstanceAnalyzer(path, instance).Run(by_instance[instance], &runs, &stray);
  if (runs.empty())
    return InvalidArgument(path, ": no run_start (no run to measure)",
                           stray.empty() ? std::string() : "; first problem: " + stray.front());
  // Problems outside any run are reported with the file's first run.
  runs.front().warnings.insert(runs.front().warnings.begin(), stray.begin(), stray.end());
  return runs;
}

Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths,
                                          const AnalyzeOptions& options) {
  if (paths.empty()) return InvalidArgument("no mllog files given");
  StagingAnalysis analysis;
  std::vector<std::string> order;
  std::vector<bool> is_compare;
  size_t published = 0;
  for (const std::string& path : paths)
    published += AddFile(path, options.group_by, false, &analysis, &order, &is_compare);
  if (published == 0)
    return InvalidArgument("no run could be read from the ", paths.size(), " file(s) given",
                           analysis.warnings.empty() ? std::string()
                                                     : "; first problem: " + analysis.warnings[0]);
  for (const std::string& path : options.compare) {
    if (AddFile(path, options.group_by, true, &analysis, &order, &is_compare) == 0)
      return InvalidArgument("--compare ", path, ": no run could be read: ",
                             analysis.warnings.back());
  }
  std::map<std::string, std::vector<const RunAnalysis*>> groups;
  for (const RunAnalysis& run : analysis.runs) groups[run.group].push_back(&run);
  for (size_t i = 0; i < order.size(); ++i) {
    GroupSummary g = Summarize(order[i], groups[order[i]]);
    g.compare = is_compare[i];
    analysis.groups.push_back(std::move(g));
  }
  return analysis;
}

Result<StagingAnalysis> AnalyzeMlLogFiles(const std::vector<std::string>& paths,
                                          GroupBy group_by) {
  AnalyzeOptions options;
  options.group_by = group_by;
  return AnalyzeMlLogFiles(paths, options);
}

std::string FormatStagingAnalysis(const StagingAnalysis& analysis, bool per_run) {
  std::ostringstream os;
  if (per_run) {
    os << "Per run (times in seconds; staging/epoch in epochs)\n";
    os << "   staging_s       run_s  staging/run  epochs  mean_epoch_s  staging/epoch"
          "   training_s      eval_s     other_s  state              run\n";
    for (const RunAnalysis& r : analysis.runs) {
      os << Pad(Fmt(r.staging_s), 12) << Pad(Fmt(r.run_s), 12)
         << Pad(Pct(r.staging_per_run), 13) << Pad(std::to_string(r.epochs), 8)
         << Pad(Fmt(r.mean_epoch_s), 14) << Pad(Fmt(r.staging_per_epoch), 15)
         << Pad(Fmt(r.split_training_s), 13) << Pad(Fmt(r.split_eval_s), 12)
         << Pad(Fmt(r.split_other_s), 12) << "  " << Pad(RunStateName(r.state), 17, true)
         << "  " << RunLabel(r) << "\n";
    }
    os << "\n";
  }
  os << "Per submission: median [min-max] over the counted runs (aborted and pruned runs left "
        "out; times in seconds)\n";
  os << Pad("nodes", 9) << Pad("runs", 6) << Pad("abort", 6) << Pad("staging_s", 26)
     << Pad("time_to_train_s", 28) << Pad("staging%", 20) << Pad("epochs", 14)
     << Pad("epoch_s", 26) << Pad("staging/epoch", 22) << Pad("inst", 6)
     << Pad("models/min", 11) << "  submission\n";
  for (const GroupSummary& g : analysis.groups) {
    os << Pad(NodesText(g), 9) << Pad(std::to_string(g.runs), 6)
       << Pad(std::to_string(g.runs_aborted), 6) << Pad(SpreadText(g.staging_s), 26)
       << Pad(SpreadText(g.run_s), 28) << Pad(SpreadText(g.staging_per_run, 100, "%.1f"), 20)
       << Pad(SpreadText(g.epochs, 1, "%.0f"), 14) << Pad(SpreadText(g.mean_epoch_s), 26)
       << Pad(SpreadText(g.staging_per_epoch), 22)
       << Pad(g.instances ? std::to_string(*g.instances) : "-", 6)
       << Pad(Fmt(g.models_per_min, "%.3f"), 11) << "  " << (g.compare ? "* " : "") << g.group;
    std::vector<std::string> notes;
    if (g.runs_pruned) notes.push_back(StrCat(g.runs_pruned, " pruned"));
    if (g.runs_with_staging < g.runs_counted)
      notes.push_back(StrCat(g.runs_counted - g.runs_with_staging, " without usable staging"));
    for (size_t i = 0; i < notes.size(); ++i)
      os << (i == 0 ? "  (" : ", ") << notes[i] << (i + 1 == notes.size() ? ")" : "");
    os << "\n";
  }

  bool header = false;
  for (const RunAnalysis& r : analysis.runs) {
    if (r.state == RunState::kOk) continue;
    if (!header)
      os << "\nRuns not ok (aborted and pruned runs are left out of all medians, runs without "
            "usable staging out of the staging ones)\n";
    header = true;
    os << "  " << Pad(RunStateName(r.state), 17, true) << "  " << RunLabel(r) << "\n";
  }

  // Where a tilestage run's staging share sits among the published submissions.
  std::vector<double> shares;
  for (const GroupSummary& g : analysis.groups)
    if (!g.compare && g.staging_per_run) shares.push_back(g.staging_per_run->median);
  for (const GroupSummary& g : analysis.groups) {
    if (!g.compare || !g.staging_per_run) continue;
    const double share = g.staging_per_run->median;
    const auto below = std::count_if(shares.begin(), shares.end(),
                                     [&](double s) { return s < share; });
    os << "\n* " << g.group << ": staging is " << Fmt(share * 100, "%.1f")
       << "% of time to train, more than in " << below << " of " << shares.size()
       << " published submissions\n";
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
    j["state"] = RunStateName(r.state);
    j["round"] = r.round;
    j["submitter"] = r.submitter;
    j["system"] = r.system;
    j["scale"] = r.scale;
    j["run_start_line"] = r.run_start_line;
    j["run_stop_line"] = r.run_stop_line ? Json(r.run_stop_line) : Json(nullptr);
    j["benchmark"] = r.benchmark;
    j["org"] = r.org;
    j["platform"] = r.platform;
    j["status"] = r.status;
    j["nodes"] = r.nodes ? Json(*r.nodes) : Json(nullptr);
    j["accelerators_per_node"] =
        r.accelerators_per_node ? Json(*r.accelerators_per_node) : Json(nullptr);
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
    j["compare"] = g.compare;
    j["round"] = g.round;
    j["submitter"] = g.submitter;
    j["system"] = g.system;
    j["scale"] = g.scale;
    j["benchmark"] = g.benchmark;
    j["nodes_min"] = g.nodes_min ? Json(*g.nodes_min) : Json(nullptr);
    j["nodes_max"] = g.nodes_max ? Json(*g.nodes_max) : Json(nullptr);
    j["accelerators_per_node"] =
        g.accelerators_per_node ? Json(*g.accelerators_per_node) : Json(nullptr);
    j["runs"] = g.runs;
    j["runs_counted"] = g.runs_counted;
    j["runs_aborted"] = g.runs_aborted;
    j["runs_pruned"] = g.runs_pruned;
    j["runs_with_staging"] = g.runs_with_staging;
    j["staging_s"] = SpreadJson(g.staging_s);
    j["run_s"] = SpreadJson(g.run_s);
    j["staging_per_run"] = SpreadJson(g.staging_per_run);
    j["epochs"] = SpreadJson(g.epochs);
    j["mean_epoch_s"] = SpreadJson(g.mean_epoch_s);
    j["staging_per_epoch"] = SpreadJson(g.staging_per_epoch);
    j["median_time_to_train_split_s"] = {{"staging", g.median_split_staging_s},
                                         {"evaluation", g.median_split_eval_s},
                                         {"training", g.median_split_training_s},
                                         {"other", g.median_split_other_s}};
    j["instances"] = g.instances ? Json(*g.instances) : Json(nullptr);
    j["time_to_train_all_s"] = Opt(g.time_to_train_all_s);
    j["models_per_min"] = Opt(g.models_per_min);
    groups.push_back(std::move(j));
  }
  Json out;
  out["schema"] = "tilestage-staging-analysis/2";
  out["definitions"] = {
      {"run_s", "run_stop.time_ms - run_start.time_ms, in seconds (MLPerf time-to-train)"},
      {"staging_s",
       "sum of staging_start->staging_stop intervals; if none, the logged staging_duration"},
      {"mean_epoch_s", "mean of epoch_start->epoch_stop intervals (includes nested evaluation)"},
      {"staging_per_run", "staging_s / run_s"},
      {"staging_per_epoch", "staging_s / mean_epoch_s"},
      {"time_to_train_split_s",
       "each instant of the run counted once, by priority staging > evaluation > training > "
       "other; sums to run_s"},
      {"groups", "median, min and max over the runs counted (not aborted, not pruned)"},
      {"models_per_min",
       "weak scaling: instances / (last run_stop - first run_start) in minutes"}};
  out["files_read"] = analysis.files_read;
  out["files_without_runs"] = analysis.files_without_runs;
  out["warnings"] = analysis.warnings;
  out["runs"] = std::move(runs);
  out["groups"] = std::move(groups);
  return out;
}

std::string StagingAnalysisToCsv(const StagingAnalysis& analysis, bool per_run) {
  std::ostringstream os;
  if (per_run) {
    os << "file,instance,group,state,nodes,accelerators_per_node,run_s,staging_s,"
          "staging_source,staging_per_run,epochs,mean_epoch_s,staging_per_epoch,warnings\n";
    for (const RunAnalysis& r : analysis.runs) {
      os << CsvField(r.file) << "," << CsvField(r.instance) << "," << CsvField(r.group) << ","
         << RunStateName(r.state) << "," << (r.nodes ? std::to_string(*r.nodes) : "") << ","
         << (r.accelerators_per_node ? std::to_string(*r.accelerators_per_node) : "") << ","
         << CsvNum(r.run_s) << "," << CsvNum(r.staging_s) << "," << r.staging_source << ","
         << CsvNum(r.staging_per_run) << "," << r.epochs << "," << CsvNum(r.mean_epoch_s) << ","
         << CsvNum(r.staging_per_epoch) << "," << r.warnings.size() << "\n";
    }
    return os.str();
  }
  os << "group,compare,round,submitter,system,scale,benchmark,nodes_min,nodes_max,"
        "accelerators_per_node,runs,runs_counted,runs_aborted,runs_pruned,runs_with_staging";
  const char* kSpreads[] = {"staging_s", "run_s", "staging_per_run", "epochs", "mean_epoch_s",
                            "staging_per_epoch"};
  for (const char* name : kSpreads) os << "," << name << "_median," << name << "_min," << name
                                       << "_max";
  os << ",instances,time_to_train_all_s,models_per_min\n";
  auto opt_int = [](const std::optional<int64_t>& v) { return v ? std::to_string(*v) : ""; };
  for (const GroupSummary& g : analysis.groups) {
    os << CsvField(g.group) << "," << (g.compare ? "true" : "false") << "," << CsvField(g.round)
       << "," << CsvField(g.submitter) << "," << CsvField(g.system) << "," << CsvField(g.scale)
       << "," << CsvField(g.benchmark) << "," << opt_int(g.nodes_min) << ","
       << opt_int(g.nodes_max) << "," << opt_int(g.accelerators_per_node) << "," << g.runs << ","
       << g.runs_counted << "," << g.runs_aborted << "," << g.runs_pruned << ","
       << g.runs_with_staging;
    for (const auto* s : {&g.staging_s, &g.run_s, &g.staging_per_run, &g.epochs,
                          &g.mean_epoch_s, &g.staging_per_epoch}) {
      if (*s) os << "," << CsvNum((*s)->median) << "," << CsvNum((*s)->min) << ","
                 << CsvNum((*s)->max);
      else os << ",,,";
    }
    os << "," << (g.instances ? std::to_string(*g.instances) : "") << ","
       << CsvNum(g.time_to_train_all_s) << "," << CsvNum(g.models_per_min) << "\n";
  }
  return os.str();
}

}  // namespace tilestage::bench
