// tilestage bench model: predicts staging time, epoch time and time-to-train at N nodes from
// measured per-stage rates and the file-system, node-local and interconnect bandwidths. The model
// and its check against published MLPerf HPC v1.0 staging figures are in bench/MODEL.md.
#include <fstream>
#include <iostream>
#include <map>

#include "bench/e2e/model.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct ModelArgs {
  std::string config;
  std::string nodes = "1..1024";
  bool json = false;
  // Flag name -> text as given; each overrides the config file's value.
  std::map<std::string, std::string> given;
};

// (flag, model input, parsed as bytes or bytes/s rather than as a plain number)
struct FlagSpec {
  const char* flag;
  const char* key;
  bool bytes;
  const char* help;
};
constexpr FlagSpec kFlags[] = {
    {"--dataset", "dataset_bytes", true, "Dataset size as stored (e.g. 8.8TB)"},
    {"--samples", "samples", false, "Samples per epoch"},
    {"--epochs", "epochs", false, "Epochs to train"},
    {"--staging-read", "staging_read_bytes_per_s", true,
     "Measured stager read rate per node when the FS is not the limit (e.g. 2.5GB/s)"},
    {"--staging-write", "staging_write_bytes_per_s", true,
     "Measured stager write rate per node to node-local storage"},
    {"--loader", "loader_samples_per_s", false, "Measured loader samples/s per node"},
    {"--train", "train_samples_per_s", false,
     "Measured training samples/s per node on synthetic data"},
    {"--ingest", "ingest_bytes_per_s", true, "Measured ingest output rate per node (optional)"},
    {"--fs-aggregate", "fs_aggregate_bytes_per_s", true, "File-system aggregate bandwidth"},
    {"--fs-node", "fs_node_bytes_per_s", true, "File-system bandwidth of one client node"},
    {"--local-write", "local_write_bytes_per_s", true, "Node-local storage write bandwidth"},
    {"--local-read", "local_read_bytes_per_s", true, "Node-local storage read bandwidth"},
    {"--interconnect", "interconnect_bytes_per_s", true, "Per-node interconnect bandwidth"},
    {"--staging-overhead", "staging_overhead_s", false, "Fixed staging cost in seconds"},
    {"--gradient", "gradient_bytes", true, "Gradient bytes allreduced per step (optional)"},
    {"--batch-per-node", "batch_per_node", false, "Samples per node per step (with --gradient)"},
};

Status RunModel(const ModelArgs& args) {
  bench::Json config = bench::Json::object();
  if (!args.config.empty()) {
    std::ifstream in(args.config);
    if (!in) return NotFound("cannot open model config ", args.config);
    try {
      config = bench::Json::parse(in);
    } catch (const std::exception& e) {
      return InvalidArgument(args.config, ": not valid JSON: ", e.what());
    }
    if (!config.is_object()) return InvalidArgument(args.config, ": must be a JSON object");
  }
  for (const auto& [flag, text] : args.given) {
    if (flag == "--mode") {
      config["mode"] = text;
      continue;
    }
    for (const FlagSpec& spec : kFlags) {
      if (flag != spec.flag) continue;
      double value = 0;
      if (spec.bytes) {
        auto parsed = bench::ParseBytes(text);
        if (!parsed.ok()) return InvalidArgument(flag, ": ", parsed.status().message());
        value = *parsed;
      } else {
        char* end = nullptr;
        value = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0')
          return InvalidArgument(flag, " '", text, "' is not a number");
      }
      config[spec.key] = value;
    }
  }
  const std::string where = args.config.empty() ? std::string("flags") : args.config;
  TS_ASSIGN_OR_RETURN(bench::ModelParams params, bench::ModelParams::FromJson(config, where));
  TS_ASSIGN_OR_RETURN(std::vector<int> nodes, bench::ParseNodeList(args.nodes));
  TS_ASSIGN_OR_RETURN(auto points, bench::Predict(params, nodes));
  if (args.json) {
    std::cout << bench::ModelToJson(params, points).dump(2) << "\n";
  } else {
    std::cout << bench::FormatModelTable(params, points);
  }
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  CLI::App* group = GetOrAddGroup(root, "bench", "Benchmarks: end to end, analysis, model, report");
  auto args = std::make_shared<ModelArgs>();
  CLI::App* cmd = group->add_subcommand(
      "model", "Predict staging and epoch time at N nodes from measured rates (bench/MODEL.md)");
  cmd->add_option("--config", args->config,
                  "JSON file with the model inputs (keys as in --json's \"inputs\"); flags "
                  "override it");
  cmd->add_option("--nodes", args->nodes, "Node counts: 1,2,8 or 1..1024 (powers of two)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON instead of a table");
  cmd->add_option_function<std::string>(
      "--mode", [args](const std::string& v) { args->given["--mode"] = v; },
      "Staging mode: partition, replicate, replicate-from-fs or none");
  for (const FlagSpec& spec : kFlags) {
    const std::string flag = spec.flag;
    cmd->add_option_function<std::string>(
        flag, [args, flag](const std::string& v) { args->given[flag] = v; }, spec.help);
  }
  cmd->callback([args, exit_code] { *exit_code = Report(RunModel(*args)); });
});

}  // namespace
}  // namespace tilestage::cli
