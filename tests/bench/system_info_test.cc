#include "bench/e2e/system_info.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/common/test_util.h"

namespace tilestage::bench {
namespace {

namespace fs = std::filesystem;
using ::tilestage::testing::TempDir;

TEST(SystemInfo, FindSourceRootWalksUpFromTheBinary) {
  TempDir dir;
  fs::create_directories(dir.Sub("examples/data"));
  fs::create_directories(dir.Sub("bench/e2e_run"));
  fs::create_directories(dir.Sub("build/release/tools"));
  std::ofstream(dir.Sub("examples/data/README.md")) << "data";
  std::ofstream(dir.Sub("bench/e2e_run/peers.py")) << "";
  auto root = FindSourceRoot(dir.Sub("build/release/tools/tilestage"));
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(*root, dir.path());
}

TEST(SystemInfo, NoSourceTreeIsNotFoundNamingTheBinary) {
  TempDir dir;
  // The working directory is the fallback: make it one without a source tree.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  auto root = FindSourceRoot(dir.Sub("bin/tilestage"));
  fs::current_path(cwd);
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), StatusCode::kNotFound);
  EXPECT_NE(root.status().message().find(dir.Sub("bin/tilestage")), std::string::npos);
}

TEST(SystemInfo, NamesTheMachine) {
  const Json j = SystemInfo();
  for (const char* k : {"host", "cpu", "cores", "memory_bytes", "compiler", "mpi", "gemm_kernel"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_GT(j["memory_bytes"].get<double>(), 0);
}

TEST(SystemInfo, CommandFirstLineIsTheFirstLineOrEmpty) {
  EXPECT_EQ(CommandFirstLine({"printf", "'first\\nsecond\\n'"}), "first");
  EXPECT_EQ(NowUtc().size(), 20u);
}

// A child this process does not wait for counts as another process: spinning a core for a
// second while the watch runs must show as other CPU time, with the warning.
TEST(SystemInfo, CoreUseWatchWarnsWhenAnotherProcessBusiesACore) {
  const CoreUseWatch watch;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    volatile uint64_t spins = 0;
    while (std::chrono::steady_clock::now() < end) spins = spins + 1;
    _exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const Json use = watch.Finish();
  waitpid(child, nullptr, 0);
  EXPECT_GE(use["others_cpu_s"].get<double>(), 0.5) << use.dump();
  EXPECT_GE(use["wall_s"].get<double>(), 1.0) << use.dump();
  EXPECT_TRUE(use["warning"].is_string()) << use.dump();
  EXPECT_FALSE(use["load_average_before"].get<std::string>().empty());
}

}  // namespace
}  // namespace tilestage::bench
