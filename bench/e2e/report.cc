#include "bench/e2e/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace tilestage::bench {
namespace {

std::string Fmt(double v, const char* format = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

Json Opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

// {"synthetic_s": [min, max], ...} over the rounds.
Json StallRangeJson(const StallSummary& s) {
  return {{"synthetic_s", {s.min.synthetic_s, s.max.synthetic_s}},
          {"cached_s", {s.min.cached_s, s.max.cached_s}},
          {"cold_s", {s.min.cold_s, s.max.cold_s}}};
}

// Text for a Markdown table cell: a "|" would end the cell, a newline the row.
std::string Cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

Result<double> PositiveNumber(const Json& obj, const char* key, const std::string& path,
                              bool allow_zero = false) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number())
    return InvalidArgument(path, ".", key, " must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0))
    return InvalidArgument(path, ".", key, " must be a ", allow_zero ? "non-negative" : "positive",
                           " number, got ", it->dump());
  return v;
}

Result<Measure> ParseMeasure(const Json& j, const std::string& path,
                             const std::string& default_name) {
  if (!j.is_object()) return InvalidArgument(path, " must be an object");
  Measure m;
  m.name = default_name;
  auto name = j.find("name");
  if (name != j.end()) {
    if (!name->is_string()) return InvalidArgument(path, ".name must be a string");
    m.name = name->get<std::string>();
  }
  if (j.contains("rate") && (j.contains("amount") || j.contains("seconds")))
    return InvalidArgument(path, ": give either rate or amount and seconds, not both");
  if (j.contains("rate")) {
    TS_ASSIGN_OR_RETURN(m.rate, PositiveNumber(j, "rate", path));
    return m;
  }
  TS_ASSIGN_OR_RETURN(double amount, PositiveNumber(j, "amount", path, /*allow_zero=*/true));
  TS_ASSIGN_OR_RETURN(double seconds, PositiveNumber(j, "seconds", path));
  m.amount = amount;
  m.seconds = seconds;
  m.rate = amount / seconds;
  return m;
}

Json MeasureJson(const Measure& m) {
  Json j;
  j["name"] = m.name;
  j["amount"] = Opt(m.amount);
  j["seconds"] = Opt(m.seconds);
  j["rate"] = m.rate;
  return j;
}

// Colours: tilestage, peer, limit; and the four time categories.
constexpr const char* kColorTilestage = "#1f77b4";
constexpr const char* kColorPeer = "#ff7f0e";
constexpr const char* kColorLimit = "#9e9e9e";
constexpr const char* kColorStaging = "#d62728";
constexpr const char* kColorTraining = "#2ca02c";
constexpr const char* kColorEval = "#9467bd";
constexpr const char* kColorOther = "#bdbdbd";
constexpr const char* kColorFetch = "#d62728";
constexpr const char* kColorPrep = "#ff7f0e";

std::string SvgOpen(int width, int height, const std::string& title) {
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" viewBox=\"0 0 " << width << " " << height
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<title>" << XmlEscape(title) << "</title>\n"
     << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height
     << "\" fill=\"white\"/>\n"
     << "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">" << XmlEscape(title)
     << "</text>\n";
  return os.str();
}

std::string Rect(double x, double y, double w, double h, const char* fill,
                 const std::string& tooltip) {
  std::ostringstream os;
  os << "<rect x=\"" << Fmt(x, "%.1f") << "\" y=\"" << Fmt(y, "%.1f") << "\" width=\""
     << Fmt(std::max(0.0, w), "%.1f") << "\" height=\"" << Fmt(h, "%.1f") << "\" fill=\"" << fill
     << "\"><title>" << XmlEscape(tooltip) << "</title></rect>\n";
  return os.str();
}

std::string Text(double x, double y, const std::string& text, const char* anchor = "start") {
  std::ostringstream os;
  os << "<text x=\"" << Fmt(x, "%.1f") << "\" y=\"" << Fmt(y, "%.1f") << "\" text-anchor=\""
     << anchor << "\">" << XmlEscape(text) << "</text>\n";
  return os.str();
}

std::string Legend(double x, double y,
                   const std::vector<std::pair<const char*, std::string>>& items) {
  std::string out;
  for (const auto& [color, label] : items) {
    out += Rect(x, y - 10, 12, 12, color, label);
    out += Text(x + 16, y, label);
    x += 30 + 7.0 * static_cast<double>(label.size());
  }
  return out;
}

Status WriteText(Storage& storage, const std::string& path, const std::string& text) {
  TS_ASSIGN_OR_RETURN(auto file, storage.CreateAtomic(path));
  TS_RETURN_IF_ERROR(file->Append(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  return file->Commit();
}

}  // namespace

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters even when escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') out += ' ';
        else out += c;
    }
  }
  return out;
}

