// tilestage: one CLI for building, checking, staging, loading, training and benchmarking tile
// stores. Subcommands live one per file in tools/cli/ and register themselves.
#include <iostream>

#include "tools/cli/command.h"

int main(int argc, char** argv) {
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
