// The entry point of libtilestage_formats.so (ingest/modules.h): the NetCDF, HDF5 and TIFF-stack
// sources.
#include "ingest/modules.h"
#include "ingest/netcdf_edit.h"

extern "C" __attribute__((visibility("default"))) const tilestage::ingest::FormatsModule*
TilestageFormatsModule() {
  namespace ingest = tilestage::ingest;
  static constexpr ingest::FormatsModule kModule{&ingest::OpenNetcdfSource, &ingest::OpenHdf5Source,
                                                 &ingest::OpenTiffStackSource,
                                                 &ingest::ShiftNetcdfTime};
  return &kModule;
}
