#include "bench/e2e/e2e_results.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "bench/e2e/progress.h"

namespace tilestage::bench {
namespace {

Json Row(const std::string& name, const std::string& unit, double amount, double seconds) {
  return Json{{"name", name},
              {"unit", unit},
              {"tilestage", Json{{"amount", amount}, {"seconds", seconds}}}};
}
Json Peer(const std::string& name, double amount, double seconds) {
  return Json{{"name", name}, {"amount", amount}, {"seconds", seconds}};
}
Json Limit(const std::string& name, double rate) { return Json{{"name", name}, {"rate", rate}}; }

// printf into a std::string.
std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  std::string out(size_t(std::max(n, 0)) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), format, again);
  va_end(again);
  out.pop_back();
  return out;
}

}  // namespace

Json E2eStageRows(const E2ePhaseResults& r) {
  Json stages = Json::array();
  // The NetCDF and HDF5 peers read and decode only (no tiling, statistics or writes): an upper
  // bound on what those Python paths achieve.
  const char* kPeerNames[3] = {"gdal_retile.py", "xarray read only", "h5py read only"};
  for (size_t i = 0; i < kIngestModalities.size(); ++i) {
    const IngestFigures& f = r.ingest.modality[i];
    const std::string name = std::string("ingest ") + kIngestModalities[i];
    Json mb = Row(name, "MB/s", f.input_bytes / 1e6, f.seconds);
    if (r.peer_ingest) {
      const Json& p = r.peer_ingest->modality[i];
      mb["peer"] = Peer(kPeerNames[i], p.value("input_bytes", 0.0) / 1e6, p.value("seconds", 0.0));
    }
    mb["limit"] =
        Limit("raw read bandwidth (inputs, page cache)", r.limits.read.inputs_cached_mb_per_s);
    stages.push_back(mb);
    Json tiles = Row(name, "tiles/s", f.tiles, f.seconds);
    if (i == 0 && r.peer_ingest) {
      const Json& p = r.peer_ingest->modality[i];
      tiles["peer"] = Peer(kPeerNames[i], p.value("tiles", 0.0), p.value("seconds", 0.0));
    }
    stages.push_back(tiles);
  }
  {
    // Both measured in the peer phase, on the same disk state; the timed staging is in the
    // time-to-train split.
    const Json& peer = r.peer_staging;
    const double bytes_gb = peer.value("bytes", 0.0) / 1e9;
    Json s = Row("staging", "GB/s", bytes_gb, peer.value("stage_s", 0.0));
    s["peer"] = Peer("cp -r + sync", bytes_gb, peer.value("seconds", 0.0));
    s["limit"] = Limit("raw read bandwidth (page cache)", r.limits.read.cached_gb_per_s);
    stages.push_back(s);
  }
  {
    const Json& l = r.loader.load;
    Json rate = Row("loader", "samples/s", l.value("samples", 0.0), l.value("wall_s", 0.0));
    double stored_bytes = 0;
    for (const auto& rank : l.value("per_rank", Json::array())) {
      stored_bytes += rank.value("stored_bytes_read", 0.0);
    }
    Json gbs = Row("loader", "GB/s", stored_bytes / 1e9, l.value("wall_s", 0.0));
    if (r.loader.peer_loader) {
      const Json& p = *r.loader.peer_loader;
      rate["peer"] = Peer("PyTorch DataLoader", p.value("samples", 0.0), p.value("seconds", 0.0));
    }
    gbs["limit"] = Limit("raw read bandwidth (page cache)", r.limits.read.cached_gb_per_s);
    stages.push_back(rate);
    stages.push_back(gbs);
    if (r.loader.python_loader && r.loader.peer_loader) {
      // The same loader through the Python package, against the same peer.
      const Json& py = *r.loader.python_loader;
      const Json& p = *r.loader.peer_loader;
      Json python = Row("loader (Python)", "samples/s", py.value("samples", 0.0),
                        py.value("seconds", 0.0));
      python["peer"] = Peer("PyTorch DataLoader", p.value("samples", 0.0), p.value("seconds", 0.0));
      stages.push_back(python);
    }
  }
  const TrainResult& t = r.train;
  Json training = Json{{"name", "training"},
                       {"unit", "samples/s"},
                       {"tilestage", Json{{"rate", t.figures.samples_per_s}}}};
  if (r.loader.peer_train) {
    training["peer"] = Json{{"name", "PyTorch+OpenBLAS (same MAE)"},
                            {"rate", r.loader.peer_train->value("samples_per_s", 0.0)}};
  }
  stages.push_back(training);
  if (t.flops_per_sample > 0) {
    Json g =
        Json{{"name", "training"},
             {"unit", "GFLOP/s"},
             {"tilestage", Json{{"rate", t.figures.samples_per_s * t.flops_per_sample / 1e9}}}};
    g["limit"] = Limit("sgemm 512^3 (trainer kernel, all cores)", r.limits.sgemm_gflop_per_s);
    stages.push_back(g);
  }
  if (t.figures.allreduce_s > 0 && t.allreduce_bytes > 0) {
    Json a = Row("allreduce", "GB/s", t.allreduce_bytes / 1e9, t.figures.allreduce_s);
    a["limit"] = Limit("memcpy", r.limits.memcpy_gb_per_s);
    stages.push_back(a);
  }
  return stages;
}

