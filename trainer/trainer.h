// Trainer: the data-parallel training loop.
//
// Per step: take a batch from the BatchSource (the time waiting is the stall), forward and
// backward (compute), gradient averaging across ranks through GradientSync (overlapped with
// backward or blocking), global-norm clipping of the averaged gradients, AdamW at the scheduled
// learning rate. Every rank runs the same code on its own slice of each global batch; rank 0
// broadcasts the initial weights and writes checkpoints and logs. A periodic parameter checksum
// (XXH3 of the weights, allgathered) stops all ranks with a message when they diverge.
// Evaluation runs over the held-out source after each epoch. Rank 0 logs JSONL records, progress
// lines and MLLOG events (tiling/mllog.h) as configured.
//
// Elastic determinism: a step's result does not depend on how its global batch is split. Every
// rank's part holds exactly global_batch / W samples (checked each step), so the mean over ranks
// of the per-rank mean gradients is the mean gradient over the global batch: 1 rank x 32 and 2
// ranks x 16 take the same step (up to float summation order). Everything random that depends on
// a sample (MAE masks, the loader's augmentations) is keyed by (seed, epoch, global record index),
// never by rank or position in the batch. Checkpoints hold the global position, so a run stopped
// on N ranks continues on M ranks (M dividing the global batch) with the same global batches.
//
// Thread-safety: one thread drives a Trainer; the math inside runs on TBB.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "tiling/mllog.h"
#include "tiling/status.h"
#include "tiling/storage.h"
#include "trainer/batch_source.h"
#include "tiling/comm/communicator.h"
#include "trainer/grad_sync.h"
#include "trainer/model.h"
#include "trainer/optimizer.h"

namespace tilestage::trainer {

struct TrainerConfig {
  ModelConfig model;
  AdamWConfig adamw;
  int64_t epochs = 1;
  uint64_t seed = 0;
  AllreduceMode allreduce = AllreduceMode::kAuto;
  int64_t bucket_floats = int64_t{1} << 20;
  int64_t checksum_every = 50;   // steps; 0: never
  std::string checkpoint_dir;    // empty: no checkpoints
  int64_t checkpoint_every = 0;  // steps; 0: at the end of each epoch only
  int64_t max_steps = -1;        // stop after this many total steps (-1: run all epochs)
  // Stops Run() after this many total steps as if the job were killed (no final checkpoint, the
  // schedule unchanged): the resume tests' interruption. -1: never.
  int64_t interrupt_after_steps = -1;
  int64_t batch_size = 0;            // per rank; the global batch is batch_size * world_size
  int world_size = 1;                // set by Trainer::Create from the communicator
  // What else fixes the order of the training data, recorded in checkpoints and checked on
  // resume (with the global batch and the seed): the shuffle mode, and the store identity
  // {"path", "fingerprint", "records"} (null: not checked).
  std::string shuffle = "global";
  uint64_t block_parts = 0;  // shuffle "block": its canonical parts
  nlohmann::json store;
  int64_t log_every = 10;            // human progress line every N steps (0: never)
  // rank 0: one JSON object per line: "run" (parameters, shapes) first, then one per step and
  // one per epoch (with eval_ms when evaluated); each carries its wall-clock time_ms.
  std::ostream* jsonl = nullptr;
  std::ostream* progress = nullptr;  // rank 0: human progress lines
  // rank 0: MLPerf events: run_start/run_stop, epoch_start/epoch_stop and eval_start/eval_stop
  // (metadata epoch_num, 1-based), then eval_accuracy (vit-classify) or eval_loss.
  MlLogger* mllog = nullptr;

  // The configuration a checkpoint must match, and that it records.
  nlohmann::json ToJson() const;
};

struct StepRecord {
  int64_t step = 0;  // 1-based update count
  uint64_t epoch = 0;
  double loss = 0.0;  // averaged over ranks
  // The valid targets of the whole global batch the loss averaged over (vit-mae: valid pixels of
  // masked patches; regress/classify: valid y values).
  double loss_targets = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double stall_ms = 0.0, compute_ms = 0.0, allreduce_ms = 0.0, allreduce_exposed_ms = 0.0;
  double step_ms = 0.0;
  const char* allreduce_mode = "";  // the mode this step's gradients were averaged with
  double samples_per_s = 0.0;  // global
};

struct EpochRecord {
  uint64_t epoch = 0;
  double train_loss = 0.0;
  double eval_loss = -1.0;      // -1: no eval source
  double eval_accuracy = -1.0;  // classify only
  double samples_per_s = 0.0;
  double stall_fraction = 0.0;  // stall time / wall time of the epoch's steps
};

class Trainer {
 public:
  // Builds the model; `storage` is where checkpoints go. comm must outlive the trainer.
  static Result<std::unique_ptr<Trainer>> Create(const TrainerConfig& config, Communicator* comm,
                                                 std::shared_ptr<Storage> storage);