Result<E2eResults> E2eResultsFromJson(const Json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where, ": results must be a JSON object");
  auto schema = j.find("schema");
  if (schema == j.end() || *schema != "tilestage-e2e-results/1")
    return InvalidArgument(where, ": \"schema\" must be \"tilestage-e2e-results/1\"");
  E2eResults r;
  if (j.contains("system")) {
    if (!j["system"].is_object()) return InvalidArgument(where, ": system must be an object");
    r.system = j["system"];
  }
  if (j.contains("provenance")) {
    if (!j["provenance"].is_object())
      return InvalidArgument(where, ": provenance must be an object");
    r.provenance = j["provenance"];
  }
  auto stages = j.find("stages");
  if (stages != j.end()) {
    if (!stages->is_array()) return InvalidArgument(where, ": stages must be an array");
    for (size_t i = 0; i < stages->size(); ++i) {
      const Json& s = (*stages)[i];
      const std::string path = StrCat(where, ": stages[", i, "]");
      if (!s.is_object()) return InvalidArgument(path, " must be an object");
      StageResult stage;
      if (!s.contains("name") || !s["name"].is_string())
        return InvalidArgument(path, ".name must be a string");
      if (!s.contains("unit") || !s["unit"].is_string())
        return InvalidArgument(path, ".unit must be a string");
      stage.name = s["name"];
      stage.unit = s["unit"];
      if (!s.contains("tilestage")) return InvalidArgument(path, ".tilestage is missing");
      TS_ASSIGN_OR_RETURN(stage.tilestage, ParseMeasure(s["tilestage"], path + ".tilestage",
                                                        "tilestage"));
      stage.fixed_cost_scale =
          stage.tilestage.seconds && *stage.tilestage.seconds < kFixedCostScaleS;
      if (s.contains("peer") && !s["peer"].is_null()) {
        TS_ASSIGN_OR_RETURN(stage.peer, ParseMeasure(s["peer"], path + ".peer", "peer"));
        stage.vs_peer = stage.tilestage.rate / stage.peer->rate;
      }
      if (s.contains("limit") && !s["limit"].is_null()) {
        TS_ASSIGN_OR_RETURN(stage.limit, ParseMeasure(s["limit"], path + ".limit", "limit"));
        stage.of_limit = stage.tilestage.rate / stage.limit->rate;
      }
      r.stages.push_back(std::move(stage));
    }
  }
  auto ttt_it = j.find("time_to_train");
  if (ttt_it != j.end() && !ttt_it->is_null()) {
    const std::string path = where + ": time_to_train";
    if (!ttt_it->is_object()) return InvalidArgument(path, " must be an object");
    TimeToTrain t;
    TS_ASSIGN_OR_RETURN(t.run_s, PositiveNumber(*ttt_it, "run_s", path));
    TS_ASSIGN_OR_RETURN(t.staging_s, PositiveNumber(*ttt_it, "staging_s", path, true));
    TS_ASSIGN_OR_RETURN(t.training_s, PositiveNumber(*ttt_it, "training_s", path, true));
    TS_ASSIGN_OR_RETURN(t.evaluation_s, PositiveNumber(*ttt_it, "evaluation_s", path, true));
    auto epochs = ttt_it->find("epoch_s");
    if (epochs != ttt_it->end()) {
      if (!epochs->is_array()) return InvalidArgument(path, ".epoch_s must be an array");
      for (size_t i = 0; i < epochs->size(); ++i) {
        const Json& e = (*epochs)[i];
        if (!e.is_number() || !(e.get<double>() > 0))
          return InvalidArgument(path, ".epoch_s[", i, "] must be a positive number, got ",
                                 e.dump());
        t.epoch_s.push_back(e.get<double>());
      }
    }
    const double accounted = t.staging_s + t.training_s + t.evaluation_s;
    // Timings are logged in milliseconds; allow that much rounding.
    if (accounted > t.run_s + 1e-3)
      return InvalidArgument(path, ": staging_s + training_s + evaluation_s = ", accounted,
                             " exceeds run_s = ", t.run_s);
    t.other_s = std::max(0.0, t.run_s - accounted);
    t.staging_per_run = t.staging_s / t.run_s;
    if (!t.epoch_s.empty()) {
      double sum = 0;
      for (double e : t.epoch_s) sum += e;
      t.mean_epoch_s = sum / static_cast<double>(t.epoch_s.size());
      t.staging_per_epoch = t.staging_s / *t.mean_epoch_s;
    }
    r.time_to_train = t;
  }
  auto ds_it = j.find("data_stalls");
  if (ds_it != j.end() && !ds_it->is_null()) {
    const std::string path = where + ": data_stalls";
    if (!ds_it->is_object()) return InvalidArgument(path, " must be an object");
    DataStalls d;
    TS_ASSIGN_OR_RETURN(d.samples, PositiveNumber(*ds_it, "samples", path));
    TS_ASSIGN_OR_RETURN(d.synthetic_s, PositiveNumber(*ds_it, "synthetic_s", path));
    TS_ASSIGN_OR_RETURN(d.cached_s, PositiveNumber(*ds_it, "cached_s", path));
    TS_ASSIGN_OR_RETURN(d.cold_s, PositiveNumber(*ds_it, "cold_s", path));
    auto rounds_it = ds_it->find("rounds");
    if (rounds_it != ds_it->end()) {
      if (!rounds_it->is_array() || rounds_it->empty())
        return InvalidArgument(path, ".rounds must be a non-empty array");
      for (size_t i = 0; i < rounds_it->size(); ++i) {
        const Json& rj = (*rounds_it)[i];
        const std::string rpath = path + ".rounds[" + std::to_string(i) + "]";
        if (!rj.is_object()) return InvalidArgument(rpath, " must be an object");
        StallRound round;
        TS_ASSIGN_OR_RETURN(round.synthetic_s, PositiveNumber(rj, "synthetic_s", rpath));
        TS_ASSIGN_OR_RETURN(round.cached_s, PositiveNumber(rj, "cached_s", rpath));
        TS_ASSIGN_OR_RETURN(round.cold_s, PositiveNumber(rj, "cold_s", rpath));
        d.rounds.push_back(round);
      }
    } else {
      d.rounds.push_back({d.synthetic_s, d.cached_s, d.cold_s});
    }
    TS_ASSIGN_OR_RETURN(d.summary, SummarizeStallRounds(d.rounds));
    d.compute_s = d.synthetic_s;
    // Run-to-run noise can make a slower stage look negative; a stall is never below zero.
    d.prep_stall_s = std::max(0.0, d.cached_s - d.synthetic_s);
    d.fetch_stall_s = std::max(0.0, d.cold_s - d.cached_s);
    d.au_percent = 100.0 * d.synthetic_s / d.cold_s;
    d.prep_stall_share = d.prep_stall_s / d.cold_s;
    d.fetch_stall_share = d.fetch_stall_s / d.cold_s;
    r.data_stalls = d;
  }
  if (r.stages.empty() && !r.time_to_train && !r.data_stalls)
    return InvalidArgument(where, ": no stages, time_to_train or data_stalls to report");
  return r;
}

