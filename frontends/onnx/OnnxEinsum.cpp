//===- OnnxEinsum.cpp - Einsum composed of layout changes and products ----===//
//
// An Einsum node becomes ops zero differentiates already. Each operand
// first loses the dimensions it broadcasts (size 1 where its subscript is
// larger elsewhere) and sums out the subscripts no other term has; then the
// operands are contracted left to right, two at a time: the subscripts both
// share and that are still needed stay batch dimensions, those both share
// and nothing needs any more are contracted by one batched MatMul (operands
// transposed to [batch, rows, contracted] and [batch, contracted, cols]),
// and a pair that shares nothing to contract is a broadcast Mul. A last
// Transpose puts the output subscripts in order. Repeated subscripts in
// one term (diagonals, traces) have no such composition and are rejected.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/EinsumEquation.h"
#include "frontends/onnx/GraphImporter.h"

#include "dialects/Onnx/OnnxDialect.h"

using namespace mlir;

namespace zero::frontend {

namespace {

/// An operand on the way: its value and the subscript of each dimension.
struct Term {
  Value value;
  SmallVector<EinsumLabel> labels;

  bool has(EinsumLabel label) const { return llvm::is_contained(labels, label); }
};

class EinsumComposer {
public:
  EinsumComposer(GraphImporter &im, const ::onnx::NodeProto &node, const EinsumEquation &equation,
                 ArrayRef<int64_t> labelSizes)
      : b(im.builder), loc(im.nodeLoc(node)), equation(equation), labelSizes(labelSizes) {}

  Value compose(ArrayRef<Value> operands);

private:
  SmallVector<int64_t> shapeOf(ArrayRef<EinsumLabel> labels) const {
    SmallVector<int64_t> shape;
    for (EinsumLabel label : labels)
      shape.push_back(labelSizes[label]);
    return shape;
  }
  RankedTensorType typeOf(ArrayRef<int64_t> shape) const {
    return RankedTensorType::get(shape, b.getF32Type());
  }
  Value reshape(Value v, ArrayRef<int64_t> shape) {
    if (cast<RankedTensorType>(v.getType()).getShape() == shape)
      return v;
    return onnx::ReshapeOp::create(b, loc, typeOf(shape), v);
  }

  /// `term` without the dimensions it broadcasts.
  Term dropBroadcast(Term term);
  /// `term` summed over the subscripts `keep` rejects.
  Term sumOut(Term term, llvm::function_ref<bool(EinsumLabel)> keep);
  /// `term` with its dimensions in the order of `labels`, a permutation.
  Term transpose(Term term, ArrayRef<EinsumLabel> labels);
  /// The product of `lhs` and `rhs` summed over the subscripts they share
  /// and `kept` rejects.
  Term contract(Term lhs, Term rhs, llvm::function_ref<bool(EinsumLabel)> kept);

