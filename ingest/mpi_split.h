// How MPI ranks share an ingest: contiguous blocks of items per rank (so concatenating the ranks'
// records in rank order gives item order for any rank count), and the few collectives the driver
// needs, all called from the main thread only (MPI_THREAD_FUNNELED is enough).
//
// World() is a single rank when MPI was not initialized (a plain run outside mpirun), so callers
// never branch on MPI themselves. Functions other than ItemBlock are collective: every rank of
// MPI_COMM_WORLD must call them in the same order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tiling/status.h"

namespace tilestage::ingest {

struct RankInfo {
  int rank = 0;
  int size = 1;
  bool mpi = false;  // MPI is initialized (and not finalized)
};

RankInfo World();

// Items [begin, end) of rank `rank` out of `size`: contiguous, sizes differ by at most one.
struct ItemRange {
  int64_t begin = 0;
  int64_t end = 0;
};
ItemRange ItemBlock(int64_t num_items, int rank, int size);

// Rank 0 receives every rank's bytes in rank order (other ranks get an empty vector).
Result<std::vector<std::string>> GatherToRoot(const RankInfo& world, const std::string& bytes);
// Every rank receives rank 0's bytes.
Result<std::string> BroadcastFromRoot(const RankInfo& world, const std::string& bytes);
// Turns an MPI error code into a Status naming the call.
Status MpiStatus(int error_code, const char* call);

}  // namespace tilestage::ingest
