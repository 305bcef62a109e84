#include "trainer/train_job.h"

#include <algorithm>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "loaders/stage_plan.h"
#include "tiling/manifest.h"
#include "tiling/mllog.h"
#include "trainer/gemm.h"
#include "trainer/loader_source.h"
#include "trainer/trainer.h"

namespace tilestage::trainer {
namespace {

// Opens the job's sources on the staging loader: the same loader options on every rank but its
// own share (rank of world) of each global batch.
class SourceOpener {
 public:
  SourceOpener(const TrainJobOptions& args, int rank, int world, int nodes, int64_t local_batch)
      : args_(args), rank_(rank), world_(world), nodes_(nodes), local_batch_(local_batch) {}

  // Records [begin, end) of the training store, shuffled, from `start`.
  Result<std::unique_ptr<LoaderBatchSource>> Train(uint64_t begin, uint64_t end,
                                                   SourcePosition start) const {
    return Open(args_.store, begin, end, true, start);
  }
  // Records [begin, end) of `store`, in order.
  Result<std::unique_ptr<LoaderBatchSource>> Eval(const std::string& store, uint64_t begin,
                                                  uint64_t end) const {
    return Open(store, begin, end, false, {});
  }

 private:
  Result<std::unique_ptr<LoaderBatchSource>> Open(const std::string& store, uint64_t begin,
                                                  uint64_t end, bool train,
                                                  SourcePosition start) const {
    LoaderOptions o;
    o.nodes = nodes_;
    o.batch_size = local_batch_;
    o.seed = args_.seed;
    if (train) {
      TS_ASSIGN_OR_RETURN(o.shuffle, ParseShuffleMode(args_.shuffle));
    } else {
      o.shuffle = ShuffleMode::kNone;
    }
    o.block_parts = args_.block_parts;
    o.rank = rank_;
    o.world_size = world_;
    o.prefetch = args_.prefetch;
    o.mem_budget_bytes = args_.mem_budget_bytes;
    o.augment = train && args_.augment;
    o.crop_h = args_.crop_h;
    o.crop_w = args_.crop_w;
    o.range_begin = begin;
    o.range_end = end;
    o.drop_last = train;  // equal batches on every rank and step
    // The MAE loss reconstructs x: pixels without data must not be targets.
    o.validity_mask = args_.model == ObjectiveName(Objective::kMae);
    o.start = {start.epoch, start.samples_consumed};
    auto source = LoaderBatchSource::Open(LocalStorage(), store, o);
    if (!source.ok()) return source.status().WithContext(StrCat("opening store ", store));
    return source;
  }

