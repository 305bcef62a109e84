// The entry point of libtilestage_gdal.so: the GeoTIFF source (geotiff_source.cc) as a module
// that `tilestage ingest geotiff` loads when it runs (tools/cli/ingest_geotiff.cc). GDAL and the
// ~110 libraries it pulls in take about 60 ms to load and initialize; linked into the executable,
// every other command (a NetCDF ingest, a stage, a load) paid that at start-up.
#include "ingest/geotiff_source.h"

namespace {
using OpenFn = tilestage::Result<std::unique_ptr<tilestage::ingest::Source>> (*)(
    const tilestage::ingest::GeoTiffOptions&);
}  // namespace

extern "C" __attribute__((visibility("default"))) OpenFn TilestageGeoTiffOpenSource() {
  return &tilestage::ingest::OpenGeoTiffSource;
}
