// The static shape rules the compiler and the runtime must agree on, written
// once: the dialect verifiers and builders (dialects/ShapeUtils.h wraps these
// for MLIR types) and the runtime's load-time operand checks
// (runtime/src/kernel_checks/) both call them. Dependency-free.
#ifndef ZERO_SHAPE_RULES_H
#define ZERO_SHAPE_RULES_H

#include <cstdint>

namespace zero::shape_rules {

// numpy broadcasting of one dimension pair (right-aligned; a missing
// dimension is 1): the result, or -1 if they are incompatible.
constexpr int64_t broadcast_dim(int64_t a, int64_t b) { return a == b || b == 1 ? a : a == 1 ? b : -1; }

// An ONNX axis (negative counts from the end) as an index into [0, rank);
// false if outside [-rank, rank).
constexpr bool normalize_axis(int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank) return false;
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

// Output positions of a sliding window (Conv, pooling) along an axis of `in`
// elements padded by pad_begin and pad_end, or -1 if no window fits. With
// ceil_mode the count rounds up as PyTorch (and ONNX opset 19) do, but the
// last window must start inside the input or the begin padding.
constexpr int64_t window_output_size(int64_t in, int64_t pad_begin, int64_t pad_end, int64_t kernel, int64_t dilation,
                                     int64_t stride, bool ceil_mode) {
  const int64_t room = in + pad_begin + pad_end - dilation * (kernel - 1) - 1;
  if (room < 0) return -1;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

// op(A) [m, k] x op(B) [k, n] for matrices A [a0, a1] and B [b0, b1], op
// transposing where asked: the product's m, n, k, or false when the inner
// dimensions differ.
struct MatrixProduct {
  int64_t m = 0, n = 0, k = 0;
};
constexpr bool matrix_product(int64_t a0, int64_t a1, bool trans_a, int64_t b0, int64_t b1, bool trans_b,
                              MatrixProduct* out) {
  const int64_t k = trans_a ? a0 : a1, kb = trans_b ? b1 : b0;
  if (k != kb) return false;
  *out = {trans_a ? a1 : a0, trans_b ? b0 : b1, k};
  return true;
}

// Whether a strided slice of `count` elements, start + i * step, stays in
// [0, size) (trivially when it reads none). Either end suffices to check;
// computed without overflow for any int64 inputs.
constexpr bool slice_in_bounds(int64_t start, int64_t step, int64_t count, int64_t size) {
  if (count <= 0) return true;
  const __int128 last = __int128(start) + __int128(step) * __int128(count - 1);
  return start >= 0 && start < size && last >= 0 && last < size;
}

// Elements of one rank's shard of a flattened, padded tensor.
constexpr int64_t shard_numel(int64_t numel, int64_t world_size) { return (numel + world_size - 1) / world_size; }

}  // namespace zero::shape_rules

#endif  // ZERO_SHAPE_RULES_H
