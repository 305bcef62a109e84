// tilestage synth: a deterministic synthetic store at any scale, for benchmarks and tests.
#include <tbb/parallel_for.h>

#include <iostream>

#include "tiling/store.h"
#include "tiling/synth.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct SynthArgs {
  std::string out;
  uint64_t samples = 1024;
  std::string shape = "3,64,64";
  std::string dtype = "f32";
  std::string codec = "zstd";
  std::string shard_size = "256MiB";
  uint64_t seed = 0;
  int classes = 0;
  uint32_t alignment = kDefaultAlignment;
  bool overwrite = false;
};

Status RunSynth(const SynthArgs& args) {
  SynthSpec spec;
  TS_ASSIGN_OR_RETURN(spec.shape, ParseShape(args.shape));
  TS_ASSIGN_OR_RETURN(spec.dtype, ParseDType(args.dtype));
  spec.seed = args.seed;
  spec.classes = args.classes;
  StoreWriterOptions options;
  TS_ASSIGN_OR_RETURN(options.codec, ParseCodec(args.codec));
  TS_ASSIGN_OR_RETURN(options.shard_target_bytes, ParseByteSize(args.shard_size));
  options.alignment = args.alignment;
  const std::shared_ptr<Storage> storage = LocalStorage();
  TS_ASSIGN_OR_RETURN(const std::string write_dir,
                      PrepareStoreOutput(*storage, args.out, args.overwrite));
  TS_ASSIGN_OR_RETURN(auto writer, StoreWriter::Create(storage, write_dir, options));

  std::vector<ChannelStats> stats;
  constexpr uint64_t kBatch = 256;
  std::vector<Result<EncodedRecord>> encoded;
  std::vector<std::vector<ChannelStats>> batch_stats;
  for (uint64_t first = 0; first < args.samples; first += kBatch) {
    const uint64_t n = std::min(kBatch, args.samples - first);
    encoded.assign(n, Status(StatusCode::kInternal, "not encoded"));
    batch_stats.assign(n, {});
    tbb::parallel_for(uint64_t{0}, n, [&](uint64_t i) {
      Sample sample = MakeSynthSample(spec, first + i);
      batch_stats[i] = ComputeChannelStats(sample.fields[0].array);
      encoded[i] = EncodeRecord(sample, options.codec);
    });
    // Appending and merging in index order keeps shards and statistics identical across runs.
    for (uint64_t i = 0; i < n; ++i) {
      if (!encoded[i].ok()) return encoded[i].status();
      TS_RETURN_IF_ERROR(writer->AppendEncoded(*encoded[i]));
      MergeChannelStats(stats, batch_stats[i]);
    }
  }
  Manifest manifest;
  manifest.kind = "synthetic";
  manifest.codec = options.codec;
  TS_ASSIGN_OR_RETURN(manifest.shards, writer->Close());
  FieldSchema x{"x", spec.dtype, spec.shape, {}, {}, stats};
  for (size_t c = 0; c < stats.size(); ++c) x.channel_names.push_back("c" + std::to_string(c));
  manifest.fields.push_back(x);
  if (spec.classes > 0) manifest.fields.push_back({"y", DType::kI32, {1}, {"label"}, {}, {}});
  manifest.provenance = MakeProvenance(CommandLine());
  manifest.attrs = {{"synthetic", {{"seed", spec.seed}, {"classes", spec.classes}}}};
  TS_RETURN_IF_ERROR(WriteManifest(*storage, write_dir, manifest));
  if (write_dir != args.out) TS_RETURN_IF_ERROR(PublishStore(*storage, write_dir, args.out));
  std::cout << "wrote " << manifest.TotalRecords() << " samples in " << manifest.shards.size()
            << " shards (" << manifest.TotalBytes() << " bytes) to " << args.out << "\n";
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* cmd = root.add_subcommand(
      "synth", "Write a deterministic synthetic tile store (smooth fields plus noise)");
  cmd->add_option("--out", args->out, "Store directory to write")->required();
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace a store at --out (the old one stays complete until the new one is)");
  cmd->add_option("--samples", args->samples, "Number of samples")->capture_default_str();
  cmd->add_option("--shape", args->shape, "Sample shape C,H,W")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "u8 i8 u16 i16 u32 i32 f32 f64")->capture_default_str();
  cmd->add_option("--codec", args->codec, "none, lz4, zstd[:LEVEL], each optionally +shuffle")
      ->capture_default_str();
  cmd->add_option("--shard-size", args->shard_size, "Target shard size (e.g. 64MiB)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed: same seed, same store")->capture_default_str();
  cmd->add_option("--classes", args->classes, "Add an i32 label field y with this many classes");
  cmd->add_option("--alignment", args->alignment, "Record alignment in bytes (power of two)")
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = Report(RunSynth(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
