//===- EinsumEquation.h - an Einsum equation against its operands -*- C++ -*-===//
//
// ONNX's Einsum equation (numpy's einsum subscripts): "a,b->c" with one term
// of letters per operand, an optional "..." per term standing for the
// dimensions the letters leave, and an optional output term (without one,
// the output is "..." then the letters that occur once, in ASCII order).
// The loader's shape inference (ONNX 1.12 infers only Einsum's rank) and the
// importer, which composes the contraction from Transpose, Reshape, MatMul,
// Mul and ReduceSum, both read it from here. No MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_EINSUMEQUATION_H
#define ZERO_FRONTENDS_ONNX_EINSUMEQUATION_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zero::frontend {

/// A dimension's label: a letter's ASCII code, or kFirstEllipsisLabel + k
/// for the k-th dimension (from the left) that "..." covers; the operands'
/// "..." align to the right, as numpy broadcasts them.
using EinsumLabel = int;
constexpr EinsumLabel kFirstEllipsisLabel = 128;

/// An equation resolved against its operands' ranks: a label per dimension
/// of each operand and of the output.
struct EinsumEquation {
  std::vector<std::vector<EinsumLabel>> inputs;
  std::vector<EinsumLabel> output;

  /// How a label reads in the equation ("..." for an ellipsis dimension).
  static std::string spell(EinsumLabel label);
};

/// Parses `equation` (whitespace ignored) for operands of `ranks`; nullopt
/// with `error` set if it is malformed or does not fit them.
std::optional<EinsumEquation> parseEinsumEquation(std::string_view equation,
                                                  const std::vector<int64_t> &ranks,
                                                  std::string &error);

/// Each label's size over operands of `shapes` (equal wherever it occurs, or
/// 1 where it broadcasts), indexed by label; nullopt with `error` set where
/// sizes disagree.
std::optional<std::vector<int64_t>>
einsumLabelSizes(const EinsumEquation &equation, const std::vector<std::vector<int64_t>> &shapes,
                 std::string &error);

/// The output's shape for operands of `shapes`.
std::optional<std::vector<int64_t>>
einsumOutputShape(const EinsumEquation &equation, const std::vector<std::vector<int64_t>> &shapes,
                  std::string &error);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_EINSUMEQUATION_H
