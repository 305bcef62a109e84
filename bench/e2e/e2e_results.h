// From the typed results of an e2e run's phases to the results document (schema
// "tilestage-e2e-results/1", report.h) that the report is made from, and the table the CLI
// prints from the parsed results.
//
// Thread-safety: pure functions over values.
#pragma once

#include <optional>
#include <string>

#include "bench/e2e/limits.h"
#include "bench/e2e/mllog.h"  // Json
#include "bench/e2e/phases.h"
#include "bench/e2e/report.h"

namespace tilestage::bench {

// Everything one run measured, phase by phase.
struct E2ePhaseResults {
  MachineLimits limits;
  IngestResult ingest;
  std::optional<PeerIngestResult> peer_ingest;  // with peers only
  StagingResult staging;
  TrainResult train;
  Json peer_staging;  // RunStagingPeerPhase
  LoaderResult loader;
  DataStallResult stalls;
};

// The "stages" rows: ingest (MB/s and tiles/s per modality), staging, loader (samples/s, GB/s),
// training (samples/s, GFLOP/s when the model's FLOPs are known), allreduce (when measured), each
// with its peer and limit where there is one.
Json E2eStageRows(const E2ePhaseResults& r);

// The "steps" object: every step's --json output, by step name.
Json E2eStepsJson(const E2ePhaseResults& r);

// The whole results document; system gains "limits" and "python_peers".
Json E2eResultsJson(const E2ePhaseResults& r, Json system, const Json& provenance,
                    const Json& time_to_train, bool python_peers);

// The human summary: the time-to-train split, one line per stage with peer and limit, the
// data stalls (with their noise flags), system, provenance and where the files are.
std::string FormatE2eTable(const E2eResults& results, const std::string& preset,
                           const std::string& out_dir);

}  // namespace tilestage::bench
