// tilestage: one CLI for building, checking, staging, loading, training and benchmarking tile
// stores. Subcommands live one per file in tools/cli/ and register themselves.
#include <malloc.h>

#include <iostream>

#include "tools/cli/command.h"

int main(int argc, char** argv) {
  // Records and batches are buffers of 0.1-100 MB allocated and freed at a high rate, often on
  // different threads. glibc would return them to the kernel (mmap/munmap, heap trimming) and
  // fault and zero every page again on the next allocation; keeping them in the heap avoids
  // that. 32 MiB is the largest mmap threshold glibc accepts.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  tilestage::cli::SetCommandLine(argc, argv);
  CLI::App app{"tilestage: sharded tile stores for scientific machine learning"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tilestage 0.1.0");
  int exit_code = 0;
  for (const auto& setup : tilestage::cli::RegisteredCommands()) setup(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
