#include "trainer/checkpoint.h"

#include <cstdio>
#include <cstring>

#include "tiling/checksum.h"
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
    std::memcpy(out->data() + info.offset, it->second.data, 4 * info.size);
  }
  if (file.tensors.size() != params.infos().size()) {
    return FailedPrecondition(where, ": holds ", file.tensors.size(), " tensors, this model has ",
                              params.infos().size());
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
       {{"epoch", state.position.epoch}, {"samples_consumed", state.position.samples_consumed}}},
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
  try {
    const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end());
    return JoinPath(root, j.at("checkpoint").get<std::string>());
  } catch (const std::exception& e) {
    return DataLoss(path, ": ", e.what());
  }
}

Result<CheckpointState> ReadCheckpoint(Storage& storage, const std::string& dir,
                                       const nlohmann::json& expected_config, ParamStore* params) {
  const std::string state_path = JoinPath(dir, kStateFile);
  TS_ASSIGN_OR_RETURN(std::vector<uint8_t> state_bytes, storage.ReadAll(state_path));
  nlohmann::json j;
  CheckpointState state;
  try {
    j = nlohmann::json::parse(state_bytes.begin(), state_bytes.end());
    state.step = j.at("step");
    state.position.epoch = j.at("position").at("epoch");
    state.position.samples_consumed = j.at("position").at("samples_consumed");
    state.seed = j.at("rng").at("seed");
    state.config = j.at("config");
  } catch (const std::exception& e) {
    return DataLoss(state_path, ": unreadable checkpoint state (truncated?): ", e.what());
  }
  // Configuration first: a clearer error than a shape mismatch.
  for (const char* section : {"model", "data"}) {
    if (!expected_config.contains(section)) continue;
    const nlohmann::json& want = expected_config[section];
    const nlohmann::json have = state.config.value(section, nlohmann::json::object());
    for (auto it = want.begin(); it != want.end(); ++it) {
      if (!have.contains(it.key()) || have[it.key()] != *it) {
        return FailedPrecondition(
            "checkpoint ", dir, " was written for ", section, ".", it.key(), "=",
            have.contains(it.key()) ? have[it.key()].dump() : std::string("(absent)"),
            " but this run has ", section, ".", it.key(), "=", it->dump());
      }
    }
  }
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
