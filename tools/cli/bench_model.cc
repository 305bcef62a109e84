// tilestage bench model: predicts staging time, epoch time and time-to-train at N nodes from
// measured per-stage rates and the file-system, node-local and interconnect bandwidths. The model
// and its check against published MLPerf HPC v1.0 staging figures are in bench/MODEL.md.
// With --validate PATH..., calibrates the model on one node count of every published system
// measured at several and prints its predictions for the others beside the published figures.
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
  std::vector<std::string> validate;
  std::string calibrate = "fs";
  std::string node_bandwidth = "25GB/s";
  std::vector<std::string> dataset_sizes;  // benchmark=SIZE
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

Status RunValidate(const ModelArgs& args) {
  bench::ValidationOptions options;
  TS_ASSIGN_OR_RETURN(options.calibration, bench::ParseCalibration(args.calibrate));
  auto bandwidth = bench::ParseBytes(args.node_bandwidth);
  if (!bandwidth.ok() || !(*bandwidth > 0))
    return InvalidArgument("--node-bandwidth '", args.node_bandwidth,
                           "' must be a positive rate such as 25GB/s");
  options.node_bytes_per_s = *bandwidth;
  for (const std::string& item : args.dataset_sizes) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return InvalidArgument("--dataset-size '", item, "': expected BENCHMARK=SIZE");
    auto bytes = bench::ParseBytes(item.substr(eq + 1));
    if (!bytes.ok() || !(*bytes > 0))
      return InvalidArgument("--dataset-size '", item, "': the size must be positive, e.g. 5.1TB");
    options.dataset_bytes[item.substr(0, eq)] = *bytes;
  }
  TS_ASSIGN_OR_RETURN(std::vector<std::string> logs, bench::ExpandMlLogPaths(args.validate));
  TS_ASSIGN_OR_RETURN(bench::StagingAnalysis analysis,
                      bench::AnalyzeMlLogFiles(logs, bench::GroupBy::kSubmission));
  const auto series = bench::FindScalingSeries(analysis);
  if (series.empty())
    return InvalidArgument("no system and benchmark among the ", logs.size(),
                           " logs is measured at two or more node counts");
  const bench::Validation validation = bench::ValidateStagingModel(series, options);
  if (args.json) {
    std::cout << bench::ValidationToJson(validation).dump(2) << "\n";
  } else {
    std::cout << bench::FormatValidation(validation);
  }
  return Status::Ok();
}

Status RunModel(const ModelArgs& args) {
  if (!args.validate.empty()) return RunValidate(args);
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
  cmd->add_option("--validate", args->validate,
                  "Published MLPerf logs (files or result trees): calibrate on one node count of "
                  "every system measured at several, predict the others' staging times");
  cmd->add_option("--calibrate", args->calibrate,
                  "With --validate: what the calibration run is taken to be bound by, setting "
                  "the one calibrated parameter: fs (file-system aggregate) or node (stager "
                  "rate per node)")
      ->capture_default_str();
  cmd->add_option("--node-bandwidth", args->node_bandwidth,
                  "With --validate --calibrate fs: one node's file-system bandwidth")
      ->capture_default_str();
  cmd->add_option("--dataset-size", args->dataset_sizes,
                  "With --validate: bytes staged per instance, as BENCHMARK=SIZE (defaults: "
                  "cosmoflow=5.1TB, deepcam=8.8TB)");
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
