// tilestage verify: every shard hash and record checksum against the manifest.
#include <cstdio>
#include <iostream>

#include "tiling/store.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

int RunVerify(const std::string& dir, int threads) {
  VerifyReport report;
  Status status = VerifyStore(*LocalStorage(), dir, &report, threads);
  for (const auto& problem : report.problems) std::cerr << "tilestage: " << problem << "\n";
  if (!status.ok()) {
    if (report.problems.empty()) return Report(status);
    std::cerr << "tilestage: verify FAILED: " << report.problems.size() << " problem(s) in " << dir
              << "\n";
    return 1;
  }
  std::printf("verify OK: %llu shards, %llu records, %.2f MiB checked in %s\n",
              static_cast<unsigned long long>(report.shards_checked),
              static_cast<unsigned long long>(report.records_checked),
              report.bytes_checked / 1048576.0, dir.c_str());
  return 0;
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = root.add_subcommand(
      "verify", "Check every shard hash and record checksum; non-zero exit on any mismatch");
  cmd->add_option("store", *dir, "Store directory")->required();
  cmd->add_option("--threads", *threads, "Shards verified at once (0 = one per core)")
      ->capture_default_str();
  cmd->callback([=] { *exit_code = RunVerify(*dir, *threads); });
});

}  // namespace
}  // namespace tilestage::cli
