// libFuzzer target for the manifest reader: arbitrary bytes as manifest.json in MemoryStorage,
// read with ReadManifest; whatever it accepts is then used as the commands use it (printed back,
// summed, searched), so a manifest that passes validation but breaks a later use shows up too.
//   cmake --preset fuzz && cmake --build build/fuzz --target manifest_reader_fuzzer
//   build/fuzz/tiling/manifest_reader_fuzzer -max_total_time=300 CORPUS_DIR tiling/fuzz/manifest_corpus
// The seed corpus (tiling/fuzz/manifest_corpus) is replayed by ctest in every build
// (fuzz_replay_main.cc), without fuzzing.
#include <cstddef>
#include <cstdint>

#include "tiling/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tilestage;
  static const std::shared_ptr<Storage> storage = [] {
    auto s = NewMemoryStorage();
    (void)s->CreateDirs("/s");
    return s;
  }();
  if (!storage->WriteAtomic("/s/manifest.json", {data, size}).ok()) return 0;
  auto manifest = ReadManifest(*storage, "/s");
  if (!manifest.ok()) return 0;
  const Manifest& m = *manifest;
  (void)m.TotalRecords();
  (void)m.TotalBytes();
  for (const FieldSchema& f : m.fields) (void)m.FindField(f.name);
  // What `inspect --json` and the stager print and re-read must read back the same.
  const std::string text = m.ToJson().dump(2);
  auto again = Manifest::FromJson(nlohmann::json::parse(text), "/s/manifest.json");
  if (!again.ok() || again->ToJson() != m.ToJson()) __builtin_trap();
  return 0;
}
