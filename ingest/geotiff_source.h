// The GeoTIFF source: any raster GDAL reads (GeoTIFF striped/tiled/COG/BigTIFF, any compression,
// u8..f64), one scene per file, or several single-band files stacked into one scene. Optional
// reprojection/resampling with GDAL's warper to one target CRS and resolution, and an aligned
// label raster (warped onto each scene's grid with nearest neighbour) as field y.
//
// Warping is lazy: GDALWarp writes a warped VRT to /vsimem (one per scene), and every reader
// thread opens its own GDAL dataset handle on it (GDAL is safe with one handle per thread), so
// pixels are reprojected once, in parallel, at ingest. Warps use the exact transformer (-et 0)
// and one kernel scale per scene (-wo XSCALE/YSCALE: the source resolution in target units over
// --res, kept in the manifest as the scene's warp_scale), so a stored tile equals
// `gdalwarp -et 0 -wo XSCALE=.. -wo YSCALE=..` with the same -t_srs/-tr/-tap/-r exactly, for
// near, bilinear, cubic and the rest, however GDAL chunks the work (GDAL's default scale is
// computed per chunk, so plain gdalwarp's bilinear/cubic pixels depend on its chunking). Stored as
// float (--dtype f32/f64) integer bands are warped as float (-ot), not rounded first. With --res
// the target grid is pixel-aligned (-tap), so all scenes share one grid.
//
// Validity: a band's nodata value is passed to the driver (FieldInfo::nodata) when every scene
// agrees on it; otherwise, and for mask bands and alpha bands (GDALGetMaskFlags), readers return
// GDAL's mask band as RegionData masks. An alpha band is a mask, not a channel: it is left out
// unless --bands names it. When warping bands without nodata, an alpha band is added (-dstalpha)
// so pixels outside the source footprint are invalid rather than 0. Masked pixels are also
// invalid in the stored values, for every dtype: they hold the channel's nodata value, NaN for
// float data (or data stored as float) without one, and for integer data without one a nodata
// value chosen here
// (GeoTiffOptions::dst_nodata, else the type's maximum, or minimum when signed) and recorded in
// the manifest like a file's nodata. A valid pixel equal to a chosen value is refused (naming the
// file, band and pixel), since it would turn invalid.
//
// Thread-safety: as for every Source (ingest/source.h). Building the source (OpenGeoTiffSource)
// is single-threaded.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ingest/source.h"
#include "tiling/status.h"

namespace tilestage::ingest {

struct GeoTiffOptions {
  std::vector<std::string> files;  // each one scene, or all stacked into one with stack_bands
  std::vector<int> bands;          // 1-based; empty: every band but an alpha band
  // Each file contributes its (single) band as one channel of a single scene, in file order;
  // --bands then selects among the stacked channels. Grids must match exactly.
  bool stack_bands = false;
  std::string dst_crs;  // "EPSG:32618", a WKT or PROJ string; empty: keep each scene's CRS
  std::optional<std::pair<double, double>> res;  // target pixel size (x, y), target CRS units
  // GDAL resampling name (near, bilinear, cubic, average, mode...); empty: near for integer data,
  // bilinear for floating-point data.
  std::string resampling;
  // Label rasters for field y: none, one for every scene, or one per scene (in scene order).
  std::vector<std::string> labels;
  // The nodata value of integer x channels without one whose pixels a mask marks invalid (see
  // above); unset: the type's maximum (unsigned) or minimum (signed).
  std::optional<double> dst_nodata;
  // The dtype the store keeps x as (DriverOptions::x_dtype), when not the bands' own: stored as
  // float, masked integer pixels become NaN in the driver and need no chosen nodata value.
  std::optional<DType> store_dtype;
};

// Opens every input, checks bands, grids and types, and prepares warped VRTs. Errors name the
// file and the problem: NotFound (missing file), InvalidArgument (not a raster, bad --bands,
// stacked grids differ...), Unimplemented (complex data).
Result<std::unique_ptr<Source>> OpenGeoTiffSource(const GeoTiffOptions& options);

}  // namespace tilestage::ingest
