#include "ingest/nodata_values.h"

#include <limits>
#include <type_traits>

namespace tilestage::ingest {

double DefaultNodata(DType dtype) {
  return VisitDType(dtype, [](auto zero) -> double {
    using T = decltype(zero);
    if constexpr (std::is_floating_point_v<T>)
      return std::numeric_limits<double>::quiet_NaN();
    else if constexpr (std::is_signed_v<T>)
      return static_cast<double>(std::numeric_limits<T>::lowest());
    else
      return static_cast<double>(std::numeric_limits<T>::max());
  });
}

}  // namespace tilestage::ingest
