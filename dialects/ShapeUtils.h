//===- ShapeUtils.h - static shape arithmetic shared by the dialects ------===//

#ifndef ZERO_DIALECTS_SHAPEUTILS_H
#define ZERO_DIALECTS_SHAPEUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include <optional>

namespace zero {

/// The numpy broadcast of two shapes, or nullopt if they are incompatible.
std::optional<llvm::SmallVector<int64_t>> broadcastShapes(llvm::ArrayRef<int64_t> a,
                                                          llvm::ArrayRef<int64_t> b);

/// Normalizes `axis` (possibly negative) against `rank`; nullopt if out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Elements in a shard: ceil(numel / worldSize).
int64_t shardNumel(int64_t numel, int64_t worldSize);

/// Output size of a sliding window of `span` = dilation * (kernel - 1) + 1
/// elements along an axis of `in` padded by `padBegin` and `padEnd`; -1 if
/// the window does not fit. ceilMode rounds up as PyTorch (and ONNX opset
/// 19) do: the last window must start inside the input or the begin padding.
int64_t windowOutputSize(int64_t in, int64_t padBegin, int64_t padEnd, int64_t span,
                         int64_t stride, bool ceilMode);

/// The ranked tensor type of `v`; every value in the pipeline has one.
inline mlir::RankedTensorType tensorType(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType());
}

} // namespace zero

#endif // ZERO_DIALECTS_SHAPEUTILS_H
