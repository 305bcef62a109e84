// The sources whose libraries are costly to load live in modules beside the tilestage executable,
// loaded when a command needs them: libtilestage_gdal.so (the GeoTIFF source: GDAL and its ~110
// libraries, ~50 ms to load) and libtilestage_formats.so (the NetCDF, HDF5 and TIFF-stack sources:
// netCDF-C, HDF5 and libtiff with ~45 libraries, ~7 ms). Linked into the executable, every command
// (a stage, a load, a verify) paid for loading them at start-up. Tests link the sources' static
// libraries (tilestage::geotiff, tilestage::ingest_formats) directly instead.
//
// Thread-safety: loading is thread-safe (dlopen is); a module, once loaded, stays loaded.
// LimitGdalBlasThreads changes the environment: call it before any other thread starts.
#pragma once

#include <memory>
#include <string>

#include "ingest/geotiff_source.h"
#include "ingest/hdf5_source.h"
#include "ingest/netcdf_source.h"
#include "ingest/source.h"
#include "ingest/tiff_stack_source.h"
#include "tiling/status.h"

namespace tilestage::ingest {

// libtilestage_formats.so.
struct FormatsModule {
  Result<std::unique_ptr<Source>> (*open_netcdf)(const NetcdfSourceOptions& options);
  Result<std::unique_ptr<Source>> (*open_hdf5)(const Hdf5SourceOptions& options);
  Result<std::unique_ptr<Source>> (*open_tiff_stack)(const TiffStackSourceOptions& options);
  // ShiftNetcdfTime (ingest/netcdf_edit.h).
  Status (*shift_netcdf_time)(const std::string& path, double offset);
};

// libtilestage_gdal.so.
struct GeoTiffModule {
  Result<std::unique_ptr<Source>> (*open_geotiff)(const GeoTiffOptions& options);
};

// The directory of the running executable (where its modules are).
Result<std::string> ExecutableDir();

// The module in `dir`. FailedPrecondition naming the module's path when it is missing or is not
// a tilestage module of this build.
Result<const FormatsModule*> LoadFormatsModule(const std::string& dir);
Result<const GeoTiffModule*> LoadGeoTiffModule(const std::string& dir);

// Sets OPENBLAS_NUM_THREADS=1 unless the user set it, for a later LoadGeoTiffModule: Debian's
// GDAL pulls in OpenBLAS (through Armadillo), which starts a thread per core as it loads, each
// spinning in sched_yield for a while; the GeoTIFF source never calls BLAS, and on a 2-core node
// the spinning took ~0.07 of the 0.45 CPU s of a 200 MB ingest. Not part of loading the module,
// which `ingest geotiff` does after MPI has started threads of its own.
void LimitGdalBlasThreads();

}  // namespace tilestage::ingest
