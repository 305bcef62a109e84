#include "tools/cli/train_options.h"

#include "tools/cli/command.h"

namespace tilestage::cli {

CLI::Option* AddTrainOptions(CLI::App* cmd, TrainArgs* all_args) {
  trainer::TrainJobOptions* args = &all_args->job;
  CLI::Option* store = cmd->add_option("--store", args->store, "Training store directory");
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
  cmd->add_option("--crop", all_args->crop,
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
  cmd->add_option("--allreduce", args->allreduce, "auto (tries both on steps 2-7, keeps the faster), overlap (buckets during backward) or blocking")
      ->capture_default_str();
  cmd->add_option("--bucket-mib", args->bucket_mib, "Gradient bucket size")->capture_default_str();
  cmd->add_option("--checksum-every", args->checksum_every,
                  "Cross-rank parameter checksum every N steps (0: off)")
      ->capture_default_str();
  cmd->add_option("--json", args->json, "Append JSONL step/epoch records to FILE ('-': stdout)");
  cmd->add_option("--mllog", args->mllog,
                  "Append MLPerf :::MLLOG run, epoch and eval events to FILE ('-': stdout)");
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
  cmd->add_option("--mem-budget", all_args->mem_budget, "Loader memory budget")
      ->capture_default_str();
  cmd->add_flag("--augment", args->augment, "Random flips/rot90 of training tiles");
  return store;
}

Status FinishTrainArgs(TrainArgs* args) {
  TS_ASSIGN_OR_RETURN(args->job.mem_budget_bytes, ParseByteSize(args->mem_budget));
  if (!args->crop.empty()) {
    auto crop = ParseShape(args->crop);
    if (!crop.ok() || crop->size() != 2)
      return InvalidArgument("--crop '", args->crop, "': expected H,W (e.g. 32,64)");
    args->job.crop_h = (*crop)[0];
    args->job.crop_w = (*crop)[1];
  }
  return Status::Ok();
}

Result<trainer::TrainJobOptions> ParseTrainArgs(const std::string& flag, const std::string& text) {
  CLI::App app{"training options"};
  TrainArgs args;
  AddTrainOptions(&app, &args);
  try {
    app.parse(text, /*program_name_included=*/false);
  } catch (const CLI::ParseError& e) {
    return InvalidArgument(flag, " '", text, "': ", e.what());
  }
  TS_RETURN_IF_ERROR(FinishTrainArgs(&args));
  return args.job;
}

}  // namespace tilestage::cli
