// The nodata value tilestage picks when a stored field needs one and has none (which values a
// dtype can hold is tiling's RepresentsExactly). Plain functions: thread-safe.
#pragma once

#include "tiling/dtype.h"

namespace tilestage::ingest {

// The nodata value tilestage picks for an integer field that has none but must mark pixels
// invalid (masked, padded, NaN converted to integers): the end of the type's range farthest from
// typical data, the maximum of unsigned types and the minimum of signed ones, as GDAL tools
// commonly pick it. NaN for float types, where NaN itself marks invalid pixels.
double DefaultNodata(DType dtype);

}  // namespace tilestage::ingest
