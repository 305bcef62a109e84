#include "bench/e2e/inputs.h"

#include <algorithm>
#include <filesystem>

#include "ingest/modules.h"

namespace tilestage::bench {

namespace fs = std::filesystem;

Result<std::vector<std::string>> CopyInputs(const std::vector<std::string>& files, int copies,
                                            const std::string& dir, const std::string& module_dir) {
  if (copies <= 1) return files;
  std::vector<std::string> out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("cannot create ", dir, ": ", ec.message());
  for (int k = 0; k < copies; ++k) {
    for (const auto& f : files) {
      const fs::path p(f);
      const std::string dst =
          dir + "/" + p.stem().string() + "_" + std::to_string(k) + p.extension().string();
      fs::remove(dst, ec);
      // A file that stays as it is becomes a hard link (no bytes written; the demo preset links
      // 250 copies of its scene); one to change, or one on another file system, a copy.
      ec.clear();
      if (p.extension() != ".nc") fs::create_hard_link(f, dst, ec);
      if (p.extension() == ".nc" || ec) {
        ec.clear();
        fs::copy_file(f, dst, fs::copy_options::overwrite_existing, ec);
      }
      if (ec) return IOError("copy ", f, " to ", dst, ": ", ec.message());
      if (p.extension() == ".nc" && k > 0) {
        TS_ASSIGN_OR_RETURN(const ingest::FormatsModule* formats,
                            ingest::LoadFormatsModule(module_dir));
        TS_RETURN_IF_ERROR(formats->shift_netcdf_time(dst, double(k)));
      }
      out.push_back(dst);
    }
  }
  return out;
}

}  // namespace tilestage::bench
