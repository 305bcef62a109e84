// The store subcommands of the `tilestage` CLI: synth -> inspect -> verify -> export round trips,
// --help, bad arguments, and every bad store input the issue names through `tilestage verify`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/common/test_util.h"
#include "tests/tiling/manifest_mutations.h"
#include "tiling/checksum.h"
#include "tiling/store.h"
#include "tiling/synth.h"

namespace tilestage {
namespace {

using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RunCommand;
using testing::TempDir;

CommandResult Cli(const std::string& args) { return RunCommand(testing::CliPath() + " " + args); }

// Only the JSON document of `inspect --json` (stdout), so stray stderr lines cannot break parsing.
nlohmann::json InspectJson(const std::string& dir) {
  CommandResult r = RunCommand(testing::CliPath() + " inspect --json " + dir + " 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return nlohmann::json::parse(r.output, nullptr, false);
}

class CliStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.Sub("store");
    CommandResult r = Cli(StrCat("synth --out ", dir_,
                                 " --samples 20 --shape 2,16,16 --dtype f32 "
                                 "--codec zstd+shuffle --shard-size 16KiB --seed 4"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto store = Store::Open(LocalStorage(), dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_GE((*store)->num_shards(), 3u);
    for (size_t s = 0; s < (*store)->num_shards(); ++s)
      shards_.push_back((*store)->shard(s).path());
    records_in_shard1_ = (*store)->shard(1).num_records();
    record1_of_shard1_ = (*store)->shard(1).entry(1);
  }

  // Runs verify and checks the common contract: non-zero exit and the shard file named.
  CommandResult VerifyFails(const std::string& names) {
    CommandResult r = Cli("verify " + dir_);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(names));
    EXPECT_THAT(r.output, Not(HasSubstr("verify OK")));
    return r;
  }
  void EditManifest(const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(dir_ + "/manifest.json");
    auto j = nlohmann::json::parse(in);
    edit(j);
    std::ofstream(dir_ + "/manifest.json", std::ios::trunc) << j.dump(2);
  }

  TempDir tmp_;
  std::string dir_;
  std::vector<std::string> shards_;
  uint64_t records_in_shard1_ = 0;
  IndexEntry record1_of_shard1_;
};

TEST_F(CliStoreTest, SynthInspectVerifyRoundTrip) {
  const nlohmann::json j = InspectJson(dir_);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["samples"], 20);
  EXPECT_EQ(j["shards"].size(), shards_.size());
  EXPECT_EQ(j["codec"], "zstd:3+shuffle");
  EXPECT_EQ(j["fields"][0]["dtype"], "f32");
  EXPECT_EQ(j["fields"][0]["shape"], nlohmann::json({2, 16, 16}));
  EXPECT_EQ(j["fields"][0]["stats"].size(), 2u);
  EXPECT_EQ(j["fields"][0]["stats"][0]["count"], 20 * 16 * 16);
  EXPECT_GT(j["compression_ratio"].get<double>(), 1.0);
  EXPECT_THAT(j["provenance"]["command"].get<std::string>(), HasSubstr("synth --out " + dir_));

  CommandResult text = Cli("inspect " + dir_);
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("20 in " + std::to_string(shards_.size()) + " shards"));

  CommandResult verify = Cli("verify " + dir_);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output,
              HasSubstr(StrCat("verify OK: ", shards_.size(), " shards, 20 records")));
}

TEST_F(CliStoreTest, SynthStatisticsMatchTheRecords) {
  // The manifest's statistics are those of the stored values, computed here directly.
  auto store = Store::Open(LocalStorage(), dir_);
  ASSERT_TRUE(store.ok());
  std::vector<double> sum(2, 0.0);
  for (uint64_t i = 0; i < 20; ++i) {
    auto x = (*store)->Read(i)->fields[0].array;
    for (int64_t k = 0; k < x.NumElements(); ++k) sum[k / 256] += ElementAsDouble(x, k);
  }
  const auto& stats = (*store)->manifest().fields[0].stats;
  for (int c = 0; c < 2; ++c) EXPECT_NEAR(stats[c].mean, sum[c] / (20 * 256), 1e-9);
}