  // Fresh start: rank 0 initializes the weights from the seed and broadcasts them.
  Status InitializeWeights();
  // Restores weights, moments and step from a checkpoint directory (or, given the checkpoint
  // root, its latest checkpoint). Returns where the training source must continue. Every rank
  // reads the same files; then weights are broadcast from rank 0 so all ranks agree bitwise.
  Result<SourcePosition> Resume(const std::string& checkpoint);

  // Checks that the source's fields fit the model before any training (shape, channels, y).
  Status CheckSourceFits(const BatchSource& source) const;

  // Trains until the configured epochs (or max_steps) are done. Non-finite loss stops with
  // FailedPrecondition naming the step and the last good checkpoint.
  Status Run(BatchSource& train, BatchSource* eval);
  // One pass over the source without updates: mean loss and (classify) accuracy over ranks.
  Result<std::pair<double, double>> Evaluate(BatchSource& source);

  VitModel& model() { return *model_; }
  int64_t step() const { return step_; }
  const std::vector<StepRecord>& steps() const { return steps_; }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }
  const std::string& last_checkpoint() const { return last_checkpoint_; }
  // XXH3 of the weights (what the cross-rank check compares).
  uint64_t ParameterChecksum() const;
  Status CheckRanksAgree();

 private:
  Trainer(const TrainerConfig& config, Communicator* comm, std::shared_ptr<Storage> storage)
      : config_(config), comm_(comm), storage_(std::move(storage)) {}
  // Run's phases (trainer.cc): the plan of the run, one epoch of steps, one step, what follows a
  // step (records, progress, checksum, checkpoint), and the end of an epoch (evaluation, records,
  // checkpoint).
  struct RunPlan;
  struct EpochTotals;
  enum class EpochEnd { kSourceDone, kStepLimit, kInterrupted };
  Result<RunPlan> PlanRun(BatchSource& train, BatchSource* eval);
  Result<EpochEnd> TrainEpoch(BatchSource& train, const RunPlan& plan, EpochTotals* totals);
  Result<StepRecord> TrainStep(const TrainBatch& batch, const RunPlan& plan);
  Status AfterStep(const StepRecord& rec, BatchSource& train, const RunPlan& plan);
  Status FinishEpoch(uint64_t epoch, const EpochTotals& totals, BatchSource& train,
                     BatchSource* eval, const RunPlan& plan);
  // An MLLOG event on rank 0 (when configured); a failed write stops the run like other I/O.
  Status MlLog(MlEventType type, const char* key, Json value = nullptr,
               Json metadata = Json::object(), SourceLocation where = SourceLocation::current());
  Status SaveCheckpoint(const SourcePosition& position, uint64_t batches_per_epoch,
                        int64_t global_batch);
  // Writes one JSONL record (rank 0), stamped with its wall-clock time_ms.
  void Emit(nlohmann::json record);
  // The loss divisor for this step (BatchView::targets_per_rank): the valid targets of all
  // ranks' batches (vit-mae: valid pixels of masked patches) over the number of ranks, so that
  // the ranks' averaged gradients are those of the mean over the global batch. One scalar
  // allreduce; collective.
  Result<double> TargetsPerRank(const TrainBatch& batch, const BatchView& view);

  TrainerConfig config_;
  Communicator* comm_;
  std::shared_ptr<Storage> storage_;
  std::unique_ptr<VitModel> model_;
  std::unique_ptr<GradientSync> sync_;
  int64_t step_ = 0;
  std::string last_checkpoint_;
  std::vector<StepRecord> steps_;
  std::vector<EpochRecord> epochs_;
};

}  // namespace tilestage::trainer
