// The shared ingest driver: turns any Source (ingest/source.h) into a tile store.
//
// For every item it cuts windows (ingest/ingest_windows.h: tile size, stride, edge policy, or the
// whole item), applies the validity filter (--min-valid), converts the dtype if asked, computes
// per-channel statistics over valid values only, encodes records and writes shards.
//
// Parallelism: lanes. Work units are one row of windows of one item (or one whole item); a
// process splits its units into one contiguous run per thread, and each such lane reads (its own
// Source::OpenReader), cuts, computes statistics, encodes and writes its records into shards of
// its own ("lNNN-shard-*.tss"), so writing and shard hashing scale with the threads instead of
// being one serialized stage; the source files are hashed for the provenance on one more thread
// meanwhile (a single-process command starts that before it loads its format library:
// ingest/source_hashes.h). Under MPI (MPI initialized by the caller) ranks take contiguous blocks
// of items (ingest/mpi_split.h), each writes its own shards ("rNNNN-[lNNN-]shard-*.tss"), and rank
// 0 gathers shard lists, statistics and source hashes and writes the one manifest, listing shards
// in rank, lane and shard order = item order. Statistics are merged in a fixed order (tiles of a
// unit in window order, units in unit order, items in item order), so the same input gives the
// same tiles, the same record order and bit-identical statistics for any thread count and rank
// count; only the shard files depend on the thread and rank counts (deterministically).
//
// Failure: when any rank fails (a read error, a full disk...) no manifest is written, every rank
// removes the shards it wrote, and all ranks return the first error (lowest rank). A store is
// complete exactly when manifest.json exists, so an interrupted or failed ingest into a new
// directory never leaves a store that looks complete (`tilestage verify` answers NotFound).
// Options and the window plan are checked before the output directory is touched.
//
// An existing store is never lost: a complete store at `out` is refused (AlreadyExists) unless
// `overwrite` is set; then the new store is written into StagingDir(out) beside it and, once
// complete and after every rank finished, rank 0 swaps it in (PublishStore), so a crash at any
// moment leaves exactly one complete store at out, the old or the new one. Every run first
// recovers from an interrupted one (RecoverStore: a leftover staging directory is removed).
//
// A run where every tile falls below --min-valid (e.g. an all-nodata raster) is an error
// (FailedPrecondition, "no tiles...") and writes no manifest: an empty store is never what a
// training job wants. Tiles without a single valid pixel are always dropped.
//
// Thread-safety: RunIngest is called from one thread (the MPI main thread) per process; under MPI
// it is collective (every rank calls it with the same Source item list and options).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ingest/ingest_windows.h"
#include "ingest/source.h"
#include "ingest/source_hashes.h"
#include "tiling/codec.h"
#include "tiling/stats.h"
#include "tiling/storage.h"

namespace tilestage::ingest {

struct DriverOptions {
  std::shared_ptr<Storage> storage = LocalStorage();
  std::string out;  // store directory
  TileSpec tile;
  // Tiles whose fraction of pixels valid in every channel of x is below this are dropped.
  double min_valid = 0.0;
  // Output dtypes of x and y; nullopt keeps the source's. Converting to a float type turns
  // invalid values into NaN; converting to an integer type rounds to nearest and saturates, and
  // invalid values (NaN, the source's nodata, padding) become the field's stored nodata value: the
  // source's when the type represents it, else DefaultNodata (ingest/nodata_values.h). A valid
  // value that would round or saturate into it is refused (InvalidArgument naming item, channel and
  // pixel). attrs.ingest.nodata records the stored values, attrs.ingest.source_nodata the source's.
  std::optional<DType> x_dtype;
  std::optional<DType> y_dtype;
  CodecSpec codec;
  uint64_t shard_target_bytes = 256ull << 20;
  int threads = 0;  // 0: all cores
  bool progress = false;
  std::string progress_label = "ingest";
  std::vector<std::string> command_line;  // provenance
  bool hash_sources = true;               // XXH3 of each input file in the provenance
  // Input files whose hashing started before the source was opened (single process only:
  // ingest/source_hashes.h); the others are hashed during the run.
  std::shared_ptr<EarlySourceHashes> early_hashes;
  bool overwrite = false;  // replace a complete store at `out` (else AlreadyExists)
};

struct IngestSummary {
  std::string out;
  std::string kind;
  int64_t items = 0;
  uint64_t tiles_considered = 0;  // windows cut
  uint64_t tiles_written = 0;
  uint64_t tiles_dropped = 0;  // below --min-valid (or no valid pixel)
  uint64_t raw_bytes = 0;      // decoded bytes of the written records' fields
  uint64_t stored_bytes = 0;   // shard bytes on disk
  double compression_ratio = 0.0;  // MeasureStore(...).ratio(), as `tilestage inspect` shows it
  uint64_t shards = 0;
  double elapsed_s = 0.0;
  int ranks = 1;
  int threads = 1;
  std::vector<std::string> items_without_tiles;  // names of items that gave no tile

  nlohmann::json ToJson() const;
  // A few human-readable lines.
  std::string ToText() const;
};

// Runs the whole ingest of `source` into options.out (collective under MPI). Returns the same
// summary (or the same error) on every rank.
Result<IngestSummary> RunIngest(const Source& source, const DriverOptions& options);

}  // namespace tilestage::ingest