TEST_F(CliStoreTest, SynthOntoAStoreIsRefusedAndOverwriteReplacesIt) {
  const auto manifest_text = [&] {
    std::ifstream in(dir_ + "/manifest.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = manifest_text();
  CommandResult refused = Cli("synth --out " + dir_ + " --samples 5 --shape 2,16,16");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.output, HasSubstr("--out " + dir_ + " already holds a tile store; pass "
                                        "--overwrite to replace it"));
  EXPECT_EQ(manifest_text(), before) << "the store was touched";

  CommandResult replaced = Cli("synth --out " + dir_ + " --samples 5 --shape 2,16,16 --overwrite");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  auto store = Store::Open(LocalStorage(), dir_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->size(), 5u);
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(tmp_.path()))
    names.insert(e.path().filename());
  EXPECT_EQ(names, std::set<std::string>{"store"}) << "no staging or old store left beside it";
  EXPECT_EQ(Cli("verify " + dir_).exit_code, 0);
}

TEST(Cli, SynthIsDeterministicForASeed) {
  TempDir tmp;
  const std::string args = " --samples 12 --shape 1,8,8 --dtype u16 --codec lz4 --shard-size 8KiB";
  ASSERT_EQ(Cli("synth --seed 1 --out " + tmp.Sub("a") + args).exit_code, 0);
  ASSERT_EQ(Cli("synth --seed 1 --out " + tmp.Sub("b") + args).exit_code, 0);
  ASSERT_EQ(Cli("synth --seed 2 --out " + tmp.Sub("c") + args).exit_code, 0);
  const auto a = InspectJson(tmp.Sub("a")), b = InspectJson(tmp.Sub("b")),
             c = InspectJson(tmp.Sub("c"));
  ASSERT_EQ(a["shards"].size(), b["shards"].size());
  for (size_t s = 0; s < a["shards"].size(); ++s) {
    EXPECT_EQ(a["shards"][s]["hash"], b["shards"][s]["hash"]) << s;
    EXPECT_NE(a["shards"][s]["hash"], c["shards"][s]["hash"]) << s;
  }
}

TEST_F(CliStoreTest, ExportWritesNpyThatNumpyReadsEqualToTheRecord) {
  const std::string npy = tmp_.Sub("x7.npy");
  CommandResult r = Cli(StrCat("export ", dir_, " --record 7 --field x --out ", npy));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Independent truth: the synthetic generator's sample 7, as raw little-endian bytes.
  const Array want = MakeSynthSample({{2, 16, 16}, DType::kF32, 4, 0}, 7).fields[0].array;
  const std::string raw = tmp_.Sub("x7.raw");
  ASSERT_TRUE(LocalStorage()->WriteAtomic(raw, want.data).ok());
  CommandResult py = RunCommand(
      StrCat(testing::PythonPath(), " -c \"import numpy as np, sys; a = np.load('", npy,
             "'); b = np.fromfile('", raw,
             "', dtype='<f4').reshape(2, 16, 16); "
             "assert a.dtype.str == '<f4', a.dtype; assert a.shape == (2, 16, 16), a.shape; "
             "assert a.tobytes() == b.tobytes(); print('numpy equal', a.size)\""));
  EXPECT_EQ(py.exit_code, 0) << py.output;
  EXPECT_THAT(py.output, HasSubstr("numpy equal 512"));
}

