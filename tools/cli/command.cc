#include "tools/cli/command.h"

#include <unistd.h>

#include <charconv>
#include <iostream>

namespace tilestage::cli {

namespace {
std::vector<CommandSetup>& Registry() {
  static std::vector<CommandSetup> registry;
  return registry;
}
std::vector<std::string>& CommandLineStorage() {
  static std::vector<std::string> argv;
  return argv;
}
}  // namespace

bool RegisterCommand(CommandSetup setup) {
  Registry().push_back(std::move(setup));
  return true;
}
const std::vector<CommandSetup>& RegisteredCommands() { return Registry(); }

CLI::App* GetOrAddGroup(CLI::App& root, const std::string& name, const std::string& description) {
  for (CLI::App* sub : root.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  CLI::App* group = root.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

int Report(const Status& status) {
  if (status.ok()) return 0;
  std::cerr << "tilestage: " << status.ToString() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

const std::vector<std::string>& CommandLine() { return CommandLineStorage(); }
void SetCommandLine(int argc, char** argv) { CommandLineStorage().assign(argv, argv + argc); }

Result<uint64_t> ParseByteSize(const std::string& text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data())
    return InvalidArgument("size '", text, "' must start with a number");
  std::string unit(ptr, text.data() + text.size());
  uint64_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k") scale = 1ull << 10;
  else if (unit == "M" || unit == "MiB") scale = 1ull << 20;
  else if (unit == "G" || unit == "GiB") scale = 1ull << 30;
  else if (unit == "KB") scale = 1000;
  else if (unit == "MB") scale = 1000 * 1000;
  else if (unit == "GB") scale = 1000ull * 1000 * 1000;
  else return InvalidArgument("size '", text, "': unknown unit '", unit,
                              "' (B, KiB, MiB, GiB, KB, MB, GB)");
  return value * scale;
}

Result<std::vector<int64_t>> ParseShape(const std::string& text) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    int64_t d = 0;
    auto [ptr, ec] = std::from_chars(text.data() + start, text.data() + comma, d);
    if (ec != std::errc() || ptr != text.data() + comma || d <= 0)
      return InvalidArgument("shape '", text, "': each dimension must be a positive integer");
    shape.push_back(d);
    start = comma + 1;
  }
  return shape;
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO); }

}  // namespace tilestage::cli
