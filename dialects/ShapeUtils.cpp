//===- ShapeUtils.cpp -----------------------------------------------------===//

#include "dialects/ShapeUtils.h"

namespace zero {

std::optional<llvm::SmallVector<int64_t>> broadcastShapes(llvm::ArrayRef<int64_t> a,
                                                          llvm::ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  llvm::SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    result[i] = da == 1 ? db : da;
  }
  return result;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

int64_t shardNumel(int64_t numel, int64_t worldSize) {
  return (numel + worldSize - 1) / worldSize;
}

int64_t windowOutputSize(int64_t in, int64_t padBegin, int64_t padEnd, int64_t span,
                         int64_t stride, bool ceilMode) {
  int64_t room = in + padBegin + padEnd - span;
  if (room < 0)
    return -1;
  int64_t out = (ceilMode ? (room + stride - 1) / stride : room / stride) + 1;
  if (ceilMode && (out - 1) * stride >= in + padBegin)
    --out;
  return out;
}

} // namespace zero
