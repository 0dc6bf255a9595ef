// The sliding window of Conv and pooling over 1, 2 or 3 spatial dimensions
// (NCL, NCHW, NCDHW), written once for the operand checks, the CPU kernels
// and the CUDA kernels. Every geometry is held as 3-D: an operand of rank
// r + 2 has its r spatial dimensions as the last r of (D, H, W) and the
// others of size 1 (kernel 1, stride 1, no padding), so one kernel serves
// every rank and a 2-D window runs the same loops it always did.
// Dependency-free (nvcc compiles it too).
#ifndef ZERO_SLIDING_WINDOW_H
#define ZERO_SLIDING_WINDOW_H

#include <stdint.h>

#include "zero/elementwise_ops.h"  // ZERO_HOST_DEVICE

namespace zero::sliding_window {

constexpr int kMaxSpatial = 3;

struct Window {
  int rank = 2;                        // spatial dimensions of the operands (1 to 3)
  int64_t k[kMaxSpatial] = {1, 1, 1};  // kernel
  int64_t s[kMaxSpatial] = {1, 1, 1};  // strides
  int64_t p[2 * kMaxSpatial] = {};     // begin pads (D, H, W), then end pads
  int64_t d[kMaxSpatial] = {1, 1, 1};  // dilations

  ZERO_HOST_DEVICE int64_t volume() const { return k[0] * k[1] * k[2]; }
};

// The taps j in [j0, j1) of the window at output position o along axis a
// that read x (input position start + j * d in [0, in)), and how many taps
// lie inside the padded input (start + j * d < in + end pad): the
// count_include_pad divisor's factor, less than k only where a ceil_mode
// window reaches past the end padding.
struct Taps {
  int64_t start, j0, j1, padded;
};

ZERO_HOST_DEVICE Taps window_taps(const Window& w, int a, int64_t in, int64_t o) {
  const int64_t start = o * w.s[a] - w.p[a], d = w.d[a], k = w.k[a];
  const int64_t j0 = start >= 0 ? 0 : (-start + d - 1) / d;
  const int64_t last = in - 1 - start, last_padded = in + w.p[kMaxSpatial + a] - 1 - start;
  const int64_t j1 = last < 0 ? 0 : (last / d + 1 < k ? last / d + 1 : k);
  const int64_t padded = last_padded < 0 ? 0 : (last_padded / d + 1 < k ? last_padded / d + 1 : k);
  return Taps{start, j0, j1 > j0 ? j1 : j0, padded};
}

// An average pool's divisor for a window of taps t[kMaxSpatial]: the taps
// inside the padded input with count_include_pad, else those reading x.
ZERO_HOST_DEVICE float pool_divisor(const Taps* t, bool include_pad) {
  int64_t n = 1;
  for (int a = 0; a < kMaxSpatial; ++a) n *= include_pad ? t[a].padded : t[a].j1 - t[a].j0;
  return float(n);
}

}  // namespace zero::sliding_window

#endif  // ZERO_SLIDING_WINDOW_H
