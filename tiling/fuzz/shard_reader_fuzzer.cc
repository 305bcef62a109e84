// libFuzzer target for the shard reader: arbitrary bytes as a shard file in MemoryStorage, opened
// with ShardReader::Open, verified in one pass (VerifyRecords, verify's reader) and read record by
// record. Because record checksums stop damaged
// records before they are decoded, every record extent that Open accepts is also handed to
// DecodeRecord and to ParseRecordView (the loader's parser) directly, so both see the mutated
// bytes too.
//   cmake --preset fuzz && cmake --build build/fuzz --target shard_reader_fuzzer
//   build/fuzz/tiling/shard_reader_fuzzer -max_total_time=60 CORPUS_DIR
#include <cstddef>
#include <cstdint>

#include "tiling/shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tilestage;
  static const std::shared_ptr<Storage> storage = NewMemoryStorage();
  if (!storage->WriteAtomic("/fuzz.tss", {data, size}).ok()) return 0;
  auto reader = ShardReader::Open(*storage, "/fuzz.tss");
  if (!reader.ok()) return 0;
  const ShardReader& shard = **reader;
  std::vector<Status> problems;
  (void)shard.VerifyRecords(&problems);
  const uint64_t n = std::min<uint64_t>(shard.num_records(), 64);
  std::vector<FieldView> views;
  std::vector<std::vector<uint8_t>> scratch;
  for (uint64_t i = 0; i < n; ++i) {
    (void)shard.Read(i);
    const IndexEntry& e = shard.entry(i);
    // Open guarantees the extent lies inside the file.
    (void)DecodeRecord({data + e.offset, e.stored_size}, e, "fuzz");
    (void)ParseRecordView({data + e.offset, e.stored_size}, e, "fuzz", &views, &scratch);
  }
  return 0;
}
