// What the indexing kernels compute per element, written once for the CPU
// loops (runtime/src/cpu/layout.cc) and the CUDA kernels
// (runtime/src/cuda/layout.cu): how ScatterElements and ScatterND combine an
// update with the element it lands on, and TopK's order.
#ifndef ZERO_INDEX_OPS_H
#define ZERO_INDEX_OPS_H

#include <math.h>
#include <stdint.h>

#include "zero/elementwise_ops.h"  // ZERO_HOST_DEVICE

namespace zero::index {

// ONNX's reduction attribute of ScatterElements and ScatterND.
enum class Scatter : int { None, Add, Mul };

template <class T>
ZERO_HOST_DEVICE T combine(Scatter s, T old, T update) {
  return s == Scatter::Add ? T(old + update) : s == Scatter::Mul ? T(old * update) : update;
}

// Whether element a (at index ia of its row) ranks before b (at ib) in
// TopK's order: the larger (smaller) first, NaN above every number, equal
// values (and two NaNs) by index.
ZERO_HOST_DEVICE bool top_k_before(float a, int64_t ia, float b, int64_t ib, bool largest) {
  const bool an = isnan(a), bn = isnan(b);
  if (an || bn) return an && bn ? ia < ib : largest ? an : bn;
  if (a != b) return largest ? a > b : a < b;
  return ia < ib;
}

}  // namespace zero::index

#endif  // ZERO_INDEX_OPS_H
