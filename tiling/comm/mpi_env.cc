#include "tiling/comm/mpi_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>  // mkdtemp
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "tiling/comm/mpi_status.h"

namespace tilestage {

bool StartedByMpiLauncher() {
  // Open MPI's mpirun; PMIx launchers (Open MPI >= 4, srun --mpi=pmix); PMI-1/2 launchers
  // (MPICH/Intel MPI hydra, srun --mpi=pmi2); MPICH's hydra also sets MPI_LOCALNRANKS.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                           "PMI_RANK", "PMI_SIZE", "PMI_FD", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

namespace {

// The MCA parameters Open MPI's parameter files set, with their values: the files named by
// OMPI_MCA_mca_base_param_files, else the system's and the user's default files.
std::map<std::string, std::string> ParametersInFiles() {
  std::vector<std::string> files;
  if (const char* named = std::getenv("OMPI_MCA_mca_base_param_files")) {
    std::stringstream list(named);
    for (std::string f; std::getline(list, f, ':');) files.push_back(f);
  } else {
    files.push_back("/etc/openmpi/openmpi-mca-params.conf");
    if (const char* home = std::getenv("HOME"))
      files.push_back(std::string(home) + "/.openmpi/mca-params.conf");
  }
  std::map<std::string, std::string> parameters;
  for (const std::string& file : files) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      const size_t start = line.find_first_not_of(" \t");
      const size_t equals = line.find('=');
      if (start == std::string::npos || line[start] == '#' || equals == std::string::npos) continue;
      auto trim = [&](size_t from, size_t to) {
        const size_t a = line.find_first_not_of(" \t", from);
        const size_t b = line.find_last_not_of(" \t", to - 1);
        return a < to && b != std::string::npos && b >= a ? line.substr(a, b - a + 1) : "";
      };
      parameters[trim(start, equals)] = trim(equals + 1, line.size());
    }
  }
  return parameters;
}

// A file's value leaves the choice to us when it only excludes components ("^ucx") and not the
// one we would pick.
bool FileLeavesChoice(const std::string& file_value, const std::string& ours) {
  if (!file_value.starts_with('^')) return false;
  std::stringstream excluded(file_value.substr(1));
  for (std::string c; std::getline(excluded, c, ',');)
    if (c == ours) return false;
  return true;
}

bool DefaultsTurnedOff() {
  const char* choice = std::getenv("TILESTAGE_MPI_DEFAULTS");
  return choice && std::string(choice) == "off";
}

bool IsLoopback(const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(peer);
    return (ntohl(v4.sin_addr.s_addr) >> 24) == 127;
  }
  if (peer.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(peer);
    return IN6_IS_ADDR_LOOPBACK(&v6.sin6_addr) ||
           (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr) && v6.sin6_addr.s6_addr[12] == 127);
  }
  return false;
}

bool AllRanksOnThisNode() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  return size && local && std::string(size) == local;
}

}  // namespace

