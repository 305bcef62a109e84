// tilestage train: data-parallel ViT training on a tile store, fed by the staging loader.
//
//   mpirun -np N tilestage train --store DIR --model vit-mae|vit-regress|vit-classify
//       [--eval-store DIR | --eval-fraction F] [--preset tiny|small --dim --depth --heads --patch
//       --mlp-ratio] [--epochs --batch --lr --seed --checkpoint-dir --resume
//       --allreduce overlap|blocking --json FILE ...]
//
// --batch is the global batch (split evenly across ranks), so a run gives the same updates
// whatever the rank count. Outside mpirun it runs as one rank.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#include <tbb/global_control.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "loaders/mpi_env.h"
#include "loaders/stage_plan.h"
#include "tiling/manifest.h"
#include "tools/cli/command.h"
#include "trainer/gemm.h"
#include "trainer/loader_source.h"
#include "trainer/trainer.h"

namespace tilestage::cli {
namespace {

using namespace tilestage::trainer;

struct TrainArgs {
  std::string store, eval_store, model = "vit-mae", preset = "tiny";
  double eval_fraction = 0.0;
  int64_t dim = 0, depth = 0, heads = 0, patch = 8;
  double mlp_ratio = 4.0;
  bool learned_pos = false;
  double mask_ratio = 0.75;
  int64_t decoder_dim = 128, decoder_depth = 1, decoder_heads = 4;
  int64_t classes = 0;
  int64_t epochs = 1, batch = 32, max_steps = -1;
  double lr = 1e-3, min_lr = 1e-5, weight_decay = 0.05, clip_norm = 1.0;
  int64_t warmup_steps = 0;
  uint64_t seed = 0;
  std::string checkpoint_dir;
  int64_t checkpoint_every = 0;
  bool resume = false;
  std::string allreduce = "overlap";
  double bucket_mib = 4.0;
  int64_t checksum_every = 50;
  std::string json;
  int64_t log_every = 10;
  int threads = 0;
  std::string shuffle = "global";
  uint64_t block_parts = 64;
  int prefetch = 4;
  std::string mem_budget = "1GiB";
  bool augment = false;
  std::string crop;  // "H,W"; empty: whole tiles
};

Result<std::unique_ptr<LoaderBatchSource>> OpenSource(const std::string& store, uint64_t begin,
                                                      uint64_t end, int64_t batch, bool train,
                                                      const TrainArgs& args, int rank, int world,
                                                      SourcePosition start, int nodes) {
  LoaderOptions o;
  o.nodes = nodes;
  o.batch_size = batch;
  o.seed = args.seed;
  if (train) {
    TS_ASSIGN_OR_RETURN(o.shuffle, ParseShuffleMode(args.shuffle));
  } else {
    o.shuffle = ShuffleMode::kNone;
  }
  o.block_parts = args.block_parts;
  o.rank = rank;
  o.world_size = world;
  o.prefetch = args.prefetch;
  TS_ASSIGN_OR_RETURN(o.mem_budget_bytes, ParseByteSize(args.mem_budget));
  o.augment = train && args.augment;
  if (!args.crop.empty()) {
    auto crop = ParseShape(args.crop);
    if (!crop.ok() || crop->size() != 2)
      return InvalidArgument("--crop '", args.crop, "': expected H,W (e.g. 32,64)");
    o.crop_h = (*crop)[0];
    o.crop_w = (*crop)[1];
  }
  o.range_begin = begin;
  o.range_end = end;
  o.drop_last = train;  // equal batches on every rank and step
  o.start = {start.epoch, start.samples_consumed};
  auto source = LoaderBatchSource::Open(LocalStorage(), store, o);
  if (!source.ok()) return source.status().WithContext(StrCat("opening store ", store));
  return source;
}

Status RunTrain(const TrainArgs& args, Communicator& comm) {
  const int rank = comm.rank(), world = comm.size();
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
  const int64_t local_batch = args.batch / world;
  TS_ASSIGN_OR_RETURN(Manifest manifest, ReadManifest(*LocalStorage(), args.store));
  const uint64_t records = manifest.TotalRecords();
  const uint64_t split =
      args.eval_fraction > 0 ? uint64_t(double(records) * (1.0 - args.eval_fraction)) : records;

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
                  {"records", split}};
  const int nodes = CountNodes(MPI_COMM_WORLD);
  TS_ASSIGN_OR_RETURN(config.allreduce, ParseAllreduceMode(args.allreduce));
  config.bucket_floats = std::max<int64_t>(1, int64_t(args.bucket_mib * (1 << 20) / 4));
  config.checksum_every = args.checksum_every;
  config.checkpoint_dir = args.checkpoint_dir;
  config.checkpoint_every = args.checkpoint_every;
  config.log_every = args.log_every;