Result<E2eResults> ReadE2eResults(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot open results file ", path);
  Json j;
  try {
    j = Json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgument(path, ": not valid JSON: ", e.what());
  }
  return E2eResultsFromJson(j, path);
}

Json TimeToTrainResultsJson(const RunAnalysis& run) {
  return {{"run_s", run.run_s},
          {"staging_s", run.split_staging_s},
          {"training_s", run.split_training_s},
          {"evaluation_s", run.split_eval_s},
          {"epoch_s", run.epoch_s}};
}

Json E2eReportJson(const E2eResults& r) {
  Json out;
  out["schema"] = "tilestage-e2e-report/1";
  out["system"] = r.system;
  out["provenance"] = r.provenance;
  Json stages = Json::array();
  for (const StageResult& s : r.stages) {
    Json j;
    j["name"] = s.name;
    j["unit"] = s.unit;
    j["tilestage"] = MeasureJson(s.tilestage);
    j["peer"] = s.peer ? MeasureJson(*s.peer) : Json(nullptr);
    j["limit"] = s.limit ? MeasureJson(*s.limit) : Json(nullptr);
    j["derived"] = {{"rate", s.tilestage.rate},
                    {"peer_rate", s.peer ? Json(s.peer->rate) : Json(nullptr)},
                    {"limit_rate", s.limit ? Json(s.limit->rate) : Json(nullptr)},
                    {"vs_peer", Opt(s.vs_peer)},
                    {"of_limit", Opt(s.of_limit)},
                    {"fixed_cost_scale", s.fixed_cost_scale}};
    stages.push_back(std::move(j));
  }
  out["stages"] = std::move(stages);
  if (r.time_to_train) {
    const TimeToTrain& t = *r.time_to_train;
    out["time_to_train"] = {{"run_s", t.run_s},
                            {"staging_s", t.staging_s},
                            {"training_s", t.training_s},
                            {"evaluation_s", t.evaluation_s},
                            {"epoch_s", t.epoch_s},
                            {"derived",
                             {{"other_s", t.other_s},
                              {"staging_per_run", t.staging_per_run},
                              {"training_per_run", t.training_s / t.run_s},
                              {"evaluation_per_run", t.evaluation_s / t.run_s},
                              {"other_per_run", t.other_s / t.run_s},
                              {"epochs", t.epoch_s.size()},
                              {"mean_epoch_s", Opt(t.mean_epoch_s)},
                              {"staging_per_epoch", Opt(t.staging_per_epoch)}}}};
  } else {
    out["time_to_train"] = nullptr;
  }
  if (r.data_stalls) {
    const DataStalls& d = *r.data_stalls;
    Json rounds = Json::array();
    for (const StallRound& r : d.rounds) rounds.push_back(StallRoundJson(r));
    out["data_stalls"] = {{"samples", d.samples},
                          {"synthetic_s", d.synthetic_s},
                          {"cached_s", d.cached_s},
                          {"cold_s", d.cold_s},
                          {"rounds", rounds},
                          {"derived",
                           {{"compute_s", d.compute_s},
                            {"prep_stall_s", d.prep_stall_s},
                            {"fetch_stall_s", d.fetch_stall_s},
                            {"au_percent", d.au_percent},
                            {"prep_stall_share", d.prep_stall_share},
                            {"fetch_stall_share", d.fetch_stall_share},
                            {"synthetic_samples_per_s", d.samples / d.synthetic_s},
                            {"cached_samples_per_s", d.samples / d.cached_s},
                            {"cold_samples_per_s", d.samples / d.cold_s},
                            {"rounds", d.summary.rounds},
                            {"range", StallRangeJson(d.summary)},
                            {"noise", d.summary.noise}}}};
  } else {
    out["data_stalls"] = nullptr;
  }
  return out;
}

