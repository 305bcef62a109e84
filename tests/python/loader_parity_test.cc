// tilestage.Loader (the Python package, tests/python/dump_batches.py) against the C++ Loader
// opened here with the same options: two epochs of the same batches, x, y and indices bit for
// bit, for several dtypes, codecs, normalization on and off (then the stored dtype),
// augmentation, ranks and shuffles.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "loaders/loader.h"
#include "tests/common/test_util.h"

namespace tilestage {
namespace {

using testing::TempDir;

std::vector<char> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return {std::istreambuf_iterator<char>(f), {}};
}

template <typename Array>
void ExpectBytes(const std::string& path, const Array& want, const std::string& what) {
  const std::vector<char> got = ReadBytes(path);
  ASSERT_EQ(got.size(), want.size() * sizeof(want[0])) << what;
  EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size()), 0) << what;
}

struct Case {
  const char* synth;  // extra `tilestage synth` arguments
  nlohmann::json python;
  LoaderOptions options;
};

TEST(PythonPackage, LoaderBatchesEqualCppLoaderBitForBit) {
  std::vector<Case> cases;
  {
    Case c{"--dtype u16 --codec zstd:1+shuffle --classes 4", {{"batch_size", 3}, {"seed", 7}}, {}};
    c.options.batch_size = 3;
    c.options.seed = 7;
    cases.push_back(c);
  }
  {
    Case c{"--dtype i16 --codec lz4 --classes 2",
           {{"batch_size", 4}, {"seed", 1}, {"normalize", false}, {"augment", true}, {"crop", 4}},
           {}};
    c.options.batch_size = 4;
    c.options.seed = 1;
    c.options.normalize = false;
    c.options.keep_stored_dtype = true;
    c.options.augment = true;
    c.options.crop_h = c.options.crop_w = 4;
    cases.push_back(c);
  }
  {
    Case c{"--dtype i8 --codec none --classes 3",
           {{"batch_size", 2},
            {"seed", 5},
            {"rank", 1},
            {"world_size", 2},
            {"shuffle", "block"},
            {"block_shards", 2},
            {"block_parts", 3},
            {"drop_last", true}},
           {}};
    c.options.batch_size = 2;
    c.options.seed = 5;
    c.options.rank = 1;
    c.options.world_size = 2;
    c.options.shuffle = ShuffleMode::kBlock;
    c.options.block_shards = 2;
    c.options.block_parts = 3;
    c.options.drop_last = true;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.synth);
    TempDir tmp;
    const std::string store = tmp.Sub("store");
    auto synth = testing::RunCommand(testing::CliPath() + " synth --out " + store +
                                     " --samples 23 --shape 2,6,5 --shard-size 2KiB " + c.synth);
    ASSERT_EQ(synth.exit_code, 0) << synth.output;
    const std::string dump = tmp.Sub("dump");
    std::filesystem::create_directories(dump);
    auto py =
        testing::RunCommand("PYTHONPATH=" TILESTAGE_PYTHON_PACKAGE_DIR " " + testing::PythonPath() +
                            " " + testing::SourceDir() + "/tests/python/dump_batches.py " + store +
                            " " + dump + " '" + c.python.dump() + "'");
    ASSERT_EQ(py.exit_code, 0) << py.output;

    auto loader = Loader::Open(LocalStorage(), store, c.options);
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    Batch b;
    int k = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      while (true) {
        auto more = (*loader)->Next(&b);
        ASSERT_TRUE(more.ok()) << more.status().ToString();
        if (!*more) break;
        const std::string n = std::to_string(k++);
        if (c.options.keep_stored_dtype) {
          ExpectBytes(dump + "/x-" + n + ".bin", b.x_stored, "stored x of batch " + n);
          ExpectBytes(dump + "/y-" + n + ".bin", b.y_stored, "stored y of batch " + n);
        } else {
          ExpectBytes(dump + "/x-" + n + ".bin", b.x, "x of batch " + n);
          ExpectBytes(dump + "/y-" + n + ".bin", b.y, "y of batch " + n);
        }
        ExpectBytes(dump + "/index-" + n + ".bin", b.indices, "index of batch " + n);
      }
    }
    EXPECT_GT(k, 4);
    EXPECT_EQ(std::string(ReadBytes(dump + "/count").data(), ReadBytes(dump + "/count").size()),
              std::to_string(k));
  }
}

}  // namespace
}  // namespace tilestage