  // The model's input geometry and targets come from the store.
  TS_ASSIGN_OR_RETURN(
      auto train, OpenSource(args.store, 0, split, local_batch, true, args, rank, world, {}, nodes));
  // A copy: resuming below replaces `train`.
  const SourceInfo info = train->info();
  if (info.x_shape.size() != 3) {
    return InvalidArgument("store ", args.store, ": field x has ", info.x_shape.size(),
                           " dimensions, the ViT needs [C,H,W] tiles");
  }
  config.model.in_channels = info.x_shape[0];
  config.model.height = info.x_shape[1];
  config.model.width = info.x_shape[2];
  config.model.y_shape = info.y_shape;
  if (config.model.objective == Objective::kClassify) {
    config.model.classes = args.classes > 0 ? args.classes : info.classes;
    if (info.y_shape.empty()) {
      return InvalidArgument("store ", args.store, " has no field y, which vit-classify needs ",
                             "as its label");
    }
    if (config.model.classes < 2) {
      return InvalidArgument("vit-classify: store ", args.store, " records no class count; ",
                             "pass --classes");
    }
  } else if (config.model.objective == Objective::kRegress && info.y_shape.empty()) {
    return InvalidArgument("store ", args.store, " has no field y, which vit-regress needs as ",
                           "its target");
  }

  std::ofstream jsonl_file;
  if (rank == 0 && !args.json.empty()) {
    if (args.json == "-") {
      config.jsonl = &std::cout;
    } else {
      jsonl_file.open(args.json, std::ios::app);
      if (!jsonl_file) return IOError("cannot open --json ", args.json, " for writing");
      config.jsonl = &jsonl_file;
    }
  }
  if (rank == 0) config.progress = &std::cerr;

