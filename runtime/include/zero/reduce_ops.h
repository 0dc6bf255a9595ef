// The reductions of the Reduce* opcodes, written once for the CPU loops
// (runtime/src/cpu/layout.cc) and the CUDA kernels (runtime/src/cuda/layout.cu):
// each output starts from init(), takes each of its elements through
// combine(acc, load(x)) (and partial results through combine), and ends as
// finish(acc, count). Accumulators are double.
#ifndef ZERO_REDUCE_OPS_H
#define ZERO_REDUCE_OPS_H

#include <math.h>
#include <stdint.h>

#include "zero/elementwise_ops.h"  // ZERO_HOST_DEVICE

namespace zero::reduce {

enum class Kind : int { Sum, Mean, Max, Min, Prod, L2 };

ZERO_HOST_DEVICE double init(Kind k) {
  return k == Kind::Max ? -HUGE_VAL : k == Kind::Min ? HUGE_VAL : k == Kind::Prod ? 1.0 : 0.0;
}
ZERO_HOST_DEVICE double load(Kind k, float x) { return k == Kind::L2 ? double(x) * double(x) : double(x); }
// Max and Min propagate NaN (numpy's maximum.reduce, torch.amax).
ZERO_HOST_DEVICE double combine(Kind k, double acc, double v) {
  switch (k) {
    case Kind::Max:
      return isnan(acc) || v <= acc ? acc : v;
    case Kind::Min:
      return isnan(acc) || v >= acc ? acc : v;
    case Kind::Prod:
      return acc * v;
    default:
      return acc + v;
  }
}
ZERO_HOST_DEVICE float finish(Kind k, double acc, int64_t count) {
  return float(k == Kind::Mean ? acc / double(count) : k == Kind::L2 ? sqrt(acc) : acc);
}

}  // namespace zero::reduce

#endif  // ZERO_REDUCE_OPS_H