std::string E2eReportMarkdown(const E2eResults& r) {
  std::ostringstream os;
  os << "# tilestage end-to-end benchmark\n\n";
  if (!r.stages.empty()) {
    os << "## Stage rates\n\n"
       << "| stage | unit | tilestage | peer | peer rate | tilestage / peer | limit | limit rate |"
          " share of limit |\n"
       << "|---|---|---:|---|---:|---:|---|---:|---:|\n";
    for (const StageResult& s : r.stages) {
      os << "| " << Cell(s.name) << " | " << Cell(s.unit) << " | "
         << Fmt(s.tilestage.rate, "%.4g") << " | "
         << (s.peer ? Cell(s.peer->name) : "-") << " | "
         << (s.peer ? Fmt(s.peer->rate, "%.4g") : "-") << " | "
         << (s.vs_peer ? Fmt(*s.vs_peer, "%.2fx") : "-") << " | "
         << (s.limit ? Cell(s.limit->name) : "-") << " | "
         << (s.limit ? Fmt(s.limit->rate, "%.4g") : "-") << " | "
         << (s.of_limit ? Fmt(*s.of_limit * 100, "%.1f%%") : "-")
         << (s.fixed_cost_scale ? " (fixed-cost scale)" : "") << " |\n";
    }
    if (std::any_of(r.stages.begin(), r.stages.end(),
                    [](const StageResult& s) { return s.fixed_cost_scale; })) {
      os << "\nRows marked *fixed-cost scale* were measured in under "
         << Fmt(kFixedCostScaleS, "%g")
         << " s: start-up and other fixed costs dominate their rates, so their ratios are no "
            "finding about the stage. A bigger store (`--preset medium`, or `tilestage bench "
            "staging` on your own) measures the stage itself.\n";
    }
    os << "\n![stage rates](stages.svg)\n\n";
  }
  if (r.time_to_train) {
    const TimeToTrain& t = *r.time_to_train;
    os << "## Time to train\n\n| part | seconds | share of run |\n|---|---:|---:|\n";
    auto row = [&](const char* name, double s) {
      os << "| " << name << " | " << Fmt(s, "%.3f") << " | " << Fmt(100 * s / t.run_s, "%.1f%%")
         << " |\n";
    };
    row("staging", t.staging_s);
    row("training", t.training_s);
    row("evaluation", t.evaluation_s);
    row("other", t.other_s);
    row("run (total)", t.run_s);
    os << "\nstaging/run: " << Fmt(100 * t.staging_per_run, "%.1f%%") << "; staging/epoch: "
       << (t.staging_per_epoch ? Fmt(*t.staging_per_epoch, "%.2f") + " epochs" : "-") << " ("
       << t.epoch_s.size() << " epochs, mean "
       << (t.mean_epoch_s ? Fmt(*t.mean_epoch_s, "%.3f") + " s" : "-") << ")\n\n"
       << "![time to train](time_to_train.svg)\n\n";
  }
  if (r.data_stalls) {
    const DataStalls& d = *r.data_stalls;
    os << "## Data stalls (DS-Analyzer method)\n\n"
       << "| run | seconds | samples/s |\n|---|---:|---:|\n"
       << "| synthetic (compute only) | " << Fmt(d.synthetic_s, "%.3f") << " | "
       << Fmt(d.samples / d.synthetic_s, "%.1f") << " |\n"
       << "| cached (compute + preprocessing) | " << Fmt(d.cached_s, "%.3f") << " | "
       << Fmt(d.samples / d.cached_s, "%.1f") << " |\n"
       << "| cold (compute + preprocessing + fetch) | " << Fmt(d.cold_s, "%.3f") << " | "
       << Fmt(d.samples / d.cold_s, "%.1f") << " |\n\n"
       << "AU " << Fmt(d.au_percent, "%.1f%%") << "; preprocessing stall "
       << Fmt(d.prep_stall_s, "%.3f") << " s (" << Fmt(100 * d.prep_stall_share, "%.1f%%")
       << "), fetch stall " << Fmt(d.fetch_stall_s, "%.3f") << " s ("
       << Fmt(100 * d.fetch_stall_share, "%.1f%%") << ")\n\n";
    if (d.summary.rounds > 1) {
      os << "Medians of " << d.summary.rounds << " rounds; range synthetic "
         << Fmt(d.summary.min.synthetic_s, "%.3f") << "–" << Fmt(d.summary.max.synthetic_s, "%.3f")
         << " s, cached " << Fmt(d.summary.min.cached_s, "%.3f") << "–"
         << Fmt(d.summary.max.cached_s, "%.3f") << " s, cold " << Fmt(d.summary.min.cold_s, "%.3f")
         << "–" << Fmt(d.summary.max.cold_s, "%.3f") << " s.\n\n";
    }
    for (const std::string& n : d.summary.noise) os << "Noise: " << n << ".\n\n";
    os << "![data stalls](data_stalls.svg)\n\n";
  }
  auto facts = [&](const char* title, const Json& j) {
    if (j.empty()) return;
    os << "## " << title << "\n\n| key | value |\n|---|---|\n";
    for (const auto& [k, v] : j.items())
      os << "| " << Cell(k) << " | " << Cell(v.is_string() ? v.get<std::string>() : v.dump())
         << " |\n";
    os << "\n";
  };
  facts("System", r.system);
  facts("Provenance", r.provenance);
  return os.str();
}

