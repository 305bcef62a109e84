// Follows `tilestage train --json -` as it runs: each JSONL record on the trainer's stdout (run,
// step, epoch) as it arrives. Epoch and evaluation boundaries go into the run's mllog at the
// times the records carry (an epoch starts when its first step started: time_ms minus step_ms;
// its evaluation takes the epoch record's eval_ms and ends when that record is written), and the
// figures the report needs are summed on the way.
//
// Thread-safety: not thread-safe; one follower per training step, fed from one thread (RunStep's
// line callback). The MlLogger it writes to may be shared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/e2e/mllog.h"
#include "bench/e2e/progress.h"
#include "tiling/status.h"

namespace tilestage::bench {

// What training measured, from its records.
struct TrainFigures {
  int64_t params = 0;                       // the run record's "parameters"
  std::vector<int64_t> x_shape;             // the run record's [channels, height, width]
  int64_t steps = 0;                        // step records, all epochs
  double compute_ms_mean = 0;               // per step
  double allreduce_s = 0;                   // summed over steps
  std::vector<double> epoch_samples_per_s;  // per epoch, in order
  double samples_per_s = 0;                 // the median epoch's: the first epoch carries warm-up
};

class TrainRecordFollower {
 public:
  // Logs to `log` (not owned; must outlive the follower). `progress` (nullable) gets one line per
  // epoch, "epoch e/<epochs>: ...".
  TrainRecordFollower(MlLogger* log, int epochs, const Progress* progress);

  // One stdout line and its arrival time (ms since the Unix epoch), the time of a record without
  // time_ms. Lines that are not JSON records are skipped.
  void OnLine(const std::string& line, int64_t arrival_ms);

  // The first mllog write error, if any; then the figures. DataLoss when no epoch or no run
  // record came (naming `where`, e.g. the step's stderr file).
  Result<TrainFigures> Finish(const std::string& where) const;

 private:
  Status LogAt(int64_t time_ms, MlEventType type, const char* key, Json value, int64_t epoch_num,
               SourceLocation where = SourceLocation::current());

  MlLogger* log_;
  int epochs_;
  const Progress* progress_;
  Status status_ = Status::Ok();
  TrainFigures fig_;
  int64_t current_epoch_ = -1;
  int64_t last_step_ms_ = 0, last_epoch_stop_ms_ = 0;
  double compute_ms_sum_ = 0, allreduce_ms_sum_ = 0;
};

}  // namespace tilestage::bench
