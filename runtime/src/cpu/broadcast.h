// Loops over broadcast operands shared by the CPU kernels.
#ifndef ZERO_RUNTIME_CPU_BROADCAST_H
#define ZERO_RUNTIME_CPU_BROADCAST_H

#include <cstdint>

#include "backend.h"

namespace zero {

// Calls f(out_index, a_index, b_index) for every element of `shape`, walking
// the leading dimensions with an odometer and the last one in a tight loop.
template <class F>
void for_each_broadcast(const Tensor& shape, const int64_t* sa, const int64_t* sb, F f) {
  if (shape.numel == 0) return;
  if (shape.ndim == 0) {
    f(0, 0, 0);
    return;
  }
  const int last = shape.ndim - 1;
  const int64_t n = shape.dims[last], la = sa[last], lb = sb[last];
  int64_t idx[kMaxRank] = {};
  int64_t ia = 0, ib = 0;
  for (int64_t o = 0; o < shape.numel; o += n) {
    for (int64_t k = 0; k < n; ++k) f(o + k, ia + k * la, ib + k * lb);
    for (int d = last - 1; d >= 0; --d) {
      ia += sa[d];
      ib += sb[d];
      if (++idx[d] < shape.dims[d]) break;
      ia -= sa[d] * shape.dims[d];
      ib -= sb[d] * shape.dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace zero

#endif  // ZERO_RUNTIME_CPU_BROADCAST_H