namespace {

// How a stage's bars are scaled: linear, or logarithmic when its rates span more than a decade
// (ingest against a raw read's limit can differ 100-fold: linear bars would hide the smaller).
struct StageScale {
  bool log = false;
  double max = 0, floor = 0;  // log: a decade below the smallest rate is width 0
  double Fraction(double rate) const {
    if (max <= 0 || rate <= 0) return 0;
    if (!log) return rate / max;
    return std::log10(rate / floor) / std::log10(max / floor);
  }
};

StageScale ScaleOf(const StageResult& s) {
  std::vector<double> rates = {s.tilestage.rate};
  if (s.peer) rates.push_back(s.peer->rate);
  if (s.limit) rates.push_back(s.limit->rate);
  StageScale scale;
  scale.max = *std::max_element(rates.begin(), rates.end());
  double min = scale.max;
  for (double r : rates)
    if (r > 0) min = std::min(min, r);
  scale.log = min > 0 && scale.max > 10 * min;
  scale.floor = min / 10;
  return scale;
}

}  // namespace

std::string StagesSvg(const std::vector<StageResult>& stages) {
  constexpr int kWidth = 760, kLabelW = 200, kBarMaxW = 380, kBarH = 14, kTop = 50;
  int height = kTop + 20;
  for (const StageResult& s : stages) height += 24 + kBarH * (1 + !!s.peer + !!s.limit) + 6;
  std::string out = SvgOpen(kWidth, height, "Stage rates: tilestage, peer and limit");
  out += Legend(10, 40, {{kColorTilestage, "tilestage"}, {kColorPeer, "peer"},
                         {kColorLimit, "physical limit"}});
  double y = kTop + 10;
  for (const StageResult& s : stages) {
    const StageScale scale = ScaleOf(s);
    std::string heading = s.name + " (" + s.unit + ")";
    if (s.vs_peer) heading += "  " + Fmt(*s.vs_peer, "%.2fx") + " vs " + s.peer->name;
    if (s.of_limit) heading += "  " + Fmt(*s.of_limit * 100, "%.0f%%") + " of limit";
    if (s.fixed_cost_scale) heading += "  (fixed-cost scale)";
    if (scale.log) heading += "  (log scale)";
    out += Text(10, y + 10, heading);
    y += 16;
    auto bar = [&](const Measure& m, const char* color) {
      const double w = kBarMaxW * scale.Fraction(m.rate);
      const std::string label = m.name + ": " + Fmt(m.rate, "%.4g") + " " + s.unit;
      out += Text(kLabelW - 6, y + kBarH - 3, m.name, "end");
      out += Rect(kLabelW, y, w, kBarH - 2, color, label);
      out += Text(kLabelW + w + 4, y + kBarH - 3, Fmt(m.rate, "%.4g"));
      y += kBarH;
    };
    bar(s.tilestage, kColorTilestage);
    if (s.peer) bar(*s.peer, kColorPeer);
    if (s.limit) bar(*s.limit, kColorLimit);
    y += 14;
  }
  out += "</svg>\n";
  return out;
}

