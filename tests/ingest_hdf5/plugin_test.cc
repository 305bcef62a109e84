// A filter whose plugin cannot be found: the error names the filter id and the Debian package.
// Runs hdf5_open_probe in a subprocess so the plugin search path can be emptied.
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace tilestage::testing {
namespace {

TEST(Hdf5Plugins, BitshuffleAndBloscReadWithTheDebianPlugins) {
  for (const char* file : {"hdf5/bitshuffle.h5", "hdf5/blosc.h5"}) {
    auto r = RunCommand(std::string(TILESTAGE_HDF5_PROBE) + " " + SharedData(file));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("OK "), std::string::npos) << r.output;
  }
}

TEST(Hdf5Plugins, MissingBitshufflePluginNamesFilterAndPackage) {
  TempDir empty;
  auto r = RunCommand("HDF5_PLUGIN_PATH=" + empty.path() + " " + TILESTAGE_HDF5_PROBE + " " +
                      SharedData("hdf5/bitshuffle.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("FailedPrecondition"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("filter 32008 (bitshuffle"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Debian package bitshuffle"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/entry/data/data"), std::string::npos) << r.output;
}

TEST(Hdf5Plugins, MissingBloscPluginNamesFilterAndPackage) {
  TempDir empty;
  auto r = RunCommand("HDF5_PLUGIN_PATH=" + empty.path() + " " + TILESTAGE_HDF5_PROBE + " " +
                      SharedData("hdf5/blosc.h5"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("filter 32001 (blosc"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hdf5-filter-plugin-blosc-serial"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tilestage::testing
