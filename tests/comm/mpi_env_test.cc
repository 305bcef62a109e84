// PrepareMpiStartup: which Open MPI defaults a process outside any launcher and the ranks of a
// one-node mpirun run get, and that other launchers, several nodes, and the user's or the site's
// own settings are left alone; and which sockets SendWithoutDelayOnLoopbackConnections changes.
#include "tiling/comm/mpi_env.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "tests/common/test_util.h"

namespace tilestage {
namespace {

// Saves, clears and restores the variables these tests touch.
class MpiEnvTest : public ::testing::Test {
 protected:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_SIZE",
                                           "OMPI_COMM_WORLD_RANK",
                                           "PMIX_RANK",
                                           "PMI_RANK",
                                           "PMI_SIZE",
                                           "PMI_FD",
                                           "OMPI_MCA_ess_singleton_isolated",
                                           "OMPI_MCA_pml",
                                           "OMPI_MCA_btl",
                                           "OMPI_COMM_WORLD_LOCAL_SIZE",
                                           "OMPI_MCA_mca_base_param_files",
                                           "TILESTAGE_MPI_DEFAULTS",
                                           "OMPI_MCA_orte_tmpdir_base",
                                           "HWLOC_COMPONENTS",
                                           "TMPDIR"};
  void SetUp() override {
    for (const char* n : kNames) {
      const char* v = std::getenv(n);
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n);
    }
    // No parameter file of this machine's Open MPI (or the user's) decides the tests.
    ::setenv("OMPI_MCA_mca_base_param_files", files_.Sub("none.conf").c_str(), 1);
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
  testing::TempDir files_;
};

TEST_F(MpiEnvTest, OutsideALauncherSetsIsolatedSingletonOb1AndASessionBaseOfItsOwn) {
  ::setenv("TMPDIR", files_.path().c_str(), 1);
  EXPECT_FALSE(StartedByMpiLauncher());
  const MpiStartup startup = PrepareMpiStartup();
  EXPECT_EQ(Get("OMPI_MCA_ess_singleton_isolated"), "1");
  EXPECT_EQ(Get("OMPI_MCA_pml"), "ob1");
  ASSERT_TRUE(startup.own_session_base.starts_with(files_.Sub("tilestage-mpi-")))
      << startup.own_session_base;
  EXPECT_TRUE(std::filesystem::is_directory(startup.own_session_base));
  EXPECT_EQ(Get("OMPI_MCA_orte_tmpdir_base"), startup.own_session_base);
  EXPECT_EQ(Get("HWLOC_COMPONENTS"), "-pci,-linuxio");
  EXPECT_EQ(startup.set,
            (std::vector<std::string>{"OMPI_MCA_ess_singleton_isolated=1", "OMPI_MCA_pml=ob1",
                                      "HWLOC_COMPONENTS=-pci,-linuxio",
                                      "OMPI_MCA_orte_tmpdir_base=" + startup.own_session_base}));
  // A second singleton (another process: the variable unset again) gets another base.
  ::unsetenv("OMPI_MCA_orte_tmpdir_base");
  EXPECT_NE(PrepareMpiStartup().own_session_base, startup.own_session_base);
}

TEST_F(MpiEnvTest, UserSettingIsNotOverridden) {
  ::setenv("OMPI_MCA_pml", "ucx", 1);
  ::setenv("OMPI_MCA_orte_tmpdir_base", "/scratch/mine", 1);
  EXPECT_EQ(PrepareMpiStartup().set,
            (std::vector<std::string>{"OMPI_MCA_ess_singleton_isolated=1"}));
  EXPECT_EQ(Get("OMPI_MCA_pml"), "ucx");
  EXPECT_EQ(Get("OMPI_MCA_orte_tmpdir_base"), "/scratch/mine");
  EXPECT_EQ(Get("HWLOC_COMPONENTS"), "<unset>");  // UCX may place itself by the I/O topology
}

TEST_F(MpiEnvTest, UserHwlocComponentsAreKept) {
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  ::setenv("HWLOC_COMPONENTS", "-gl", 1);
  EXPECT_EQ(PrepareMpiStartup().set, (std::vector<std::string>{"OMPI_MCA_pml=ob1"}));
  EXPECT_EQ(Get("HWLOC_COMPONENTS"), "-gl");
}

TEST_F(MpiEnvTest, MpirunWithEveryRankOnThisNodeSetsSharedMemoryTransports) {
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  EXPECT_TRUE(StartedByMpiLauncher());
  EXPECT_EQ(PrepareMpiStartup().set,
            (std::vector<std::string>{"OMPI_MCA_pml=ob1", "HWLOC_COMPONENTS=-pci,-linuxio"}));
  EXPECT_EQ(Get("OMPI_MCA_pml"), "ob1");
  EXPECT_EQ(Get("HWLOC_COMPONENTS"), "-pci,-linuxio");
  EXPECT_EQ(Get("OMPI_MCA_ess_singleton_isolated"), "<unset>");
}

TEST_F(MpiEnvTest, MpirunOverSeveralNodesKeepsTheSiteTransports) {
  ::setenv("OMPI_COMM_WORLD_SIZE", "8", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
  EXPECT_TRUE(PrepareMpiStartup().set.empty());
  EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>");
  EXPECT_EQ(Get("HWLOC_COMPONENTS"), "<unset>");
}

TEST_F(MpiEnvTest, AParameterFileChoiceIsNotOverriddenButAnExclusionLeavesItOpen) {
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  const std::string conf = files_.Sub("site.conf");
  std::ofstream(conf) << "# the site's choice\n  pml = ucx\nbtl_tcp_if_include = eth0\n";
  ::setenv("OMPI_MCA_mca_base_param_files", conf.c_str(), 1);
  EXPECT_TRUE(PrepareMpiStartup().set.empty());
  EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>");
  std::ofstream(conf) << "pml = ^ob1,cm\n";  // excludes what we would choose
  EXPECT_TRUE(PrepareMpiStartup().set.empty());
  std::ofstream(conf) << "pml= ^ucx\n";  // Debian's: only excludes UCX
  EXPECT_EQ(PrepareMpiStartup().set,
            (std::vector<std::string>{"OMPI_MCA_pml=ob1", "HWLOC_COMPONENTS=-pci,-linuxio"}));
}

TEST_F(MpiEnvTest, DefaultsOffSetsNothing) {
  ::setenv("TILESTAGE_MPI_DEFAULTS", "off", 1);
  EXPECT_TRUE(PrepareMpiStartup().set.empty());
  ::setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ::setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  EXPECT_TRUE(PrepareMpiStartup().set.empty());
  EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>");
}

TEST_F(MpiEnvTest, UnderAPmiLauncherNothingIsSet) {
  for (const char* name : {"PMIX_RANK", "PMI_RANK"}) {
    ::setenv(name, "0", 1);
    EXPECT_TRUE(StartedByMpiLauncher()) << name;
    EXPECT_TRUE(PrepareMpiStartup().set.empty()) << name;
    EXPECT_EQ(Get("OMPI_MCA_pml"), "<unset>") << name;
    ::unsetenv(name);
  }
}

bool NoDelay(int fd) {
  int on = 0;
  socklen_t size = sizeof on;
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &size), 0) << "fd " << fd;
  return on != 0;
}

// Both ends of a TCP connection over 127.0.0.1 (as a rank and the node's PMIx server hold) get
// TCP_NODELAY; a local (AF_UNIX) socket pair and a listening socket are left alone.
TEST(SendWithoutDelay, SetsNoDelayOnBothEndsOfALoopbackTcpConnectionOnly) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size), 0);
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), size), 0);
  const int server = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(server, 0);
  int local[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, local), 0);
  ASSERT_FALSE(NoDelay(client));
  ASSERT_FALSE(NoDelay(server));

  EXPECT_GE(SendWithoutDelayOnLoopbackConnections(), 2);
  EXPECT_TRUE(NoDelay(client));
  EXPECT_TRUE(NoDelay(server));
  EXPECT_FALSE(NoDelay(listener));
  for (int fd : {client, server, listener, local[0], local[1]}) ::close(fd);
}

}  // namespace
}  // namespace tilestage
