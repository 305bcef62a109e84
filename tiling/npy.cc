#include "tiling/npy.h"

#include <string>

namespace tilestage {

std::vector<uint8_t> EncodeNpy(const Array& array) {
  std::string shape;
  for (size_t i = 0; i < array.shape.size(); ++i) {
    // numpy writes a one-element tuple as "(n,)".
    const bool comma = array.shape.size() == 1 || i + 1 < array.shape.size();
    shape += std::to_string(array.shape[i]) + (comma ? "," : "");
  }
  std::string header = std::string("{'descr': '") + DTypeNumpy(array.dtype) +
                       "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Magic (6) + version (2) + header length (2) + header + '\n' is padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.push_back(static_cast<uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), array.data.begin(), array.data.end());
  return out;
}

}  // namespace tilestage
