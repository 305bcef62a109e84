#include "trainer/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <span>

#include "tiling/checksum.h"
#include "tiling/sample.h"
#include "trainer/checkpoint.h"

namespace tilestage::trainer {

nlohmann::json TrainerConfig::ToJson() const {
  nlohmann::json data = {
      {"global_batch", batch_size * world_size}, {"seed", seed}, {"shuffle", shuffle}};
  if (block_parts > 0) data["block_parts"] = block_parts;
  if (!store.is_null()) data["store"] = store;
  return {{"model", model.ToJson()},
          {"optimizer", adamw.ToJson()},
          {"data", data},
          {"parallel", {{"world_size", world_size}, {"batch_per_rank", batch_size}}},
          {"epochs", epochs},
          {"max_steps", max_steps},
          {"allreduce", AllreduceModeName(allreduce)}};
}

Result<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config, Communicator* comm,
                                                 std::shared_ptr<Storage> storage) {
  std::unique_ptr<Trainer> t(new Trainer(config, comm, std::move(storage)));
  t->config_.world_size = comm->size();
  TS_ASSIGN_OR_RETURN(t->model_, VitModel::Create(config.model));
  t->sync_ = std::make_unique<GradientSync>(comm, &t->model_->params(), config.allreduce,
                                            config.bucket_floats);
  return t;
}

Status Trainer::InitializeWeights() {
  model_->InitParams(config_.seed);
  return comm_->Broadcast(std::span<float>(model_->params().params()), 0);
}

Result<SourcePosition> Trainer::Resume(const std::string& checkpoint) {
  std::string dir = checkpoint;
  TS_ASSIGN_OR_RETURN(bool has_latest, storage_->Exists(JoinPath(checkpoint, "latest.json")));
  if (has_latest) {
    TS_ASSIGN_OR_RETURN(dir, FindLatestCheckpoint(*storage_, checkpoint));
  }
  TS_ASSIGN_OR_RETURN(CheckpointState state,
                      ReadCheckpoint(*storage_, dir, config_.ToJson(), &model_->params()));
  ParamStore& p = model_->params();
  TS_RETURN_IF_ERROR(comm_->Broadcast(std::span<float>(p.params()), 0));
  TS_RETURN_IF_ERROR(comm_->Broadcast(std::span<float>(p.exp_avg()), 0));
  TS_RETURN_IF_ERROR(comm_->Broadcast(std::span<float>(p.exp_avg_sq()), 0));
  step_ = state.step;
  last_checkpoint_ = dir;
  return state.position;
}

Status Trainer::CheckSourceFits(const BatchSource& source) const {
  const SourceInfo& info = source.info();
  const ModelConfig& m = config_.model;
  const std::vector<int64_t> want = {m.in_channels, m.height, m.width};
  if (info.x_shape.size() != 3) {
    return InvalidArgument("data ", info.name, ": field x has shape ", FormatShape(info.x_shape),
                           ", the ViT needs channel-first tiles [C,H,W]");
  }
  if (info.x_shape[0] != m.in_channels) {
    return InvalidArgument("data ", info.name, ": field x has ", info.x_shape[0],
                           " channels, the model was built for ", m.in_channels, " (x ",
                           FormatShape(info.x_shape), " vs ", FormatShape(want), ")");
  }
  if (info.x_shape != want) {
    return InvalidArgument("data ", info.name, ": field x is ", FormatShape(info.x_shape),
                           ", the model was built for ", FormatShape(want));
  }
  if (m.objective != Objective::kMae) {
    if (info.y_shape.empty()) {
      return InvalidArgument("data ", info.name, " has no field y, which ",
                             ObjectiveName(m.objective), " needs as its ",
                             m.objective == Objective::kClassify ? "label" : "target");
    }
    if (ShapeElements(info.y_shape) != ShapeElements(m.y_shape) ||
        (m.objective == Objective::kRegress && info.y_shape != m.y_shape)) {
      return InvalidArgument("data ", info.name, ": field y is ", FormatShape(info.y_shape),
                             ", the model was built for ", FormatShape(m.y_shape));
    }
  }
  if (info.batches_per_epoch == 0) {
    return InvalidArgument("data ", info.name, ": fewer samples than one global batch of ",
                           info.batch_size * comm_->size());
  }
  return Status::Ok();
}

