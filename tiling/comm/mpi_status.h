// The one mapping from an MPI return code to a Status, for this folder's MPI code only: IOError
// "<call>: <MPI's error string>". Thread-safety: as the MPI calls they wrap.
#pragma once

// The C API only: Open MPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>
#include <string>

#include "tiling/status.h"

namespace tilestage::comm_internal {

inline Status MpiStatus(int code, const char* call) {
  if (code == MPI_SUCCESS) return Status::Ok();
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, message, &length) != MPI_SUCCESS)
    return IOError(call, ": MPI error ", code);
  return IOError(call, ": ", std::string(message, length));
}

// For destructors, which cannot return a Status: a failed release is at least reported.
inline void ReportMpiFailure(int code, const char* call) {
  const Status status = MpiStatus(code, call);
  if (!status.ok()) std::fprintf(stderr, "tilestage: %s\n", status.ToString().c_str());
}

}  // namespace tilestage::comm_internal
