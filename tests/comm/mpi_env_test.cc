// PrepareSingletonMpi: which Open MPI defaults a process outside any launcher gets, and that a
// launcher's or the user's own settings are left alone.
#include "tiling/comm/mpi_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace tilestage {
namespace {

// Saves, clears and restores the variables these tests touch.
class MpiEnvTest : public ::testing::Test {
 protected:
  static constexpr const char* kNames[] = {
      "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
      "PMI_FD", "OMPI_MCA_ess_singleton_isolated", "OMPI_MCA_pml"};
  void SetUp() override {
    for (const char* n : kNames) {
      const char* v = std::getenv(n);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
  }
  void TearDown() override {
    for (size_t i = 0; i < saved_.size(); ++i) {
      if (saved_[i]) ::setenv(kNames[i], saved_[i]->c_str(), 1);
      else ::unsetenv(kNames[i]);
    }
  }
  static std::string Get(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "<unset>";
  }
  std::vector<std::optional<std::string>> saved_;
};

TEST_F(MpiEnvTest, OutsideALauncherSetsIsolatedSingletonAndOb1) {
  EXPECT_FALSE(StartedByMpiLauncher());
  const auto set = PrepareSingletonMpi();
  EXPECT_EQ(Get("OMPI_MCA_ess_singleton_isolated"), "1");
  EXPECT_EQ(Get("OMPI_MCA_pml"), "ob1");
  EXPECT_EQ(set, (std::vector<std::string>{"OMPI_MCA_ess_singleton_isolated=1",
                                           "OMPI_MCA_pml=ob1"}));
}

TEST_F(MpiEnvTest, UserSettingIsNotOverridden) {
  ::setenv("OMPI_MCA_pml", "ucx", 1);
  const auto set = PrepareSingletonMpi();
  EXPECT_EQ(Get("OMPI_MCA_pml"), "ucx");
  EXPECT_EQ(set, (std::vector<std::string>{"OMPI_MCA_ess_singleton_isolated=1"}));
}

TEST_F(MpiEnvTest, UnderOpenMpiMpirunNothingIsSet) {
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  EXPECT_TRUE(StartedByMpiLauncher());
  EXPECT_TRUE(PrepareSingletonMpi().empty());
  EXPECT_EQ(Get("OMPI_MCA_ess_singleton_isolated"), "<unset>");
  EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>");
}

TEST_F(MpiEnvTest, UnderAPmiLauncherNothingIsSet) {
  for (const char* name : {"PMIX_RANK", "PMI_RANK"}) {
    ::setenv(name, "0", 1);
    EXPECT_TRUE(StartedByMpiLauncher()) << name;
    EXPECT_TRUE(PrepareSingletonMpi().empty()) << name;
    EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>") << name;
    ::unsetenv(name);
  }
}

}  // namespace
}  // namespace tilestage
