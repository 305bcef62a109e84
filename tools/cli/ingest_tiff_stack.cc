// tilestage ingest tiff-stack: multi-page TIFF detector stacks (one frame per page).
#include "ingest/modules.h"
#include "tools/cli/ingest_common.h"

namespace tilestage::cli {
namespace {

struct TiffStackArgs {
  IngestArgs ingest;
  std::vector<std::string> files;
  std::string crop;
  int64_t bin = 1;
  bool log1p = false;
  bool sqrt = false;
  std::optional<double> clip_min;
};

Result<std::unique_ptr<ingest::Source>> MakeSource(const TiffStackArgs& args) {
  ingest::TiffStackSourceOptions options;
  options.files = args.files;
  auto transform =
      ingest::FrameTransform::Parse(args.crop, args.bin, args.log1p, args.sqrt, args.clip_min);
  TS_ASSIGN_OR_RETURN(options.transform, std::move(transform));
  TS_ASSIGN_OR_RETURN(const std::string dir, ingest::ExecutableDir());
  TS_ASSIGN_OR_RETURN(const ingest::FormatsModule* formats, ingest::LoadFormatsModule(dir));
  return formats->open_tiff_stack(options);
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "ingest", "Turn source files into a tile store");
  auto args = std::make_shared<TiffStackArgs>();
  CLI::App* cmd = group->add_subcommand(
      "tiff-stack", "Multi-page TIFF detector stacks (u8 u16 u32 f32; strips or tiles)");
  AddIngestOptions(cmd, &args->ingest, "full");
  cmd->add_option("--crop", args->crop, "Crop H,W (centred) or Y0,X0,H,W (a box)");
  cmd->add_option("--bin", args->bin, "Sum K x K pixel blocks")->capture_default_str();
  cmd->add_flag("--log1p", args->log1p, "log(1 + x) after crop/bin/clip");
  cmd->add_flag("--sqrt", args->sqrt, "sqrt(x) after crop/bin/clip");
  cmd->add_option("--clip-min", args->clip_min, "Raise values below V to V (before log1p/sqrt)");
  cmd->add_option("files", args->files, "Multi-page TIFF files")->required();
  cmd->callback([args, exit_code] {
    *exit_code = RunIngestCommand(args->ingest, "tiff-stack", args->files,
                                  [&]() { return MakeSource(*args); });
  });
});

}  // namespace
}  // namespace tilestage::cli