std::string TimeToTrainSvg(const TimeToTrain& t) {
  constexpr int kWidth = 760, kHeight = 130, kX = 10, kBarW = 740;
  std::string out = SvgOpen(kWidth, kHeight, "Time to train: " + Fmt(t.run_s, "%.2f") + " s");
  const std::vector<std::tuple<const char*, const char*, double>> parts = {
      {"staging", kColorStaging, t.staging_s},
      {"training", kColorTraining, t.training_s},
      {"evaluation", kColorEval, t.evaluation_s},
      {"other", kColorOther, t.other_s}};
  double x = kX;
  std::vector<std::pair<const char*, std::string>> legend;
  for (const auto& [name, color, s] : parts) {
    const double w = kBarW * s / t.run_s;
    const std::string label =
        std::string(name) + " " + Fmt(s, "%.2f") + " s (" + Fmt(100 * s / t.run_s, "%.1f") + "%)";
    out += Rect(x, 40, w, 36, color, label);
    x += w;
    legend.push_back({color, std::string(name) + " " + Fmt(s, "%.1f") + " s"});
  }
  out += Legend(kX, 100, legend);
  if (t.staging_per_epoch)
    out += Text(kX, 122, "staging/run " + Fmt(100 * t.staging_per_run, "%.1f") +
                             "%, staging/epoch " + Fmt(*t.staging_per_epoch, "%.2f") + " epochs");
  out += "</svg>\n";
  return out;
}

