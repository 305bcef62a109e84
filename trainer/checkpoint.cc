#include "trainer/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "tiling/checksum.h"
#include "tiling/json_read.h"
#include "trainer/safetensors.h"

namespace tilestage::trainer {
namespace {

constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kStateFile[] = "state.json";
constexpr char kLatestFile[] = "latest.json";

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Status LoadTensors(const SafetensorsFile& file, const std::string& where, const ParamStore& params,
                   const std::string& prefix, std::vector<float>* out) {
  for (const ParamInfo& info : params.infos()) {
    auto it = file.tensors.find(prefix + info.name);
    if (it == file.tensors.end()) {
      return FailedPrecondition(where, ": has no tensor ", prefix + info.name,
                                " (checkpoint from another model configuration)");
    }
    if (it->second.shape != info.shape) {
      return FailedPrecondition(where, ": tensor ", prefix + info.name, " has shape ",
                                nlohmann::json(it->second.shape).dump(), ", this model needs ",
                                nlohmann::json(info.shape).dump());
    }
    std::copy(it->second.values.begin(), it->second.values.end(), out->begin() + info.offset);
  }
  if (file.tensors.size() != params.infos().size()) {
    return FailedPrecondition(where, ": holds ", file.tensors.size(), " tensors, this model has ",
                              params.infos().size());
  }
  return Status::Ok();
}

// The data settings that fix the order of the samples, and the train flag that sets each. The
// number of ranks is not among them: the order does not depend on it.
struct DataSetting {
  const char* key;
  const char* flag;
};
constexpr DataSetting kDataSettings[] = {{"global_batch", "--batch"},
                                         {"seed", "--seed"},
                                         {"shuffle", "--shuffle"},
                                         {"block_parts", "--block-parts"}};

std::string FlagValue(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Status CheckDataSettings(const std::string& dir, const nlohmann::json& have,
                         const nlohmann::json& want) {
  const char* why =
      "; the saved position in the data only means the same samples with the same global batch, "
      "seed, shuffle and store (the number of ranks may change: any number that divides --batch)";
  for (const DataSetting& s : kDataSettings) {
    if (!want.contains(s.key)) continue;
    if (!have.contains(s.key)) {
      return FailedPrecondition("checkpoint ", dir, " records no ", s.flag,
                                " setting (written by an older tilestage); this run has ", s.flag,
                                " ", FlagValue(want[s.key]), why);
    }
    if (have[s.key] != want[s.key]) {
      return FailedPrecondition("checkpoint ", dir, " was written with ", s.flag, " ",
                                FlagValue(have[s.key]), " but this run has ", s.flag, " ",
                                FlagValue(want[s.key]), why);
    }
  }
  if (want.contains("store") && want["store"].is_object()) {
    const nlohmann::json& w = want["store"];
    const nlohmann::json h = have.value("store", nlohmann::json::object());
    if (h.value("fingerprint", "") != w.value("fingerprint", "") ||
        h.value("records", uint64_t{0}) != w.value("records", uint64_t{0})) {
      return FailedPrecondition(
          "checkpoint ", dir, " was written with --store ", h.value("path", "(unrecorded)"), " (",
          h.value("records", uint64_t{0}), " training records, fingerprint ",
          h.value("fingerprint", "none"), ") but this run has --store ", w.value("path", ""), " (",
          w.value("records", uint64_t{0}), " training records, fingerprint ",
          w.value("fingerprint", ""), "): another store, or another --eval-fraction split", why);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> WriteCheckpoint(Storage& storage, const std::string& root,
                                    const ParamStore& params, const CheckpointState& state) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(state.step));
  const std::string dir = JoinPath(root, name);
  TS_RETURN_IF_ERROR(storage.CreateDirs(dir));
  std::vector<TensorRef> weights, moments;
  for (const ParamInfo& info : params.infos()) {
    weights.push_back({info.name, info.shape, params.params().data() + info.offset});
  }
  for (const ParamInfo& info : params.infos()) {
    moments.push_back({"exp_avg." + info.name, info.shape, params.exp_avg().data() + info.offset});
    moments.push_back(
        {"exp_avg_sq." + info.name, info.shape, params.exp_avg_sq().data() + info.offset});
  }
  const std::vector<uint8_t> model_bytes =
      EncodeSafetensors(weights, {{"format", "pt"}, {"producer", "tilestage train"}});
  const std::vector<uint8_t> optimizer_bytes =
      EncodeSafetensors(moments, {{"format", "pt"}, {"optimizer", "AdamW"}});
  TS_RETURN_IF_ERROR(storage.WriteAtomic(JoinPath(dir, kModelFile), model_bytes));
  TS_RETURN_IF_ERROR(storage.WriteAtomic(JoinPath(dir, kOptimizerFile), optimizer_bytes));
  nlohmann::json j = {
      {"step", state.step},
      {"position",
       {{"epoch", state.position.epoch},
        {"global_samples_consumed", state.position.samples_consumed}}},
      {"rng", {{"kind", "counter-splitmix64"}, {"seed", state.seed}}},
      {"config", state.config},
      {"files",
       {{kModelFile, {{"bytes", model_bytes.size()}, {"xxh3", HashToHex(Hash64(model_bytes))}}},
        {kOptimizerFile,
         {{"bytes", optimizer_bytes.size()}, {"xxh3", HashToHex(Hash64(optimizer_bytes))}}}}}};
  TS_RETURN_IF_ERROR(storage.WriteAtomic(JoinPath(dir, kStateFile), AsBytes(j.dump(2) + "\n")));
  const nlohmann::json latest = {{"checkpoint", name}, {"step", state.step}};
  TS_RETURN_IF_ERROR(
      storage.WriteAtomic(JoinPath(root, kLatestFile), AsBytes(latest.dump() + "\n")));
  return dir;
}

Result<std::string> FindLatestCheckpoint(Storage& storage, const std::string& root) {
  const std::string path = JoinPath(root, kLatestFile);
  TS_ASSIGN_OR_RETURN(bool exists, storage.Exists(path));
  if (!exists)
    return NotFound("checkpoint directory ", root, " holds no complete checkpoint (no ",
                    kLatestFile, ")");
  TS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, storage.ReadAll(path));
  TS_ASSIGN_OR_RETURN(const nlohmann::json j, ParseBoundedJson(bytes, path));
  try {
    return JoinPath(root, j.at("checkpoint").get<std::string>());
  } catch (const std::exception& e) {
    return DataLoss(path, ": ", e.what());
  }
}

Result<CheckpointState> ReadCheckpoint(Storage& storage, const std::string& dir,
                                       const nlohmann::json& expected_config, ParamStore* params) {
  const std::string state_path = JoinPath(dir, kStateFile);
  TS_ASSIGN_OR_RETURN(std::vector<uint8_t> state_bytes, storage.ReadAll(state_path));
  TS_ASSIGN_OR_RETURN(const nlohmann::json j, ParseBoundedJson(state_bytes, state_path));
  CheckpointState state;
  try {
    state.step = j.at("step");
    state.position.epoch = j.at("position").at("epoch");
    const nlohmann::json& position = j.at("position");
    if (!position.contains("global_samples_consumed")) {
      return FailedPrecondition(state_path, ": position counted per rank (a checkpoint of an ",
                                "older tilestage); it cannot be resumed on this version");
    }
    state.position.samples_consumed = position.at("global_samples_consumed");
    state.seed = j.at("rng").at("seed");
    state.config = j.at("config");
  } catch (const std::exception& e) {
    return DataLoss(state_path, ": unreadable checkpoint state (truncated?): ", e.what());
  }
  // Configuration first: a clearer error than a shape mismatch.
  const nlohmann::json& want_model = expected_config.value("model", nlohmann::json::object());
  const nlohmann::json have_model = state.config.value("model", nlohmann::json::object());
  for (auto it = want_model.begin(); it != want_model.end(); ++it) {
    if (!have_model.contains(it.key()) || have_model[it.key()] != *it) {
      return FailedPrecondition(
          "checkpoint ", dir, " was written for model.", it.key(), "=",
          have_model.contains(it.key()) ? have_model[it.key()].dump() : std::string("(absent)"),
          " but this run has model.", it.key(), "=", it->dump());
    }
  }
  TS_RETURN_IF_ERROR(CheckDataSettings(dir, state.config.value("data", nlohmann::json::object()),
                                       expected_config.value("data", nlohmann::json::object())));
  for (const char* file : {kModelFile, kOptimizerFile}) {
    const std::string path = JoinPath(dir, file);
    TS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, storage.ReadAll(path));
    uint64_t want_bytes = 0;
    std::string want_hash;
    try {
      want_bytes = j.at("files").at(file).at("bytes");
      want_hash = j.at("files").at(file).at("xxh3");
    } catch (const std::exception& e) {
      return DataLoss(state_path, ": no size/hash for ", file, ": ", e.what());
    }
    if (bytes.size() != want_bytes) {
      return DataLoss("checkpoint file ", path, ": ", bytes.size(), " bytes, state.json records ",
                      want_bytes, " (truncated or replaced)");
    }
    if (HashToHex(Hash64(bytes)) != want_hash) {
      return DataLoss("checkpoint file ", path, ": XXH3 ", HashToHex(Hash64(bytes)),
                      " does not match ", want_hash, " recorded in state.json (corrupt)");
    }
    TS_ASSIGN_OR_RETURN(SafetensorsFile parsed, ParseSafetensors(bytes, path));
    if (std::string(file) == kModelFile) {
      TS_RETURN_IF_ERROR(LoadTensors(parsed, path, *params, "", &params->params()));
    } else {
      SafetensorsFile m, v;
      for (auto& [name, e] : parsed.tensors) {
        if (name.rfind("exp_avg_sq.", 0) == 0) {
          v.tensors[name] = e;
        } else {
          m.tensors[name] = e;
        }
      }
      TS_RETURN_IF_ERROR(LoadTensors(m, path, *params, "exp_avg.", &params->exp_avg()));
      TS_RETURN_IF_ERROR(LoadTensors(v, path, *params, "exp_avg_sq.", &params->exp_avg_sq()));
    }
  }
  return state;
}

}  // namespace tilestage::trainer