  const TrainJobOptions& args_;
  int rank_, world_, nodes_;
  int64_t local_batch_;
};

Status CheckOptions(const TrainJobOptions& args, int world) {
  if (args.batch <= 0 || args.batch % world != 0) {
    return InvalidArgument("--batch ", args.batch, " (the global batch) must be a positive ",
                           "multiple of the ", world, " ranks");
  }
  if (!args.eval_store.empty() && args.eval_fraction > 0) {
    return InvalidArgument("--eval-store and --eval-fraction are exclusive");
  }
  if (args.eval_fraction < 0 || args.eval_fraction >= 1) {
    return InvalidArgument("--eval-fraction ", args.eval_fraction, " must be in [0, 1)");
  }
  if (args.resume && args.checkpoint_dir.empty()) {
    return InvalidArgument("--resume needs --checkpoint-dir");
  }
  return Status::Ok();
}

// Everything the options say about the model, the optimizer and the run; the model's geometry
// comes from the store later (FitModelToStore).
Result<TrainerConfig> MakeConfig(const TrainJobOptions& args, const Manifest& manifest,
                                 int64_t local_batch, uint64_t train_records) {
  TrainerConfig config;
  TS_ASSIGN_OR_RETURN(config.model.objective, ParseObjective(args.model));
  TS_RETURN_IF_ERROR(ApplyPreset(args.preset, &config.model));
  if (args.dim > 0) config.model.dim = args.dim;
  if (args.depth > 0) config.model.depth = args.depth;
  if (args.heads > 0) config.model.heads = args.heads;
  config.model.patch = args.patch;
  config.model.mlp_ratio = args.mlp_ratio;
  config.model.learned_pos = args.learned_pos;
  config.model.mask_ratio = args.mask_ratio;
  config.model.decoder_dim = args.decoder_dim;
  config.model.decoder_depth = args.decoder_depth;
  config.model.decoder_heads = args.decoder_heads;
  config.adamw.lr = args.lr;
  config.adamw.min_lr = args.min_lr;
  config.adamw.weight_decay = args.weight_decay;
  config.adamw.clip_norm = args.clip_norm;
  config.adamw.warmup_steps = args.warmup_steps;
  config.epochs = args.epochs;
  config.max_steps = args.max_steps;
  config.seed = args.seed;
  config.batch_size = local_batch;
  config.shuffle = args.shuffle;
  config.block_parts = args.shuffle == "block" ? args.block_parts : 0;
  config.store = {{"path", args.store},
                  {"fingerprint", StoreFingerprint(manifest)},
                  {"records", train_records}};
  TS_ASSIGN_OR_RETURN(config.allreduce, ParseAllreduceMode(args.allreduce));
  config.bucket_floats = std::max<int64_t>(1, int64_t(args.bucket_mib * (1 << 20) / 4));
  config.checksum_every = args.checksum_every;
  config.checkpoint_dir = args.checkpoint_dir;
  config.checkpoint_every = args.checkpoint_every;
  config.log_every = args.log_every;
  return config;
}

// The model's input geometry and targets come from the store.
Status FitModelToStore(const TrainJobOptions& args, const SourceInfo& info, ModelConfig* model) {
  if (info.x_shape.size() != 3) {
    return InvalidArgument("store ", args.store, ": field x has ", info.x_shape.size(),
                           " dimensions, the ViT needs [C,H,W] tiles");
  }
  model->in_channels = info.x_shape[0];
  model->height = info.x_shape[1];
  model->width = info.x_shape[2];
  model->y_shape = info.y_shape;
  if (model->objective == Objective::kClassify) {
    model->classes = args.classes > 0 ? args.classes : info.classes;
    if (info.y_shape.empty()) {
      return InvalidArgument("store ", args.store, " has no field y, which vit-classify needs ",
                             "as its label");
    }
    if (model->classes < 2) {
      return InvalidArgument("vit-classify: store ", args.store, " records no class count; ",
                             "pass --classes");
    }
  } else if (model->objective == Objective::kRegress && info.y_shape.empty()) {
    return InvalidArgument("store ", args.store, " has no field y, which vit-regress needs as ",
                           "its target");
  }
  return Status::Ok();
}

// Rank 0's logs: JSONL records and MLLOG events ("-": `out`), and the progress lines.
struct Outputs {
  std::ofstream jsonl_file;
  std::unique_ptr<MlLogger> mllog;
};
Status OpenOutputs(const TrainJobOptions& args, std::ostream& out, std::ostream& progress,
                   Outputs* outputs, TrainerConfig* config) {
  if (!args.json.empty()) {
    if (args.json == "-") {
      config->jsonl = &out;
    } else {
      outputs->jsonl_file.open(args.json, std::ios::app);
      if (!outputs->jsonl_file) return IOError("cannot open --json ", args.json, " for writing");
      config->jsonl = &outputs->jsonl_file;
    }
  }
  if (args.mllog == "-") {
    outputs->mllog = std::make_unique<MlLogger>(&out);
  } else if (!args.mllog.empty()) {
    TS_ASSIGN_OR_RETURN(outputs->mllog, MlLogger::OpenFile(args.mllog));
  }
  config->mllog = outputs->mllog.get();
  config->progress = &progress;
  return Status::Ok();
}

void PrintDone(const Trainer& trainer, std::ostream& progress) {
  if (trainer.epochs().empty()) return;
  const EpochRecord& e = trainer.epochs().back();
  progress << "done: " << trainer.step() << " steps, last train loss " << e.train_loss;
  if (e.eval_loss >= 0) progress << ", eval loss " << e.eval_loss;
  if (!trainer.last_checkpoint().empty()) progress << ", checkpoint " << trainer.last_checkpoint();
  progress << "\n";
}

}  // namespace

Status RunTrainJob(const TrainJobOptions& args, Communicator& comm, std::ostream& out,
                   std::ostream& progress) {
  const int rank = comm.rank(), world = comm.size();
  TS_RETURN_IF_ERROR(CheckOptions(args, world));
  const int64_t local_batch = args.batch / world;
  TS_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(*LocalStorage(), args.store));
  const uint64_t records = manifest.TotalRecords();
  const uint64_t split =
      args.eval_fraction > 0 ? uint64_t(double(records) * (1.0 - args.eval_fraction)) : records;
  TS_ASSIGN_OR_RETURN(TrainerConfig config, MakeConfig(args, manifest, local_batch, split));
  TS_ASSIGN_OR_RETURN(const int nodes, CountNodes(comm));
  const SourceOpener sources(args, rank, world, nodes, local_batch);

  TS_ASSIGN_OR_RETURN(auto train, sources.Train(0, split, {}));
  // A copy: resuming below replaces `train`.
  const SourceInfo info = train->info();
  TS_RETURN_IF_ERROR(FitModelToStore(args, info, &config.model));
  Outputs outputs;
  if (rank == 0) TS_RETURN_IF_ERROR(OpenOutputs(args, out, progress, &outputs, &config));

  TS_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, &comm, LocalStorage()));
  if (args.resume) {
    TS_ASSIGN_OR_RETURN(SourcePosition position, trainer->Resume(args.checkpoint_dir));
    TS_ASSIGN_OR_RETURN(train, sources.Train(0, split, position));
    if (rank == 0) {
      progress << "resumed from " << trainer->last_checkpoint() << " at step " << trainer->step()
               << " (epoch " << position.epoch + 1 << ", sample " << position.samples_consumed
               << " of the epoch over all ranks)\n";
    }
  } else {
    TS_RETURN_IF_ERROR(trainer->InitializeWeights());
  }
  std::unique_ptr<LoaderBatchSource> eval;
  if (!args.eval_store.empty()) {
    TS_ASSIGN_OR_RETURN(eval, sources.Eval(args.eval_store, 0, UINT64_MAX));
  } else if (split < records) {
    TS_ASSIGN_OR_RETURN(eval, sources.Eval(args.store, split, records));
  }
  if (rank == 0) {
    progress << "train " << ObjectiveName(config.model.objective) << ": "
             << trainer->model().params().total() << " parameters, x "
             << nlohmann::json(info.x_shape).dump() << ", " << world << " rank(s) x batch "
             << local_batch << ", " << info.batches_per_epoch << " steps/epoch, gemm "
             << GemmKernelName() << "\n";
  }
  TS_RETURN_IF_ERROR(trainer->Run(*train, eval.get()));
  if (rank == 0) PrintDone(*trainer, progress);
  return Status::Ok();
}

}  // namespace tilestage::trainer