  TS_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, &comm, LocalStorage()));
  if (args.resume) {
    TS_ASSIGN_OR_RETURN(SourcePosition position, trainer->Resume(args.checkpoint_dir));
    TS_ASSIGN_OR_RETURN(
        train,
        OpenSource(args.store, 0, split, local_batch, true, args, rank, world, position, nodes));
    if (rank == 0) {
      std::cerr << "resumed from " << trainer->last_checkpoint() << " at step " << trainer->step()
                << " (epoch " << position.epoch + 1 << ", sample " << position.samples_consumed
                << " of the epoch over all ranks)\n";
    }
  } else {
    TS_RETURN_IF_ERROR(trainer->InitializeWeights());
  }
  std::unique_ptr<LoaderBatchSource> eval;
  if (!args.eval_store.empty()) {
    TS_ASSIGN_OR_RETURN(eval, OpenSource(args.eval_store, 0, UINT64_MAX, local_batch, false, args,
                                         rank, world, {}, nodes));
  } else if (split < records) {
    TS_ASSIGN_OR_RETURN(
        eval,
        OpenSource(args.store, split, records, local_batch, false, args, rank, world, {}, nodes));
  }
  if (rank == 0) {
    std::cerr << "train " << ObjectiveName(config.model.objective) << ": "
              << trainer->model().params().total() << " parameters, x "
              << nlohmann::json(info.x_shape).dump() << ", " << world << " rank(s) x batch "
              << local_batch << ", " << info.batches_per_epoch << " steps/epoch, gemm "
              << GemmKernelName() << "\n";
  }
  Status status = trainer->Run(*train, eval.get());
  if (!status.ok()) return status;
  if (rank == 0 && !trainer->epochs().empty()) {
    const EpochRecord& e = trainer->epochs().back();
    std::cerr << "done: " << trainer->step() << " steps, last train loss " << e.train_loss;
    if (e.eval_loss >= 0) std::cerr << ", eval loss " << e.eval_loss;
    if (!trainer->last_checkpoint().empty())
      std::cerr << ", checkpoint " << trainer->last_checkpoint();
    std::cerr << "\n";
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = root.add_subcommand(
      "train",
      "Train a ViT (MAE / regression / classification) on a tile store, data parallel "
      "under mpirun");
  cmd->add_option("--store", args->store, "Training store directory")->required();
  cmd->add_option("--model", args->model, "vit-mae, vit-regress or vit-classify")->required();
  cmd->add_option("--eval-store", args->eval_store, "Held-out store evaluated each epoch");
  cmd->add_option("--eval-fraction", args->eval_fraction,
                  "Hold out the last fraction of the store's records for evaluation");
  cmd->add_option("--preset", args->preset, "tiny (192/12/3) or small (384/12/6)")
      ->capture_default_str();
  cmd->add_option("--dim", args->dim, "Embedding width (overrides the preset)");
  cmd->add_option("--depth", args->depth, "Transformer blocks (overrides the preset)");
  cmd->add_option("--heads", args->heads, "Attention heads (overrides the preset)");
  cmd->add_option("--patch", args->patch, "Patch size in pixels")->capture_default_str();
  cmd->add_option("--crop", args->crop,
                  "Train on random H,W crops of each tile (e.g. to fit the patch size)");
  cmd->add_option("--mlp-ratio", args->mlp_ratio, "MLP hidden width / dim")->capture_default_str();
  cmd->add_flag("--learned-pos", args->learned_pos, "Learned position embedding (else sin-cos)");
  cmd->add_option("--mask-ratio", args->mask_ratio, "vit-mae: fraction of patches masked")
      ->capture_default_str();
  cmd->add_option("--decoder-dim", args->decoder_dim, "vit-mae decoder width")
      ->capture_default_str();
  cmd->add_option("--decoder-depth", args->decoder_depth, "vit-mae decoder blocks")
      ->capture_default_str();
  cmd->add_option("--decoder-heads", args->decoder_heads, "vit-mae decoder heads")
      ->capture_default_str();
  cmd->add_option("--classes", args->classes, "vit-classify: class count (default: manifest)");
  cmd->add_option("--epochs", args->epochs, "Epochs")->capture_default_str();
  cmd->add_option("--batch", args->batch,
                  "Global batch: the samples of one step over all ranks; each of N ranks takes "
                  "batch/N (N must divide it). The same --batch gives the same steps at any N, "
                  "and --resume may continue on another N")
      ->capture_default_str();
  cmd->add_option("--max-steps", args->max_steps, "Stop after this many steps");
  cmd->add_option("--lr", args->lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr", args->min_lr, "Final learning rate of the cosine")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", args->warmup_steps, "Linear warm-up steps")
      ->capture_default_str();
  cmd->add_option("--weight-decay", args->weight_decay, "AdamW decay (weights only)")
      ->capture_default_str();
  cmd->add_option("--clip-norm", args->clip_norm, "Global gradient-norm clip (0: off)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of init, masks and shuffles")->capture_default_str();
  cmd->add_option("--checkpoint-dir", args->checkpoint_dir, "Where checkpoints go");
  cmd->add_option("--checkpoint-every", args->checkpoint_every,
                  "Checkpoint every N steps (always at epoch ends)");
  cmd->add_flag("--resume", args->resume,
                "Continue from the latest checkpoint in --checkpoint-dir");
  cmd->add_option("--allreduce", args->allreduce, "overlap (buckets during backward) or blocking")
      ->capture_default_str();
  cmd->add_option("--bucket-mib", args->bucket_mib, "Gradient bucket size")->capture_default_str();
  cmd->add_option("--checksum-every", args->checksum_every,
                  "Cross-rank parameter checksum every N steps (0: off)")
      ->capture_default_str();
  cmd->add_option("--json", args->json, "Append JSONL step/epoch records to FILE ('-': stdout)");
  cmd->add_option("--log-every", args->log_every, "Progress line every N steps")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0: all cores)");
  cmd->add_option("--shuffle", args->shuffle, "none, global or block")->capture_default_str();
  cmd->add_option("--block-parts", args->block_parts,
                  "Canonical parts for --shuffle block: a rank reads max(1, parts/ranks) parts "
                  "at once (see README)")
      ->capture_default_str();
  cmd->add_option("--prefetch", args->prefetch, "Batches the loader prepares ahead")
      ->capture_default_str();
  cmd->add_option("--mem-budget", args->mem_budget, "Loader memory budget")->capture_default_str();
  cmd->add_flag("--augment", args->augment, "Random flips/rot90 of training tiles");
  cmd->callback([args, exit_code] {
    const bool mpi_started_here = InitMpiIfNeeded();
    std::unique_ptr<tbb::global_control> threads;
    if (args->threads > 0) {
      threads = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      args->threads);
    }
    Status status;
    int rank = 0, world = 1;
    {
      auto comm = NewMpiCommunicator();
      if (!comm.ok()) {
        status = comm.status();
      } else {
        rank = (*comm)->rank();
        world = (*comm)->size();
        status = RunTrain(*args, **comm);
        if (!status.ok() && world > 1) {
          // Other ranks may be blocked in a collective: end the whole job with the message.
          std::cerr << "tilestage train (rank " << rank << "): " << status.ToString() << "\n";
          (*comm)->Abort(2);
        }
      }
    }
    *exit_code = (rank == 0 || !status.ok()) ? Report(status) : 0;
    if (mpi_started_here) MPI_Finalize();
  });
});

}  // namespace
}  // namespace tilestage::cli