MpiStartup PrepareMpiStartup() {
  MpiStartup startup;
  if (DefaultsTurnedOff()) return startup;
  std::vector<std::pair<std::string, std::string>> defaults;
  if (!StartedByMpiLauncher()) {
    // isolated: no supporting daemon (it only serves MPI_Comm_spawn, which tilestage never
    // calls). pml ob1: the shared-memory/self point-to-point layer instead of UCX, whose start-up
    // probes network devices a single process never uses.
    defaults = {{"ess_singleton_isolated", "1"}, {"pml", "ob1"}};
  } else if (AllRanksOnThisNode()) {
    // ob1 over shared memory instead of probing UCX and the cm layer's network libraries.
    defaults = {{"pml", "ob1"}};
  }
  if (defaults.empty()) return startup;
  const std::map<std::string, std::string> in_files = ParametersInFiles();
  for (const auto& [parameter, value] : defaults) {
    const std::string name = "OMPI_MCA_" + parameter;
    const auto file = in_files.find(parameter);
    if (std::getenv(name.c_str()) != nullptr ||
        (file != in_files.end() && !FileLeavesChoice(file->second, value)))
      continue;
    if (::setenv(name.c_str(), value.c_str(), /*overwrite=*/0) == 0)
      startup.set.push_back(name + "=" + value);
  }
  // MPI_Init reads the node's topology through hwloc; its PCI and Linux I/O discovery (network,
  // block and DAX devices) only serves placing network transports, which ob1 over shared memory
  // does not use: 20-30 ms of a `mpirun -np 2` rank's 85-120 ms MPI_Init here.
  const bool chose_ob1 = std::ranges::find(startup.set, "OMPI_MCA_pml=ob1") != startup.set.end();
  if (chose_ob1 && std::getenv("HWLOC_COMPONENTS") == nullptr &&
      ::setenv("HWLOC_COMPONENTS", "-pci,-linuxio", /*overwrite=*/0) == 0)
    startup.set.push_back("HWLOC_COMPONENTS=-pci,-linuxio");
  // Every isolated singleton has the same job name, so concurrent ones would share (and race to
  // create and remove) one session directory under the default base: each gets its own base.
  const bool isolated =
      !startup.set.empty() && startup.set.front().starts_with("OMPI_MCA_ess_singleton_isolated=");
  if (isolated && std::getenv("OMPI_MCA_orte_tmpdir_base") == nullptr &&
      !in_files.count("orte_tmpdir_base")) {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = std::string(tmp && *tmp ? tmp : "/tmp") + "/tilestage-mpi-XXXXXX";
    if (::mkdtemp(base.data()) != nullptr &&
        ::setenv("OMPI_MCA_orte_tmpdir_base", base.c_str(), /*overwrite=*/0) == 0) {
      startup.set.push_back("OMPI_MCA_orte_tmpdir_base=" + base);
      startup.own_session_base = base;
    }
  }
  return startup;
}

int SendWithoutDelayOnLoopbackConnections() {
  int changed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    int type = 0;
    socklen_t type_size = sizeof type;
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_size) != 0 || type != SOCK_STREAM ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0 || !IsLoopback(peer))
      continue;
    const int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++changed;
  }
  return changed;
}

Result<std::unique_ptr<MpiSession>> MpiSession::Start(When when) {
  int initialized = 0;
  TS_RETURN_IF_ERROR(comm_internal::MpiStatus(MPI_Initialized(&initialized), "MPI_Initialized"));
  if (initialized || (when == When::kUnderLauncher && !StartedByMpiLauncher()))
    return std::unique_ptr<MpiSession>(new MpiSession(false, ""));
  // No singleton daemon, no UCX start-up where shared memory is enough.
  const MpiStartup startup = PrepareMpiStartup();
  // From here the session owns the singleton's session base, and removes it when it ends.
  std::unique_ptr<MpiSession> session(new MpiSession(false, startup.own_session_base));
  int provided = 0;
  TS_RETURN_IF_ERROR(comm_internal::MpiStatus(
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread"));
  session->initialized_here_ = true;
  if (StartedByMpiLauncher() && !DefaultsTurnedOff()) SendWithoutDelayOnLoopbackConnections();
  if (provided < MPI_THREAD_FUNNELED)
    return FailedPrecondition("MPI_Init_thread: the MPI library provides thread level ", provided,
                              ", tilestage needs MPI_THREAD_FUNNELED");
  return session;
}

MpiSession::~MpiSession() {
  int finalized = 0;
  if (initialized_here_ && MPI_Finalized(&finalized) == MPI_SUCCESS && !finalized)
    comm_internal::ReportMpiFailure(MPI_Finalize(), "MPI_Finalize");
  std::error_code ignored;
  if (!own_session_base_.empty()) std::filesystem::remove_all(own_session_base_, ignored);
}

}  // namespace tilestage
