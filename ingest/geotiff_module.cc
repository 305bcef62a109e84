// The entry point of libtilestage_gdal.so (ingest/modules.h): the GeoTIFF source.
#include "ingest/modules.h"

extern "C" __attribute__((visibility("default"))) const tilestage::ingest::GeoTiffModule*
TilestageGeoTiffModule() {
  static constexpr tilestage::ingest::GeoTiffModule kModule{&tilestage::ingest::OpenGeoTiffSource};
  return &kModule;
}
