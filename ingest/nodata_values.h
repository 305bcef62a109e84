// The values that mark missing pixels in stored fields: which nodata values a dtype can hold, and
// the one tilestage picks when a field needs one and has none. Plain functions: thread-safe.
#pragma once

#include "tiling/dtype.h"

namespace tilestage::ingest {

// True when `value` is a value of `dtype`: for float types one in range (or NaN, or infinite),
// compared after a cast; for integer types one in range and integral.
bool RepresentsExactly(DType dtype, double value);

// The nodata value tilestage picks for an integer field that has none but must mark pixels
// invalid (masked, padded, NaN converted to integers): the end of the type's range farthest from
// typical data, the maximum of unsigned types and the minimum of signed ones, as GDAL tools
// commonly pick it. NaN for float types, where NaN itself marks invalid pixels.
double DefaultNodata(DType dtype);

}  // namespace tilestage::ingest
