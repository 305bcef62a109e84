// tilestage ingest hdf5: diffraction frames (NeXus/NXmx, CXI, any dataset) into a tile store.
#include <malloc.h>

#include "ingest/modules.h"
#include "tools/cli/ingest_common.h"

namespace tilestage::cli {
namespace {

struct Hdf5Args {
  IngestArgs ingest;
  std::vector<std::string> files;
  std::string dataset;
  std::string positions;
  std::string mask;
  std::vector<std::string> targets;
  std::string crop;
  int64_t bin = 1;
  bool log1p = false;
  bool sqrt = false;
  std::optional<double> clip_min;
  std::string batch_size = "8MiB";
};

Result<std::unique_ptr<ingest::Source>> MakeSource(const Hdf5Args& args) {
  ingest::Hdf5SourceOptions options;
  options.files = args.files;
  options.dataset = args.dataset;
  options.positions = args.positions;
  options.mask = args.mask;
  options.targets = args.targets;
  auto transform =
      ingest::FrameTransform::Parse(args.crop, args.bin, args.log1p, args.sqrt, args.clip_min);
  TS_ASSIGN_OR_RETURN(options.transform, std::move(transform));
  TS_ASSIGN_OR_RETURN(options.batch_bytes, ParseByteSize(args.batch_size));
  TS_ASSIGN_OR_RETURN(const std::string dir, ingest::ExecutableDir());
  TS_ASSIGN_OR_RETURN(const ingest::FormatsModule* formats, ingest::LoadFormatsModule(dir));
  return formats->open_hdf5(options);
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "ingest", "Turn source files into a tile store");
  auto args = std::make_shared<Hdf5Args>();
  CLI::App* cmd = group->add_subcommand(
      "hdf5", "Diffraction frames from HDF5 (NeXus/NXmx, CXI; [N,H,W], [Ny,Nx,H,W] or [H,W])");
  AddIngestOptions(cmd, &args->ingest, "full");
  cmd->add_option("--dataset", args->dataset,
                  "Frame dataset path; default: discover (NeXus default/signal, CXI)");
  cmd->add_option("--positions", args->positions,
                  "Probe positions [N,2|3], kept per sample; default: CXI's sample translation "
                  "when present; 'none': no positions");
  cmd->add_option("--mask", args->mask,
                  "Pixel mask [H,W], nonzero = invalid (e.g. /entry/instrument/detector/"
                  "pixel_mask); default: NXmx pixel_mask or CXI mask_shared/mask when present; "
                  "'none': no mask. Masked pixels become NaN (float) or the dtype's maximum "
                  "(minimum if signed), recorded as nodata");
  cmd->add_option("--target", args->targets,
                  "Target datasets [N,h,w] (e.g. amplitude,phase) stacked as channels of y")
      ->delimiter(',');
  cmd->add_option("--crop", args->crop, "Crop H,W (centred) or Y0,X0,H,W (a box)");
  cmd->add_option("--bin", args->bin, "Sum K x K pixel blocks")->capture_default_str();
  cmd->add_flag("--log1p", args->log1p, "log(1 + x) after crop/bin/clip");
  cmd->add_flag("--sqrt", args->sqrt, "sqrt(x) after crop/bin/clip");
  cmd->add_option("--clip-min", args->clip_min, "Raise values below V to V (before log1p/sqrt)");
  cmd->add_option("--read-batch", args->batch_size,
                  "Decoded bytes per HDF5 read, rounded to whole chunks")
      ->capture_default_str();
  cmd->add_option("files", args->files, "HDF5 files")->required();
  cmd->callback([args, exit_code] {
    // Multi-MiB batch buffers are allocated and freed all the time: keeping them in malloc's
    // heap, instead of fresh zero-filled mmap pages each time, saves the kernel's page clearing.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    *exit_code =
        RunIngestCommand(args->ingest, "hdf5", args->files, [&]() { return MakeSource(*args); });
  });
});

}  // namespace
}  // namespace tilestage::cli