uint64_t Trainer::ParameterChecksum() const {
  const std::vector<float>& p = model_->params().params();
  return Hash64({reinterpret_cast<const uint8_t*>(p.data()), p.size() * sizeof(float)});
}

Status Trainer::CheckRanksAgree() {
  const uint64_t mine = ParameterChecksum();
  TS_ASSIGN_OR_RETURN(std::vector<uint64_t> all, comm_->AllgatherU64(mine));
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      return Internal("parameters diverged across ranks at step ", step_, ": rank 0 checksum ",
                      HashToHex(all[0]), ", rank ", r, " checksum ", HashToHex(all[r]),
                      " (non-deterministic reduction or a corrupted rank); stopping");
    }
  }
  return Status::Ok();
}

void Trainer::Emit(nlohmann::json record) {
  if (comm_->rank() == 0 && config_.jsonl != nullptr) {
    // Wall-clock time of the record (Unix ms), so that readers (bench e2e's MLLOG events) need
    // not infer it from when the line arrived.
    record["time_ms"] = MlLogger::NowMs();
    *config_.jsonl << record.dump() << "\n";
    config_.jsonl->flush();
  }
}

Status Trainer::SaveCheckpoint(const SourcePosition& position, uint64_t batches_per_epoch,
                               int64_t global_batch) {
  if (config_.checkpoint_dir.empty()) return Status::Ok();
  SourcePosition pos = position;
  if (pos.samples_consumed >= batches_per_epoch * uint64_t(global_batch)) {
    pos = {pos.epoch + 1, 0};  // an epoch boundary: continue with the next epoch
  }
  if (comm_->rank() == 0) {
    CheckpointState state{step_, pos, config_.seed, config_.ToJson()};
    auto dir = WriteCheckpoint(*storage_, config_.checkpoint_dir, model_->params(), state);
    if (!dir.ok()) return dir.status().WithContext("writing checkpoint");
    last_checkpoint_ = *dir;
  }
  // Every rank learns the name (same formula), and none runs ahead of a failed write.
  TS_RETURN_IF_ERROR(comm_->Barrier());
  if (comm_->rank() != 0) {
    char name[32];
    std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step_));
    last_checkpoint_ = JoinPath(config_.checkpoint_dir, name);
  }
  return Status::Ok();
}

Result<double> Trainer::TargetsPerRank(const TrainBatch& batch, const BatchView& view) {
  double valid = double(batch.y.size());
  if (config_.model.objective == Objective::kMae) {
    TS_ASSIGN_OR_RETURN(valid, model_->MaeTargets(view, config_.seed));
  } else if (!batch.y_valid.empty()) {
    valid = double(std::count(batch.y_valid.begin(), batch.y_valid.end(), uint8_t{1}));
  }
  TS_RETURN_IF_ERROR(comm_->AllreduceSum(std::span<double>(&valid, 1)));
  return valid / double(comm_->size());
}

Result<std::pair<double, double>> Trainer::Evaluate(BatchSource& source) {
  TrainBatch batch;
  double sums[3] = {0.0, 0.0, 0.0};  // loss * samples, correct, samples
  while (true) {
    TS_ASSIGN_OR_RETURN(bool got, source.Next(&batch));
    if (!got) break;
    // Epoch 0 for the masks: every evaluation sees the same masked patches.
    BatchView view{batch.size, batch.x, batch.y, batch.indices, 0, batch.y_valid};
    view.x_valid = batch.x_valid;
    TS_ASSIGN_OR_RETURN(LossResult r, model_->Forward(view, config_.seed));
    sums[0] += r.loss * double(batch.size);
    sums[1] += double(r.correct);
    sums[2] += double(batch.size);
  }
  TS_RETURN_IF_ERROR(comm_->AllreduceSum(std::span<double>(sums, 3)));
  if (sums[2] == 0) return std::pair<double, double>{-1.0, -1.0};
  const double accuracy =
      config_.model.objective == Objective::kClassify ? sums[1] / sums[2] : -1.0;
  return std::pair<double, double>{sums[0] / sums[2], accuracy};
}

