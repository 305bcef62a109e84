// What the ranks of an ingest tell each other (ingest/driver.cc), as typed structs, and their one
// byte encoding for the gathers and broadcasts of ingest/mpi_split.h. Numbers travel as their
// bits (the ranks run one binary), so rank 0 merges exactly the statistics the ranks computed.
// Decoding checks every length and says which message and field was short.
//
// Thread-safety: plain functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ingest/driver.h"
#include "ingest/source_hashes.h"
#include "tiling/manifest.h"
#include "tiling/stats.h"
#include "tiling/status.h"

namespace tilestage::ingest {

// Rank 0's answer to "where does this run write?" (PrepareOutput).
struct OutputDecision {
  Status status;
  std::string dir;
};

// One rank's part of the ingest: its shards and, per item of its block, tiles and statistics.
struct RankReport {
  Status status;  // when not ok, nothing else is sent
  std::vector<ShardEntry> shards;
  int64_t first_item = 0;
  std::vector<uint64_t> tiles_per_item;  // items first_item, first_item + 1, ...
  // Per item, `channels` consecutive entries (x: the field's channels; y: none without y).
  std::vector<ChannelStats> x_stats;
  std::vector<ChannelStats> y_stats;
  std::vector<SourceHash> sources;
  uint64_t considered = 0, written = 0, dropped = 0, raw_bytes = 0;
};

// Rank 0's outcome, which every rank returns.
struct IngestOutcome {
  Status status;
  IngestSummary summary;
};

std::string EncodeOutputDecision(const OutputDecision& decision);
Result<OutputDecision> DecodeOutputDecision(const std::string& bytes);
std::string EncodeRankReport(const RankReport& report);
// `rank` names the sender in errors.
Result<RankReport> DecodeRankReport(const std::string& bytes, int rank);
std::string EncodeIngestOutcome(const IngestOutcome& outcome);
Result<IngestOutcome> DecodeIngestOutcome(const std::string& bytes);

}  // namespace tilestage::ingest