std::string DataStallsSvg(const DataStalls& d) {
  constexpr int kWidth = 760, kHeight = 200, kLabelW = 120, kBarMaxW = 520, kBarH = 26;
  std::string out =
      SvgOpen(kWidth, kHeight, "Data stalls: AU " + Fmt(d.au_percent, "%.1f") + "%");
  const double max_s = std::max({d.synthetic_s, d.cached_s, d.cold_s});
  auto seg = [&](double x, double y, double s, const char* color, const std::string& what) {
    const double w = kBarMaxW * s / max_s;
    out += Rect(x, y, w, kBarH - 4, color, what + " " + Fmt(s, "%.3f") + " s");
    return x + w;
  };
  struct Row {
    const char* name;
    double compute, prep, fetch, total;
  };
  // Each run's wall time split as the differential method attributes it.
  const Row rows[] = {{"synthetic", d.synthetic_s, 0, 0, d.synthetic_s},
                      {"cached", d.synthetic_s, d.cached_s - d.synthetic_s, 0, d.cached_s},
                      {"cold", d.synthetic_s, d.prep_stall_s, d.cold_s - d.synthetic_s -
                                                                   d.prep_stall_s, d.cold_s}};
  double y = 40;
  for (const Row& row : rows) {
    out += Text(kLabelW - 6, y + kBarH - 10, row.name, "end");
    double x = kLabelW;
    x = seg(x, y, row.compute, kColorTraining, "compute");
    if (row.prep > 0) x = seg(x, y, row.prep, kColorPrep, "preprocessing stall");
    if (row.fetch > 0) x = seg(x, y, row.fetch, kColorFetch, "fetch stall");
    out += Text(x + 4, y + kBarH - 10, Fmt(row.total, "%.3f") + " s");
    y += kBarH + 4;
  }
  out += Legend(10, y + 18, {{kColorTraining, "compute"}, {kColorPrep, "preprocessing stall"},
                             {kColorFetch, "fetch stall"}});
  out += "</svg>\n";
  return out;
}

