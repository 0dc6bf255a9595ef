//===- ShapeUtils.cpp -----------------------------------------------------===//

#include "dialects/ShapeUtils.h"

#include "zero/shape_rules.h"

namespace zero {

std::optional<llvm::SmallVector<int64_t>> broadcastShapes(llvm::ArrayRef<int64_t> a,
                                                          llvm::ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  llvm::SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    result[i] = shape_rules::broadcast_dim(da, db);
    if (result[i] < 0)
      return std::nullopt;
  }
  return result;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  int64_t out;
  if (!shape_rules::normalize_axis(axis, rank, &out))
    return std::nullopt;
  return out;
}

int64_t shardNumel(int64_t numel, int64_t worldSize) {
  return shape_rules::shard_numel(numel, worldSize);
}

int64_t windowOutputSize(int64_t in, int64_t padBegin, int64_t padEnd, int64_t span,
                         int64_t stride, bool ceilMode) {
  // A window of `span` elements is one of kernel `span` at dilation 1.
  return shape_rules::window_output_size(in, padBegin, padEnd, span, /*dilation=*/1, stride,
                                         ceilMode);
}

} // namespace zero
