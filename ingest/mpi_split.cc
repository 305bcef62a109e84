#include "ingest/mpi_split.h"

#include <algorithm>

namespace tilestage::ingest {

Result<RankInfo> World() {
  TS_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, NewWorldCommunicator());
  RankInfo info;
  info.rank = comm->rank();
  info.size = comm->size();
  info.comm = std::move(comm);
  return info;
}

ItemRange ItemBlock(int64_t num_items, int rank, int size) {
  if (size <= 0 || num_items <= 0) return {};
  const int64_t base = num_items / size, extra = num_items % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

}  // namespace tilestage::ingest
