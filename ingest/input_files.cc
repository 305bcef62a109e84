#include "ingest/input_files.h"

#include <glob.h>

#include <filesystem>
#include <system_error>

namespace tilestage::ingest {

Result<std::vector<std::string>> ExpandGlobs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& arg : args) {
    if (arg.find_first_of("*?[") == std::string::npos) {
      out.push_back(arg);
      continue;
    }
    std::error_code ec;
    if (std::filesystem::exists(arg, ec)) {  // a literal name that happens to hold '['
      out.push_back(arg);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(arg.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
      globfree(&g);
      return NotFound("no file matches '", arg, "'");
    }
    if (rc != 0) {
      globfree(&g);
      return IOError("cannot expand '", arg, "'");
    }
    for (size_t i = 0; i < g.gl_pathc; ++i) out.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return out;
}

}  // namespace tilestage::ingest