struct Trainer::RunPlan {
  const SourceInfo* info = nullptr;  // the training source's
  int64_t total_steps = 0;
  // With max_steps below the epochs' total, training stops mid-epoch; otherwise the epochs end
  // it (so the last epoch still gets its evaluation and checkpoint).
  bool step_limited = false;
  int64_t x_len = 0;  // values of x per sample
};

struct Trainer::EpochTotals {
  double loss = 0.0, stall_ms = 0.0, wall_ms = 0.0;
  int64_t steps = 0, samples = 0;
};

Status Trainer::Run(BatchSource& train, BatchSource* eval) {
  TS_ASSIGN_OR_RETURN(const RunPlan plan, PlanRun(train, eval));
  TS_RETURN_IF_ERROR(MlLog(MlEventType::kIntervalStart, mlkey::kRunStart));
  uint64_t epoch = train.position().epoch;
  bool done = plan.step_limited && step_ >= plan.total_steps;
  while (!done && epoch < uint64_t(config_.epochs)) {
    TS_RETURN_IF_ERROR(
        MlLog(MlEventType::kIntervalStart, mlkey::kEpochStart, nullptr, {{"epoch_num", epoch + 1}}));
    EpochTotals totals;
    TS_ASSIGN_OR_RETURN(const EpochEnd end, TrainEpoch(train, plan, &totals));
    if (end == EpochEnd::kInterrupted) return Status::Ok();  // as if killed: nothing more
    if (end == EpochEnd::kStepLimit) break;
    TS_RETURN_IF_ERROR(FinishEpoch(epoch, totals, train, eval, plan));
    ++epoch;
  }
  if (config_.checksum_every > 0) TS_RETURN_IF_ERROR(CheckRanksAgree());
  return MlLog(MlEventType::kIntervalEnd, mlkey::kRunStop, nullptr, {{"status", "success"}});
}

Result<Trainer::RunPlan> Trainer::PlanRun(BatchSource& train, BatchSource* eval) {
  TS_RETURN_IF_ERROR(CheckSourceFits(train));
  if (eval != nullptr) TS_RETURN_IF_ERROR(CheckSourceFits(*eval));
  RunPlan plan;
  plan.info = &train.info();
  plan.total_steps = config_.epochs * int64_t(plan.info->batches_per_epoch);
  plan.step_limited = config_.max_steps > 0 && config_.max_steps < plan.total_steps;
  if (plan.step_limited) plan.total_steps = config_.max_steps;
  plan.x_len = ShapeElements(plan.info->x_shape);
  Emit({{"type", "run"},
        {"parameters", model_->params().total()},
        {"x_shape", plan.info->x_shape},
        {"world", comm_->size()},
        {"batch", plan.info->batch_size},
        {"global_batch", plan.info->global_batch},
        {"steps_per_epoch", plan.info->batches_per_epoch},
        {"epochs", config_.epochs}});
  return plan;
}

Result<Trainer::EpochEnd> Trainer::TrainEpoch(BatchSource& train, const RunPlan& plan,
                                              EpochTotals* totals) {
  const SourceInfo& info = *plan.info;
  TrainBatch batch;
  while (true) {
    if (plan.step_limited && step_ >= plan.total_steps) return EpochEnd::kStepLimit;
    if (config_.interrupt_after_steps >= 0 && step_ >= config_.interrupt_after_steps)
      return EpochEnd::kInterrupted;
    const double t0 = NowMs();
    TS_ASSIGN_OR_RETURN(bool got, train.Next(&batch));
    const double t1 = NowMs();
    if (!got) return EpochEnd::kSourceDone;
    if (batch.size != info.batch_size) {
      // Averaging the ranks' mean gradients weights every sample of the global batch alike
      // only when the parts are equal.
      return InvalidArgument("data ", info.name, ": batch ", batch.index_in_epoch, " of epoch ",
                             batch.epoch, " holds ", batch.size, " samples, not this rank's ",
                             info.batch_size, " of the global batch of ", info.global_batch);
    }
    if (int64_t(batch.x.size()) != batch.size * plan.x_len) {
      return InvalidArgument("data ", info.name, ": batch ", batch.index_in_epoch, " of epoch ",
                             batch.epoch, " holds ", batch.x.size(), " x values for ", batch.size,
                             " samples of ", FormatShape(info.x_shape));
    }
    TS_ASSIGN_OR_RETURN(StepRecord rec, TrainStep(batch, plan));
    const double t2 = NowMs();
    rec.stall_ms = t1 - t0;
    rec.step_ms = t2 - t0;
    rec.compute_ms = (t2 - t1) - rec.allreduce_ms;
    rec.samples_per_s = double(batch.size * comm_->size()) / ((t2 - t0) / 1e3);
    steps_.push_back(rec);
    totals->loss += rec.loss;
    totals->stall_ms += rec.stall_ms;
    totals->wall_ms += rec.step_ms;
    ++totals->steps;
    totals->samples += batch.size * comm_->size();
    TS_RETURN_IF_ERROR(AfterStep(rec, train, plan));
  }
}