Json E2eStepsJson(const E2ePhaseResults& r) {
  Json steps = Json::object();
  for (size_t i = 0; i < kIngestModalities.size(); ++i) {
    steps[std::string("ingest_") + kIngestModalities[i]] = r.ingest.modality[i].step;
  }
  steps["stage"] = r.staging.step;
  steps["train"] = r.train.step;
  steps["peer_staging"] = r.peer_staging;
  steps["load"] = r.loader.load;
  if (r.loader.peer_loader) steps["peer_loader"] = *r.loader.peer_loader;
  if (r.loader.python_loader) steps["python_loader"] = *r.loader.python_loader;
  if (r.loader.peer_train) steps["peer_train"] = *r.loader.peer_train;
  if (r.peer_ingest) {
    for (size_t i = 0; i < kIngestModalities.size(); ++i) {
      steps[std::string("peer_ingest_") + kIngestModalities[i]] = r.peer_ingest->modality[i];
    }
  }
  steps["stalls_cold"] = r.stalls.cold_step;
  steps["stalls_cached"] = r.stalls.cached_step;
  return steps;
}

Json E2eResultsJson(const E2ePhaseResults& r, Json system, const Json& provenance,
                    const Json& time_to_train, bool python_peers) {
  system["limits"] = r.limits.ToJson();
  system["python_peers"] = python_peers;
  return Json{{"schema", "tilestage-e2e-results/1"},
              {"system", system},
              {"provenance", provenance},
              {"stages", E2eStageRows(r)},
              {"time_to_train", time_to_train},
              {"data_stalls", r.stalls.ToJson()},
              {"steps", E2eStepsJson(r)}};
}

std::string FormatE2eTable(const E2eResults& r, const std::string& preset, const std::string& out) {
  std::string s = Printf("\ntilestage bench e2e --preset %s: where the time went (%s)\n\n",
                         preset.c_str(), out.c_str());
  if (r.time_to_train) {
    const TimeToTrain& t = *r.time_to_train;
    auto pct = [&](double v) { return t.run_s > 0 ? 100.0 * v / t.run_s : 0.0; };
    s += Printf("time to train %8.2f s  (run_start -> run_stop in mllog.txt)\n", t.run_s);
    s += Printf("  staging     %8.2f s  %5.1f%%\n", t.staging_s, pct(t.staging_s));
    s += Printf("  training    %8.2f s  %5.1f%%\n", t.training_s, pct(t.training_s));
    s += Printf("  evaluation  %8.2f s  %5.1f%%\n", t.evaluation_s, pct(t.evaluation_s));
    s += Printf("  other       %8.2f s  %5.1f%%  (mpirun start-up, model init, checkpoints)\n",
                t.other_s, pct(t.other_s));
    s += Printf("staging/run %.3f", t.staging_per_run);
    if (t.staging_per_epoch) s += Printf("   staging/epoch %.3f", *t.staging_per_epoch);
    if (t.mean_epoch_s) s += Printf("   mean epoch %.2f s", *t.mean_epoch_s);
    s += "\n\n";
  }
  s += Printf("%-16s %-10s %12s %-34s %12s %8s %-38s %12s %8s\n", "stage", "unit", "tilestage",
              "peer", "peer rate", "vs peer", "limit", "limit rate", "of limit");
  for (const auto& st : r.stages) {
    s += Printf("%-16s %-10s %12.3f %-34s %12s %8s %-38s %12s %8s\n", st.name.c_str(),
                st.unit.c_str(), st.tilestage.rate, st.peer ? st.peer->name.c_str() : "-",
                st.peer ? FormatFixed(st.peer->rate, 3).c_str() : "-",
                st.vs_peer ? (FormatFixed(*st.vs_peer) + "x").c_str() : "-",
                st.limit ? st.limit->name.c_str() : "-",
                st.limit ? FormatFixed(st.limit->rate, 3).c_str() : "-",
                st.of_limit ? (FormatFixed(100.0 * *st.of_limit, 1) + "%").c_str() : "-");
  }
  if (std::any_of(r.stages.begin(), r.stages.end(),
                  [](const StageResult& st) { return st.fixed_cost_scale; })) {
    s += "fixed-cost scale (measured in under " + FormatFixed(kFixedCostScaleS, 0) + " s, so " +
         "start-up dominates; no finding about the stage):";
    for (const auto& st : r.stages)
      if (st.fixed_cost_scale) s += " " + st.name + " (" + st.unit + ")";
    s += "\n";
  }
  if (r.data_stalls) {
    const DataStalls& d = *r.data_stalls;
    s += Printf(
        "\ndata stalls (DS-Analyzer, %.0f samples, median of %d round(s)): synthetic "
        "%.2f s, cached %.2f s, cold %.2f s\n  AU %.1f%%, prep stall %.2f s (%.1f%%), "
        "fetch stall %.2f s (%.1f%%)\n",
        d.samples, d.summary.rounds, d.synthetic_s, d.cached_s, d.cold_s, d.au_percent,
        d.prep_stall_s, 100.0 * d.prep_stall_share, d.fetch_stall_s, 100.0 * d.fetch_stall_share);
    for (const std::string& n : d.summary.noise) s += "  noise: " + n + "\n";
  }
  const Json& sys = r.system;
  s += Printf("\nsystem: %s, %s, %s cores, %s; %s\n", sys.value("host", "").c_str(),
              sys.value("cpu", "").c_str(),
              sys.contains("cores") ? sys["cores"].dump().c_str() : "?",
              sys.value("os", "").c_str(), sys.value("mpi", "").c_str());
  s += Printf("provenance: %s (git %s, %s)\n", r.provenance.value("command", "").c_str(),
              r.provenance.value("git", "").c_str(), r.provenance.value("time_utc", "").c_str());
  s += Printf(
      "report: %s/report/report.md, report.json, *.svg; results: %s/results.json; "
      "log: %s/mllog.txt\n",
      out.c_str(), out.c_str(), out.c_str());
  return s;
}

}  // namespace tilestage::bench