TEST_F(CliStoreTest, ExportUnknownFieldFailsListingTheFields) {
  CommandResult r =
      Cli(StrCat("export ", dir_, " --record 0 --field nope --out ", tmp_.Sub("o.npy")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("no field 'nope' (fields: x)"));
  EXPECT_FALSE(std::filesystem::exists(tmp_.Sub("o.npy")));
}

TEST_F(CliStoreTest, ExportRecordOutOfRangeFails) {
  CommandResult r = Cli(StrCat("export ", dir_, " --record 20 --out ", tmp_.Sub("o.npy")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("record 20 out of range (20 records)"));
}

TEST(Cli, HelpWorksForEachStoreSubcommand) {
  const std::pair<const char*, const char*> cases[] = {
      {"synth", "--samples"}, {"inspect", "--json"}, {"verify", "store"}, {"export", "--record"}};
  for (const auto& [command, option] : cases) {
    CommandResult r = Cli(StrCat(command, " --help"));
    EXPECT_EQ(r.exit_code, 0) << command << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(option)) << command;
  }
  CommandResult r = Cli("--help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* command : {"synth", "inspect", "verify", "export"})
    EXPECT_THAT(r.output, HasSubstr(command));
}

TEST(Cli, BadArgumentsGiveNonZeroExitAndAMessage) {
  TempDir tmp;
  const std::string out = " --out " + tmp.Sub("s");
  const std::pair<std::string, std::string> cases[] = {
      {"synth --samples 3", "--out"},
      {"synth --dtype q99" + out, "q99"},
      {"synth --codec gzip" + out, "unknown codec 'gzip'"},
      {"synth --codec zstd:42" + out, "level"},
      {"synth --shape 3,x,4" + out, "shape '3,x,4'"},
      {"synth --shard-size 10XB" + out, "unknown unit 'XB'"},
      {"synth --alignment 3000" + out, "3000"},
      {"synth --samples many" + out, "many"},
      {"export " + tmp.Sub("s"), "--record"},
      {"inspect", "store"},
      {"frobnicate", "subcommand"},
  };
  for (const auto& [args, message] : cases) {
    CommandResult r = Cli(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_THAT(r.output, HasSubstr(message)) << args;
  }
  // A failed synth publishes nothing that looks like a store.
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("s/manifest.json")));
}

// ---------------------------------------------------------------- malformed manifests

// No command crashes on a malformed manifest: each refuses it with the data error exit code (1;
// 2 means a usage error) and a message naming manifest.json and the field. All read it through
// ReadManifest: `inspect` runs on every case, `verify` and `load` on the ones that crashed them
// before the manifest was checked on open (and a few more), to keep the test fast.
TEST_F(CliStoreTest, MalformedManifestsAreRefusedByInspectVerifyAndLoadWithoutCrashing) {
  const std::string path = dir_ + "/manifest.json";
  const nlohmann::json valid = nlohmann::json::parse(std::ifstream(path));
  const std::set<std::string> slow_cases = {"ShapeNegative", "ShapeOverflowing",
                                            "RecordsHugeFloat", "ProvenanceCommandNotAString",
                                            "DTypeEmpty", "StatsCountNegative",
                                            "ShardFileEscapingTheStore"};
  for (const testing::ManifestMutation& m : testing::ManifestMutations()) {
    nlohmann::json j = valid;
    m.edit(j);
    std::ofstream(path, std::ios::trunc) << j.dump(2);
    std::vector<std::string> commands = {"inspect "};
    if (slow_cases.count(m.name)) commands.insert(commands.end(), {"verify ", "load --batch 4 "});
    for (const std::string& command : commands) {
      CommandResult r = Cli(command + dir_);
      EXPECT_EQ(r.exit_code, 1) << m.name << ", " << command << ": " << r.output;
      EXPECT_THAT(r.output, HasSubstr("manifest " + path + ": ")) << m.name << ", " << command;
      EXPECT_THAT(r.output, HasSubstr(m.error)) << m.name << ", " << command;
    }
  }
  nlohmann::json with_placeholder = valid;
  with_placeholder["attrs"]["deep"] = "PLACEHOLDER";
  std::string deep = with_placeholder.dump();
  deep.replace(deep.find("\"PLACEHOLDER\""), 13, testing::DeeplyNested(1000000));
  std::ofstream(path, std::ios::trunc) << deep;
  for (const std::string command : {"inspect ", "verify ", "load --batch 4 "}) {
    CommandResult r = Cli(command + dir_);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.output.substr(0, 300);
    EXPECT_THAT(r.output, HasSubstr("manifest " + path + ": nested more than 64 levels deep"));
  }
}

// ---------------------------------------------------------------- bad input through verify

TEST_F(CliStoreTest, VerifyTruncatedShardFailsNamingIt) {
  testing::TruncateFile(shards_[1], testing::FileSize(shards_[1]) - 1);
  VerifyFails(shards_[1] + ": truncated");
}

TEST_F(CliStoreTest, VerifyFlippedRecordByteFailsNamingShardAndRecord) {
  testing::FlipByte(shards_[1], static_cast<long>(record1_of_shard1_.offset +
                                                  record1_of_shard1_.stored_size / 2));
  CommandResult r = VerifyFails("shard " + shards_[1] + ": record 1: checksum mismatch");
  EXPECT_THAT(r.output, HasSubstr("verify FAILED"));
}

TEST_F(CliStoreTest, VerifyFlippedIndexByteFailsNamingShard) {
  testing::FlipByte(shards_[0], -(64 + 48 + 10));  // inside the last index entry
  VerifyFails(shards_[0] + ": index checksum mismatch");
}

TEST_F(CliStoreTest, VerifyWrongMagicFailsNamingShard) {
  testing::FlipByte(shards_[2], 3);
  VerifyFails(shards_[2] + ": bad magic");
}

TEST_F(CliStoreTest, VerifyUnknownVersionFailsNamingShardAndVersion) {
  auto bytes = *LocalStorage()->ReadAll(shards_[0]);
  const uint32_t version = 2;
  std::memcpy(bytes.data() + 8, &version, 4);
  const uint64_t sum = Hash64({bytes.data(), 56});
  std::memcpy(bytes.data() + 56, &sum, 8);
  ASSERT_TRUE(LocalStorage()->WriteAtomic(shards_[0], bytes).ok());
  VerifyFails(shards_[0] + ": unknown format version 2");
}

TEST_F(CliStoreTest, VerifyMissingShardFailsNamingIt) {
  std::filesystem::remove(shards_[1]);
  VerifyFails(shards_[1] + " listed in the manifest is missing");
}

TEST_F(CliStoreTest, VerifyManifestRecordCountMismatchFailsNamingShard) {
  EditManifest([&](nlohmann::json& j) {
    j["shards"][1]["records"] = records_in_shard1_ + 2;
    j["samples"] = j["samples"].get<uint64_t>() + 2;  // consistent: only the shard disagrees
  });
  VerifyFails(StrCat(shards_[1], ": ", records_in_shard1_, " records, manifest says ",
                     records_in_shard1_ + 2));
}

TEST_F(CliStoreTest, VerifyManifestHashMismatchFailsNamingShard) {
  EditManifest([](nlohmann::json& j) { j["shards"][2]["hash"] = "00000000deadbeef"; });
  VerifyFails(shards_[2] + ": file hash");
}

TEST_F(CliStoreTest, VerifyManifestByteSizeMismatchFailsNamingShard) {
  EditManifest([](nlohmann::json& j) {
    j["bytes"] = j["bytes"].get<uint64_t>() - j["shards"][0]["bytes"].get<uint64_t>() + 4096;
    j["shards"][0]["bytes"] = 4096;
  });
  VerifyFails(shards_[0] + ": " + std::to_string(testing::FileSize(shards_[0])) +
              " bytes, manifest says 4096");
}

TEST(Cli, VerifyMissingStoreDirectoryFailsNamingIt) {
  TempDir tmp;
  CommandResult r = Cli("verify " + tmp.Sub("absent"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output,
              HasSubstr("NotFound: store directory " + tmp.Sub("absent") + " does not exist"));
  r = Cli("inspect " + tmp.Sub("absent"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr(tmp.Sub("absent")));
}

TEST(Cli, VerifyDirectoryWithoutManifestFails) {
  TempDir tmp;
  CommandResult r = Cli("verify " + tmp.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("no manifest.json"));
}

}  // namespace
}  // namespace tilestage

namespace tilestage {
namespace {

// The format libraries are modules loaded by the ingests only (ingest/modules.h): every other
// command starts without GDAL, netCDF-C, HDF5 or libtiff.
TEST(CliModules, CommandsOtherThanIngestLoadNoFormatLibrary) {
  auto r = RunCommand("LD_DEBUG=libs " + testing::CliPath() + " --version");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("libmpi")) << "LD_DEBUG shows no libraries";
  for (const char* lib : {"libgdal", "libnetcdf", "libhdf5", "libtiff"})
    EXPECT_THAT(r.output, Not(HasSubstr(lib)));
}

TEST(CliModules, MissingModuleIsAClearErrorNamingIt) {
  TempDir dir;
  // The executable alone, without the modules built beside it.
  const std::string exe = dir.Sub("tilestage");
  std::filesystem::copy_file(testing::CliPath(), exe);
  std::filesystem::permissions(exe, std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  const std::string nc = testing::SourceDir() + "/examples/data/netcdf/era5_1995-07-14T12.nc";
  const struct {
    std::string command, module, message;
  } cases[] = {
      {"ingest geotiff " + testing::SharedData("geotiff/RGB.byte.tif"), "libtilestage_gdal.so",
       "GeoTIFF support is not available"},
      {"ingest netcdf --vars t2m " + nc, "libtilestage_formats.so",
       "NetCDF, HDF5 and TIFF-stack support is not available"},
  };
  for (const auto& c : cases) {
    auto r = RunCommand(exe + " " + c.command + " --out " + dir.Sub("store"));
    EXPECT_NE(r.exit_code, 0) << c.command;
    EXPECT_THAT(r.output, HasSubstr(dir.Sub(c.module))) << c.command;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.command;
    EXPECT_FALSE(std::filesystem::exists(dir.Sub("store/manifest.json"))) << c.command;
  }
}

}  // namespace
}  // namespace tilestage
