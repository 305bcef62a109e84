// How MPI ranks share an ingest: contiguous blocks of items per rank (so concatenating the ranks'
// records in rank order gives item order for any rank count), and the job's communicator
// (tiling/comm) through which the driver gathers and broadcasts, called from the main thread only.
//
// World() is a single rank when MPI was not initialized (a plain run outside mpirun), so callers
// never branch on MPI themselves. Functions other than ItemBlock are collective: every rank of
// the world must call them in the same order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tiling/comm/communicator.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct RankInfo {
  int rank = 0;
  int size = 1;
  // The world communicator; never null in a RankInfo from World().
  std::shared_ptr<Communicator> comm;
};

// Collective: the job's ranks (a single-process communicator when MPI is not running).
Result<RankInfo> World();

// Items [begin, end) of rank `rank` out of `size`: contiguous, sizes differ by at most one.
struct ItemRange {
  int64_t begin = 0;
  int64_t end = 0;
};
ItemRange ItemBlock(int64_t num_items, int rank, int size);

// Rank 0 receives every rank's bytes in rank order (other ranks get an empty vector).
inline Result<std::vector<std::string>> GatherToRoot(const RankInfo& world,
                                                     const std::string& bytes) {
  return world.comm->GatherBytes(bytes, 0);
}
// Every rank receives rank 0's bytes.
inline Result<std::string> BroadcastFromRoot(const RankInfo& world, const std::string& bytes) {
  std::string out = bytes;
  TS_RETURN_IF_ERROR(world.comm->BroadcastBytes(&out, 0));
  return out;
}

}  // namespace tilestage::ingest
