#include "ingest/nodata_values.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace tilestage::ingest {

bool RepresentsExactly(DType dtype, double value) {
  return VisitDType(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_floating_point_v<T>)
      return !(std::abs(value) > static_cast<double>(std::numeric_limits<T>::max())) ||
             std::isinf(value);
    else
      return value >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
             value <= static_cast<double>(std::numeric_limits<T>::max()) &&
             static_cast<double>(static_cast<T>(value)) == value;
  });
}

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
