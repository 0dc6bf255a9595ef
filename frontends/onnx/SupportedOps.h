//===- SupportedOps.h - the ONNX operators and attributes zero imports ----===//
//
// One table for the loader, which rejects every other operator and every
// unknown or mistyped attribute before the ONNX library sees the model, and
// for the importer, which reads exactly the attributes listed here. No MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H
#define ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace zero::frontend {

// PyTorch exports opsets 13-17; older ones are read where their semantics
// for the supported ops are handled (Softmax's 2-D coercion, attribute axes).
constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 17;

/// How the importer handles an operator.
enum class OpKind {
  /// Imports as the dialect's op of the same name: same operands; the
  /// elementwise ops' float attributes (zero/elementwise_ops.h).
  Direct,
  /// Imported by its own code.
  Custom,
  /// Only folded, where its value is known at compile time (shape
  /// computations); never computed by a plan.
  FoldOnly,
};

struct OpAttribute {
  std::string_view name;
  ::onnx::AttributeProto::AttributeType type;
  /// The smallest value an INT or each of an INTS may have (window sizes,
  /// strides: ONNX shape inference divides by them).
  int64_t minimum = std::numeric_limits<int64_t>::min();
};

struct SupportedOp {
  std::string_view name;
  OpKind kind;
  /// Every attribute zero honours (or checks the value of); any other is an
  /// error, never ignored.
  std::vector<OpAttribute> attributes;

  const OpAttribute *findAttribute(std::string_view attribute) const;
};

/// The supported operator `opType` of the default ONNX domain, or null.
const SupportedOp *findSupportedOp(std::string_view opType);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H