std::string StackedBarsSvg(const std::string& title, const std::vector<TimeBar>& bars,
                           const std::string& unit) {
  constexpr double kCharW = 7.0, kBarMaxW = 480, kBarH = 26, kTop = 40;
  constexpr const char* kPalette[] = {kColorStaging, kColorTraining, kColorPrep,
                                      kColorOther,   kColorEval,     kColorTilestage};
  std::vector<std::string> names;  // legend order: first appearance
  double label_w = 0, longest_s = 0;
  for (const TimeBar& bar : bars) {
    label_w = std::max(label_w, kCharW * double(bar.label.size()));
    double total_s = 0;
    for (const auto& [name, s] : bar.parts) {
      total_s += s;
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    longest_s = std::max(longest_s, total_s);
  }
  auto color = [&](const std::string& name) {
    const size_t i = size_t(std::find(names.begin(), names.end(), name) - names.begin());
    return kPalette[i % std::size(kPalette)];
  };
  const double x0 = 10 + label_w + 8;
  double legend_w = 10;
  for (const std::string& name : names) legend_w += 30 + kCharW * double(name.size());
  const int width = int(std::max(x0 + kBarMaxW + 90, legend_w));
  const int height = int(kTop + kBarH * 1.5 * double(bars.size()) + 40);
  const int title_w = int(20 + 9.0 * double(title.size()));  // 15 px bold
  std::string out = SvgOpen(std::max(width, title_w), height, title);
  double y = kTop;
  for (const TimeBar& bar : bars) {
    out += Text(x0 - 6, y + kBarH * 0.65, bar.label, "end");
    double x = x0, total_s = 0;
    for (const auto& [name, s] : bar.parts) {
      const double w = longest_s > 0 ? kBarMaxW * s / longest_s : 0;
      out += Rect(x, y, w, kBarH, color(name), name + " " + Fmt(s, "%.3g") + " " + unit);
      x += w;
      total_s += s;
    }
    out += Text(x + 4, y + kBarH * 0.65, Fmt(total_s, "%.3g") + " " + unit);
    y += kBarH * 1.5;
  }
  std::vector<std::pair<const char*, std::string>> legend;
  for (const std::string& name : names) legend.push_back({color(name), name});
  out += Legend(10, y + 16, legend);
  out += "</svg>\n";
  return out;
}

std::string StagingShareSvg(const StagingAnalysis& analysis) {
  std::vector<TimeBar> bars;
  for (const GroupSummary& g : analysis.groups) {
    if (!g.staging_per_run) continue;
    bars.push_back({g.group, {{g.compare ? "tilestage run" : "published submission",
                               100 * g.staging_per_run->median}}});
  }
  return StackedBarsSvg("Staging share of time to train (median per submission)", bars, "%");
}

Status WriteE2eReport(Storage& storage, const std::string& dir, const E2eResults& results) {
  TS_RETURN_IF_ERROR(storage.CreateDirs(dir));
  // report.json goes last: a directory with report.json holds a complete report.
  TS_RETURN_IF_ERROR(WriteText(storage, dir + "/report.md", E2eReportMarkdown(results)));
  if (!results.stages.empty())
    TS_RETURN_IF_ERROR(WriteText(storage, dir + "/stages.svg", StagesSvg(results.stages)));
  if (results.time_to_train)
    TS_RETURN_IF_ERROR(
        WriteText(storage, dir + "/time_to_train.svg", TimeToTrainSvg(*results.time_to_train)));
  if (results.data_stalls)
    TS_RETURN_IF_ERROR(
        WriteText(storage, dir + "/data_stalls.svg", DataStallsSvg(*results.data_stalls)));
  return WriteText(storage, dir + "/report.json", E2eReportJson(results).dump(2) + "\n");
}

}  // namespace tilestage::bench