  OpBuilder &b;
  Location loc;
  const EinsumEquation &equation;
  ArrayRef<int64_t> labelSizes;
};

Term EinsumComposer::dropBroadcast(Term term) {
  Term kept{term.value, {}};
  for (auto [label, size] :
       llvm::zip(term.labels, cast<RankedTensorType>(term.value.getType()).getShape()))
    if (size == labelSizes[label])
      kept.labels.push_back(label);
  kept.value = reshape(term.value, shapeOf(kept.labels));
  return kept;
}

Term EinsumComposer::sumOut(Term term, llvm::function_ref<bool(EinsumLabel)> keep) {
  SmallVector<int64_t> axes;
  Term summed{term.value, {}};
  for (auto [axis, label] : llvm::enumerate(term.labels)) {
    if (keep(label))
      summed.labels.push_back(label);
    else
      axes.push_back(int64_t(axis));
  }
  if (axes.empty())
    return term;
  summed.value = onnx::ReduceSumOp::create(b, loc, typeOf(shapeOf(summed.labels)), term.value,
                                           b.getDenseI64ArrayAttr(axes), b.getBoolAttr(false));
  return summed;
}

Term EinsumComposer::transpose(Term term, ArrayRef<EinsumLabel> labels) {
  if (ArrayRef<EinsumLabel>(term.labels) == labels)
    return term;
  SmallVector<int64_t> perm;
  for (EinsumLabel label : labels)
    perm.push_back(llvm::find(term.labels, label) - term.labels.begin());
  return {onnx::TransposeOp::create(b, loc, typeOf(shapeOf(labels)), term.value,
                                    b.getDenseI64ArrayAttr(perm)),
          SmallVector<EinsumLabel>(labels)};
}

Term EinsumComposer::contract(Term lhs, Term rhs, llvm::function_ref<bool(EinsumLabel)> kept) {
  lhs = sumOut(lhs, [&](EinsumLabel l) { return rhs.has(l) || kept(l); });
  rhs = sumOut(rhs, [&](EinsumLabel l) { return lhs.has(l) || kept(l); });
  SmallVector<EinsumLabel> batch, contracted, rows, cols;
  for (EinsumLabel label : lhs.labels)
    (!rhs.has(label) ? rows : kept(label) ? batch : contracted).push_back(label);
  for (EinsumLabel label : rhs.labels)
    if (!lhs.has(label))
      cols.push_back(label);
  SmallVector<EinsumLabel> result(batch);
  llvm::append_range(result, rows);
  llvm::append_range(result, cols);
  SmallVector<int64_t> lhsShape = shapeOf(batch), rhsShape = shapeOf(batch);
  Value product;
  if (contracted.empty()) {
    // An outer product per batch element: [batch, rows, 1...] times
    // [batch, 1..., cols], by broadcasting.
    Term l = transpose(lhs, llvm::to_vector(llvm::concat<EinsumLabel>(batch, rows)));
    Term r = transpose(rhs, llvm::to_vector(llvm::concat<EinsumLabel>(batch, cols)));
    llvm::append_range(lhsShape, shapeOf(rows));
    lhsShape.append(cols.size(), 1);
    if (!batch.empty()) // else broadcasting, aligned right, supplies them
      rhsShape.append(rows.size(), 1);
    llvm::append_range(rhsShape, shapeOf(cols));
    product = onnx::MulOp::create(b, loc, typeOf(shapeOf(result)), reshape(l.value, lhsShape),
                                  reshape(r.value, rhsShape));
  } else {
    auto count = [&](ArrayRef<EinsumLabel> labels) {
      return ShapedType::getNumElements(shapeOf(labels));
    };
    Term l = transpose(lhs, llvm::to_vector(llvm::concat<EinsumLabel>(batch, rows, contracted)));
    Term r = transpose(rhs, llvm::to_vector(llvm::concat<EinsumLabel>(batch, contracted, cols)));
    lhsShape.append({count(rows), count(contracted)});
    rhsShape.append({count(contracted), count(cols)});
    SmallVector<int64_t> productShape = shapeOf(batch);
    productShape.append({count(rows), count(cols)});
    product = reshape(onnx::MatMulOp::create(b, loc, typeOf(productShape),
                                             reshape(l.value, lhsShape), reshape(r.value, rhsShape)),
                      shapeOf(result));
  }
  return {product, result};
}

Value EinsumComposer::compose(ArrayRef<Value> operands) {
  SmallVector<Term> terms;
  for (auto [value, labels] : llvm::zip(operands, equation.inputs))
    terms.push_back(dropBroadcast({value, SmallVector<EinsumLabel>(labels.begin(), labels.end())}));
  auto inOutput = [&](EinsumLabel label) { return llvm::is_contained(equation.output, label); };
  // Each term's own subscripts that the output lacks are summed out first.
  for (auto [i, term] : llvm::enumerate(terms))
    term = sumOut(term, [&, i = i](EinsumLabel label) {
      return inOutput(label) || llvm::any_of(llvm::enumerate(terms), [&](auto other) {
               return other.index() != i && other.value().has(label);
             });
    });
  Term result = terms.front();
  for (size_t i = 1; i < terms.size(); ++i)
    result = contract(result, terms[i], [&](EinsumLabel label) {
      return inOutput(label) ||
             llvm::any_of(ArrayRef(terms).drop_front(i + 1),
                          [&](const Term &later) { return later.has(label); });
    });
  result = sumOut(result, inOutput);
  return transpose(result, equation.output).value;
}

} // namespace

LogicalResult importEinsum(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto equationText = im.stringAttr(node, "equation", "");
  auto operands = im.dataInputs(node);
  if (failed(equationText) || failed(operands))
    return failure();
  std::vector<int64_t> ranks;
  std::vector<std::vector<int64_t>> shapes;
  for (Value operand : *operands) {
    auto type = cast<RankedTensorType>(operand.getType());
    if (!type.getElementType().isF32())
      return im.nodeError(node) << "equation '" << *equationText
                                << "': only FLOAT operands are supported";
    ranks.push_back(type.getRank());
    shapes.emplace_back(type.getShape().begin(), type.getShape().end());
  }
  std::string error;
  std::optional<EinsumEquation> equation = parseEinsumEquation(*equationText, ranks, error);
  std::optional<std::vector<int64_t>> sizes =
      equation ? einsumLabelSizes(*equation, shapes, error) : std::nullopt;
  if (!sizes)
    return im.nodeError(node) << "equation '" << *equationText << "': " << error;
  for (const std::vector<EinsumLabel> &labels : equation->inputs)
    for (auto [i, label] : llvm::enumerate(labels))
      if (llvm::is_contained(ArrayRef(labels).drop_front(i + 1), label))
        return im.nodeError(node) << "equation '" << *equationText << "': subscript '"
                                  << EinsumEquation::spell(label)
                                  << "' repeats within a term (a diagonal or trace), which is "
                                     "not supported";
  auto result = im.outputType(node, 0);
  if (failed(result))
    return failure();
  Value value = EinsumComposer(im, node, *equation, *sizes).compose(*operands);
  return im.setResult(node, value, *result);
}

} // namespace zero::frontend