Result<StepRecord> Trainer::TrainStep(const TrainBatch& batch, const RunPlan& plan) {
  ParamStore& params = model_->params();
  params.ZeroGrads();
  const bool was_chosen = !sync_->choice().empty();
  TS_RETURN_IF_ERROR(sync_->BeginStep());
  if (!was_chosen && !sync_->choice().empty() && comm_->rank() == 0 && config_.progress) {
    *config_.progress << sync_->choice() << "\n";
  }
  BatchView view{batch.size, batch.x, batch.y, batch.indices, batch.epoch, batch.y_valid};
  view.x_valid = batch.x_valid;
  TS_ASSIGN_OR_RETURN(view.targets_per_rank, TargetsPerRank(batch, view));
  TS_ASSIGN_OR_RETURN(LossResult result, model_->Forward(view, config_.seed));
  model_->Backward([this](int64_t offset) { sync_->OnGradsReady(offset); });
  TS_RETURN_IF_ERROR(sync_->Finish());
  double reduced[2] = {result.loss, std::isfinite(result.loss) ? 0.0 : 1.0};
  TS_RETURN_IF_ERROR(comm_->AllreduceSum(std::span<double>(reduced, 2)));
  const double loss = reduced[0] / comm_->size();
  if (reduced[1] > 0.0 || !std::isfinite(loss)) {
    return FailedPrecondition(
        "non-finite loss (", loss, ") at step ", step_ + 1, " (epoch ", batch.epoch, ", batch ",
        batch.index_in_epoch, "); stopping. Last good checkpoint: ",
        last_checkpoint_.empty() ? std::string("none written") : last_checkpoint_);
  }
  StepRecord rec;
  rec.grad_norm = ClipGradNorm(params, config_.adamw.clip_norm);
  rec.lr = ScheduledLearningRate(config_.adamw, step_, plan.total_steps);
  AdamWStep(params, config_.adamw, rec.lr, step_ + 1);
  ++step_;
  rec.step = step_;
  rec.epoch = batch.epoch;
  rec.loss = loss;
  rec.loss_targets = view.targets_per_rank * comm_->size();
  rec.allreduce_ms = sync_->comm_ms();
  rec.allreduce_exposed_ms = sync_->exposed_ms();
  rec.allreduce_mode = AllreduceModeName(sync_->active_mode());
  return rec;
}

Status Trainer::AfterStep(const StepRecord& rec, BatchSource& train, const RunPlan& plan) {
  Emit({{"type", "step"},
        {"step", rec.step},
        {"epoch", rec.epoch},
        {"loss", rec.loss},
        {"loss_targets", rec.loss_targets},
        {"lr", rec.lr},
        {"grad_norm", rec.grad_norm},
        {"samples_per_s", rec.samples_per_s},
        {"stall_ms", rec.stall_ms},
        {"compute_ms", rec.compute_ms},
        {"allreduce_ms", rec.allreduce_ms},
        {"allreduce_exposed_ms", rec.allreduce_exposed_ms},
        {"allreduce", rec.allreduce_mode},
        {"step_ms", rec.step_ms}});
  if (comm_->rank() == 0 && config_.progress != nullptr && config_.log_every > 0 &&
      (step_ % config_.log_every == 0 || step_ == plan.total_steps)) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "epoch %llu step %lld/%lld loss %.4f lr %.2e %.1f samples/s stall %.1f ms "
                  "allreduce %.1f ms (exposed %.1f)\n",
                  static_cast<unsigned long long>(rec.epoch + 1), static_cast<long long>(step_),
                  static_cast<long long>(plan.total_steps), rec.loss, rec.lr, rec.samples_per_s,
                  rec.stall_ms, rec.allreduce_ms, rec.allreduce_exposed_ms);
    *config_.progress << line << std::flush;
  }
  if (config_.checksum_every > 0 && step_ % config_.checksum_every == 0) {
    TS_RETURN_IF_ERROR(CheckRanksAgree());
  }
  if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0) {
    TS_RETURN_IF_ERROR(
        SaveCheckpoint(train.position(), plan.info->batches_per_epoch, plan.info->global_batch));
  }
  return Status::Ok();
}

