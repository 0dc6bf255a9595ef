//===- SupportedOps.h - the ONNX operators and attributes zero imports ----===//
//
// The rows of OnnxOps.def, for the loader, which rejects every other
// operator, opset and every unknown or mistyped attribute before the ONNX
// library sees the model, and for the importer, which builds each node with
// its row's builder and reads exactly the attributes listed there. No MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H
#define ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace zero::frontend {

// PyTorch exports opsets 13-17; older ones are read where their semantics
// for the supported ops are handled (Softmax's 2-D coercion, attribute axes).
constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 17;

struct OpAttribute {
  std::string_view name;
  ::onnx::AttributeProto::AttributeType type;
  /// The smallest value an INT or each of an INTS may have (window sizes,
  /// strides: ONNX shape inference divides by them).
  int64_t minimum = std::numeric_limits<int64_t>::min();
};

/// One row of OnnxOps.def: an operator of a domain over a range of opsets.
struct SupportedOp {
  std::string_view domain; // "" for the default domain
  std::string_view name;
  int64_t sinceVersion;
  int64_t untilVersion; // inclusive
  /// The importer's builder, import<builder> in OnnxHandlers.cpp.
  std::string_view builder;
  /// Every attribute zero honours (or checks the value of); any other is an
  /// error, never ignored.
  std::vector<OpAttribute> attributes;

  const OpAttribute *findAttribute(std::string_view attribute) const;
};

/// True for ONNX's default domain, "" or "ai.onnx".
bool isDefaultDomain(std::string_view domain);

/// The row for operator `opType` of `domain` at `opset`, or null.
const SupportedOp *findSupportedOp(std::string_view domain, std::string_view opType,
                                   int64_t opset);

/// Why `node` has no row at `opset`: "unsupported operator 'OP'" (with its
/// domain unless the default), or, for an operator zero imports at other
/// opsets, which ones.
std::string unsupportedOpMessage(const ::onnx::NodeProto &node, int64_t opset);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_SUPPORTEDOPS_H
