#include "ingest/mpi_split.h"

// The C API only: Open MPI's deprecated C++ bindings need a library we do not link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

namespace tilestage::ingest {

RankInfo World() {
  RankInfo info;
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return info;
  info.mpi = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &info.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &info.size);
  return info;
}

ItemRange ItemBlock(int64_t num_items, int rank, int size) {
  if (size <= 0 || num_items <= 0) return {};
  const int64_t base = num_items / size, extra = num_items % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

Status MpiStatus(int error_code, const char* call) {
  if (error_code == MPI_SUCCESS) return Status::Ok();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(error_code, text, &length);
  return IOError(call, " failed: ", std::string(text, length));
}

Result<std::vector<std::string>> GatherToRoot(const RankInfo& world, const std::string& bytes) {
  std::vector<std::string> out;
  if (!world.mpi || world.size == 1) {
    out.push_back(bytes);
    return out;
  }
  // MPI counts are int: payloads here are manifests' worth of JSON, far below 2 GiB.
  int length = static_cast<int>(bytes.size());
  std::vector<int> lengths(world.rank == 0 ? world.size : 0);
  TS_RETURN_IF_ERROR(
      MpiStatus(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD),
                "MPI_Gather"));
  std::vector<int> displs(lengths.size());
  std::string all;
  if (world.rank == 0) {
    int64_t total = 0;
    for (int r = 0; r < world.size; ++r) {
      displs[r] = static_cast<int>(total);
      total += lengths[r];
    }
    all.resize(total);
  }
  TS_RETURN_IF_ERROR(
      MpiStatus(MPI_Gatherv(bytes.data(), length, MPI_CHAR, all.data(), lengths.data(),
                            displs.data(), MPI_CHAR, 0, MPI_COMM_WORLD),
                "MPI_Gatherv"));
  if (world.rank == 0)
    for (int r = 0; r < world.size; ++r) out.push_back(all.substr(displs[r], lengths[r]));
  return out;
}

Result<std::string> BroadcastFromRoot(const RankInfo& world, const std::string& bytes) {
  if (!world.mpi || world.size == 1) return bytes;
  uint64_t length = bytes.size();
  TS_RETURN_IF_ERROR(
      MpiStatus(MPI_Bcast(&length, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast"));
  std::string out = world.rank == 0 ? bytes : std::string(length, '\0');
  TS_RETURN_IF_ERROR(MpiStatus(
      MPI_Bcast(out.data(), static_cast<int>(length), MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast"));
  return out;
}

}  // namespace tilestage::ingest