Status Trainer::FinishEpoch(uint64_t epoch, const EpochTotals& totals, BatchSource& train,
                            BatchSource* eval, const RunPlan& plan) {
  const Json epoch_num = {{"epoch_num", epoch + 1}};
  EpochRecord er;
  er.epoch = epoch;
  er.train_loss = totals.steps > 0 ? totals.loss / double(totals.steps) : 0.0;
  er.samples_per_s = totals.wall_ms > 0 ? double(totals.samples) / (totals.wall_ms / 1e3) : 0.0;
  er.stall_fraction = totals.wall_ms > 0 ? totals.stall_ms / totals.wall_ms : 0.0;
  double eval_ms = 0.0;
  if (eval != nullptr) {
    TS_RETURN_IF_ERROR(MlLog(MlEventType::kIntervalStart, mlkey::kEvalStart, nullptr, epoch_num));
    const double eval_start = NowMs();
    TS_ASSIGN_OR_RETURN(auto ev, Evaluate(*eval));
    eval_ms = NowMs() - eval_start;
    er.eval_loss = ev.first;
    er.eval_accuracy = ev.second;
    TS_RETURN_IF_ERROR(MlLog(MlEventType::kIntervalEnd, mlkey::kEvalStop, nullptr, epoch_num));
    if (er.eval_accuracy >= 0) {
      TS_RETURN_IF_ERROR(
          MlLog(MlEventType::kPointInTime, mlkey::kEvalAccuracy, er.eval_accuracy, epoch_num));
    } else {
      TS_RETURN_IF_ERROR(MlLog(MlEventType::kPointInTime, "eval_loss", er.eval_loss, epoch_num));
    }
  }
  epochs_.push_back(er);
  nlohmann::json j = {{"type", "epoch"},
                      {"epoch", er.epoch},
                      {"step", step_},
                      {"train_loss", er.train_loss},
                      {"samples_per_s", er.samples_per_s},
                      {"stall_fraction", er.stall_fraction}};
  if (eval != nullptr) {
    j["eval_loss"] = er.eval_loss;
    j["eval_ms"] = eval_ms;
  }
  if (er.eval_accuracy >= 0) j["eval_accuracy"] = er.eval_accuracy;
  Emit(j);
  if (comm_->rank() == 0 && config_.progress != nullptr) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "epoch %llu done: train loss %.4f eval loss %s %.1f samples/s stall %.1f%%\n",
                  static_cast<unsigned long long>(epoch + 1), er.train_loss,
                  eval ? std::to_string(er.eval_loss).c_str() : "-", er.samples_per_s,
                  100.0 * er.stall_fraction);
    *config_.progress << line << std::flush;
  }
  TS_RETURN_IF_ERROR(
      SaveCheckpoint(train.position(), plan.info->batches_per_epoch, plan.info->global_batch));
  return MlLog(MlEventType::kIntervalEnd, mlkey::kEpochStop, nullptr, epoch_num);
}

Status Trainer::MlLog(MlEventType type, const char* key, Json value, Json metadata,
                      SourceLocation where) {
  if (comm_->rank() != 0 || config_.mllog == nullptr) return Status::Ok();
  TS_ASSIGN_OR_RETURN(MlEvent event, MakeMlEvent(type, key, std::move(value), MlLogger::NowMs(),
                                                 std::move(metadata), where));
  return config_.mllog->Log(event);
}

}  // namespace tilestage::trainer
