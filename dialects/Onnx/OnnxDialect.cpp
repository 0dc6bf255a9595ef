//===- OnnxDialect.cpp - verifiers for the ONNX ops -----------------------===//

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/ShapeUtils.h"
#include "zero/shape_rules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace zero::onnx;

#include "dialects/Onnx/OnnxDialect.cpp.inc"

void OnnxDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Onnx/OnnxOps.cpp.inc"
      >();
}

Operation *OnnxDialect::materializeConstant(OpBuilder &builder, Attribute value, Type type,
                                            Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, elements);
}

namespace {

RankedTensorType rankedType(Value v) { return cast<RankedTensorType>(v.getType()); }

} // namespace

/// Operands of one element type broadcast (numpy) to the result's shape; the
/// result has the operands' element type, or `resultElement` if given
/// (comparisons: "i64"). Called by the generated verifiers (OnnxOps.td).
static LogicalResult verifyBroadcast(Operation *op, Value lhs, Value rhs, Value result,
                                     StringRef resultElement) {
  auto l = rankedType(lhs), r = rankedType(rhs), out = rankedType(result);
  if (resultElement.empty() &&
      (l.getElementType() != r.getElementType() || l.getElementType() != out.getElementType()))
    return op->emitOpError("operand and result element types must match");
  if (l.getElementType() != r.getElementType())
    return op->emitOpError("operand element types must match");
  auto shape = zero::broadcastShapes(l.getShape(), r.getShape());
  if (!shape)
    return op->emitOpError("operand shapes ") << l << " and " << r << " do not broadcast";
  if (ArrayRef<int64_t>(*shape) != out.getShape())
    return op->emitOpError("result type ") << out << " is not the broadcast shape of the operands";
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ModOp::verify() {
  if (getFmod() != 0 && getFmod() != 1)
    return emitOpError("fmod must be 0 or 1, got ") << getFmod();
  // ONNX defines fmod = 0 only for integers.
  if (getFmod() == 0 && !rankedType(getLhs()).getElementType().isInteger())
    return emitOpError("fmod must be 1 for floating-point operands");
  return verifyBroadcast(*this, getLhs(), getRhs(), getResult(), "");
}

LogicalResult DropoutOp::verify() {
  double ratio = getRatio().convertToDouble();
  if (!(ratio > 0 && ratio < 1))
    return emitOpError("ratio must be in (0, 1), got ") << ratio;
  if (getStreamAttr().getInt() < 0)
    return emitOpError("stream must not be negative");
  return success();
}

LogicalResult CastOp::verify() {
  if (getInput().getType().getShape() != getResult().getType().getShape())
    return emitOpError("must not change the shape");
  return success();
}

LogicalResult ReshapeOp::verify() {
  if (getInput().getType().getNumElements() != getResult().getType().getNumElements() ||
      getInput().getType().getElementType() != getResult().getType().getElementType())
    return emitOpError("must keep the element count and type: ")
           << getInput().getType() << " vs " << getResult().getType();
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor) {
  if (getInput().getType() == getResult().getType())
    return getInput();
  // A reshape of a reshape is one reshape.
  if (auto inner = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(inner.getInput());
    return getResult();
  }
  return {};
}

LogicalResult ExpandOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  auto shape = zero::broadcastShapes(in.getShape(), out.getShape());
  if (!shape || ArrayRef<int64_t>(*shape) != out.getShape())
    return emitOpError("cannot broadcast ") << in << " to " << out;
  return success();
}

LogicalResult TransposeOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  ArrayRef<int64_t> perm = getPerm();
  if (static_cast<int64_t>(perm.size()) != in.getRank())
    return emitOpError("perm has ") << perm.size() << " entries for rank " << in.getRank();
  SmallVector<bool> seen(perm.size(), false);
  for (auto [i, p] : llvm::enumerate(perm)) {
    if (p < 0 || p >= in.getRank() || seen[p])
      return emitOpError("perm is not a permutation");
    seen[p] = true;
    if (out.getDimSize(i) != in.getDimSize(p))
      return emitOpError("result type does not match the permuted input shape");
  }
  return success();
}

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  // Two transposes compose into one; an identity permutation disappears.
  if (auto inner = getInput().getDefiningOp<TransposeOp>()) {
    SmallVector<int64_t> composed;
    for (int64_t p : getPerm())
      composed.push_back(inner.getPerm()[p]);
    getInputMutable().assign(inner.getInput());
    setPerm(composed);
    return getResult();
  }
  if (llvm::equal(getPerm(), llvm::seq<int64_t>(0, getPerm().size())))
    return getInput();
  return {};
}

OpFoldResult GemmOp::fold(FoldAdaptor) {
  // A transposed operand becomes a transpose flag: no copy of the matrix.
  auto flip = [&](OpOperand &operand, bool transposed, auto setFlag) {
    auto transpose = operand.get().getDefiningOp<TransposeOp>();
    if (!transpose || transpose.getInput().getType().getRank() != 2)
      return false;
    operand.set(transpose.getInput());
    setFlag(!transposed);
    return true;
  };
  bool changed = flip(getAMutable(), getTransA(),
                      [&](bool t) { setTransAAttr(BoolAttr::get(getContext(), t)); });
  changed |= flip(getBMutable(), getTransB(),
                  [&](bool t) { setTransBAttr(BoolAttr::get(getContext(), t)); });
  return changed ? getResult() : OpFoldResult();
}

LogicalResult GemmOp::verify() {
  auto a = getA().getType(), b = getB().getType(), y = getResult().getType();
  if (a.getRank() != 2 || b.getRank() != 2 || y.getRank() != 2)
    return emitOpError("A, B and Y must be matrices");
  zero::shape_rules::MatrixProduct product;
  if (!zero::shape_rules::matrix_product(a.getDimSize(0), a.getDimSize(1), getTransA(),
                                         b.getDimSize(0), b.getDimSize(1), getTransB(), &product))
    return emitOpError("inner dimensions differ: ")
           << a.getDimSize(getTransA() ? 0 : 1) << " vs " << b.getDimSize(getTransB() ? 1 : 0);
  if (y.getDimSize(0) != product.m || y.getDimSize(1) != product.n)
    return emitOpError("result must be ") << product.m << "x" << product.n;
  if (getC()) {
    auto c = getC().getType();
    auto shape = zero::broadcastShapes(c.getShape(), y.getShape());
    if (!shape || ArrayRef<int64_t>(*shape) != y.getShape())
      return emitOpError("C ") << c << " does not broadcast to " << y;
  }
  return success();
}

namespace {

/// x[..., K] @ W[K, N] is one GEMM over the flattened leading dimensions:
/// one BLAS call instead of one per batch, and the gradient needs no batch
/// reduction.
struct MatMulWithMatrixToGemm : public OpRewritePattern<MatMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatMulOp op, PatternRewriter &rewriter) const override {
    auto lhs = op.getLhs().getType(), rhs = op.getRhs().getType();
    if (rhs.getRank() != 2 || lhs.getRank() < 2)
      return failure();
    int64_t k = lhs.getShape().back(), rows = lhs.getNumElements() / k;
    Location loc = op.getLoc();
    Value flat = op.getLhs();
    if (lhs.getRank() != 2)
      flat = ReshapeOp::create(rewriter, loc, lhs.clone({rows, k}), flat);
    auto gemmType = rhs.clone({rows, rhs.getDimSize(1)});
    Value product = GemmOp::create(rewriter, loc, gemmType, flat, op.getRhs(), Value(),
                                   rewriter.getF32FloatAttr(1.0f), rewriter.getF32FloatAttr(0.0f),
                                   rewriter.getBoolAttr(false), rewriter.getBoolAttr(false));
    if (gemmType != op.getType())
      product = ReshapeOp::create(rewriter, loc, op.getType(), product);
    rewriter.replaceOp(op, product);
    return success();
  }
};

} // namespace

void MatMulOp::getCanonicalizationPatterns(RewritePatternSet &patterns, MLIRContext *context) {
  patterns.add<MatMulWithMatrixToGemm>(context);
}

LogicalResult MatMulOp::verify() {
  auto l = getLhs().getType(), r = getRhs().getType();
  if (l.getRank() < 2 || r.getRank() < 2)
    return emitOpError("1-D operands are not supported yet");
  if (l.getShape().back() != r.getShape()[r.getRank() - 2])
    return emitOpError("inner dimensions differ");
  auto batch = zero::broadcastShapes(l.getShape().drop_back(2), r.getShape().drop_back(2));
  if (!batch)
    return emitOpError("batch dimensions do not broadcast");
  SmallVector<int64_t> expected(*batch);
  expected.push_back(l.getShape()[l.getRank() - 2]);
  expected.push_back(r.getShape().back());
  if (ArrayRef<int64_t>(expected) != getResult().getType().getShape())
    return emitOpError("result type does not match the matmul shape");
  return success();
}

namespace {

template <typename LossOp>
LogicalResult verifyLoss(LossOp op) {
  auto in = op.getInput().getType(), labels = op.getLabels().getType();
  if (in.getRank() < 2)
    return op.emitOpError("input must be [N, C, ...]");
  SmallVector<int64_t> expected{in.getDimSize(0)};
  llvm::append_range(expected, in.getShape().drop_front(2));
  if (labels.getShape() != ArrayRef<int64_t>(expected))
    return op.emitOpError("labels must have shape [N, d1, ...] of the input");
  if (Value weights = op.getWeights()) {
    auto type = cast<RankedTensorType>(weights.getType());
    if (type.getRank() != 1 || type.getDimSize(0) != in.getDimSize(1))
      return op.emitOpError("weights must have shape [C] = [") << in.getDimSize(1) << "]";
  }
  StringRef reduction = op.getReduction();
  if (reduction != "mean" && reduction != "sum" && reduction != "none")
    return op.emitOpError("unknown reduction '") << reduction << "'";
  auto loss = op.getLoss().getType();
  bool reduced = reduction != "none";
  if (reduced ? loss.getRank() != 0 : loss.getShape() != labels.getShape())
    return op.emitOpError("loss type does not match the reduction");
  return success();
}

} // namespace

LogicalResult SoftmaxCrossEntropyLossOp::verify() { return verifyLoss(*this); }
LogicalResult NegativeLogLikelihoodLossOp::verify() { return verifyLoss(*this); }

namespace {

/// The result of reducing `in` over the `reduced` dimensions (kept as 1
/// with keepdims) must be `result`.
LogicalResult verifyReducedShape(Operation *op, RankedTensorType in, ArrayRef<bool> reduced,
                                 bool keepdims, RankedTensorType result) {
  SmallVector<int64_t> expected;
  for (int64_t i = 0; i < in.getRank(); ++i)
    if (!reduced[i])
      expected.push_back(in.getDimSize(i));
    else if (keepdims)
      expected.push_back(1);
  if (ArrayRef<int64_t>(expected) != result.getShape())
    return op->emitOpError("result type does not match the reduced shape");
  return success();
}

template <typename ReduceOp>
LogicalResult verifyReduce(ReduceOp op) {
  auto in = op.getInput().getType();
  SmallVector<bool> reduced(in.getRank(), op.getAxes().empty());
  for (int64_t axis : op.getAxes()) {
    auto normalized = zero::normalizeAxis(axis, in.getRank());
    if (!normalized)
      return op.emitOpError("axis ") << axis << " is out of range for rank " << in.getRank();
    reduced[*normalized] = true;
  }
  return verifyReducedShape(op, in, reduced, op.getKeepdims(), op.getResult().getType());
}

} // namespace

LogicalResult ReduceSumOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceMeanOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceMaxOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceMinOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceProdOp::verify() { return verifyReduce(*this); }
LogicalResult ReduceL2Op::verify() { return verifyReduce(*this); }

namespace {

template <typename ArgReduceOp> LogicalResult verifyArgReduce(ArgReduceOp op) {
  auto in = op.getInput().getType();
  auto axis = zero::normalizeAxis(op.getAxis(), in.getRank());
  if (!axis)
    return op.emitOpError("axis ") << op.getAxis() << " is out of range for rank " << in.getRank();
  SmallVector<bool> reduced(in.getRank(), false);
  reduced[*axis] = true;
  return verifyReducedShape(op, in, reduced, op.getKeepdims(), op.getResult().getType());
}

} // namespace

LogicalResult ArgMaxOp::verify() { return verifyArgReduce(*this); }
LogicalResult ArgMinOp::verify() { return verifyArgReduce(*this); }

LogicalResult CumSumOp::verify() {
  if (!zero::normalizeAxis(getAxis(), getInput().getType().getRank()))
    return emitOpError("axis ") << getAxis() << " is out of range for rank "
                                << getInput().getType().getRank();
  return success();
}

LogicalResult GatherOp::verify() {
  auto data = getData().getType(), indices = getIndices().getType();
  auto axis = zero::normalizeAxis(getAxis(), data.getRank());
  if (!axis)
    return emitOpError("axis ") << getAxis() << " is out of range for rank " << data.getRank();
  SmallVector<int64_t> expected(data.getShape().take_front(*axis));
  llvm::append_range(expected, indices.getShape());
  llvm::append_range(expected, data.getShape().drop_front(*axis + 1));
  if (getResult().getType().getShape() != ArrayRef<int64_t>(expected) ||
      getResult().getType().getElementType() != data.getElementType())
    return emitOpError("result type does not match data and indices");
  return success();
}

namespace {

/// GatherElements and ScatterElements: indices of data's rank, within its
/// sizes along every dimension but `axis`.
LogicalResult verifyElementsIndexing(Operation *op, RankedTensorType data, RankedTensorType indices,
                                     int64_t axis) {
  if (data.getRank() < 1)
    return op->emitOpError("data must have rank 1 or more");
  if (!zero::normalizeAxis(axis, data.getRank()))
    return op->emitOpError("axis ") << axis << " is out of range for rank " << data.getRank();
  int64_t a = *zero::normalizeAxis(axis, data.getRank());
  if (indices.getRank() != data.getRank())
    return op->emitOpError("indices must have data's rank");
  for (int64_t d = 0; d < data.getRank(); ++d)
    if (d != a && indices.getDimSize(d) > data.getDimSize(d))
      return op->emitOpError("indices dimension ")
             << d << " (" << indices.getDimSize(d) << ") exceeds data's (" << data.getDimSize(d)
             << ")";
  return success();
}

/// GatherND and ScatterND: index tuples of k <= rank(data) indices; the
/// slices they select are indices.shape[:-1] + data.shape[k:].
FailureOr<SmallVector<int64_t>> slicesShape(Operation *op, RankedTensorType data,
                                            RankedTensorType indices) {
  if (indices.getRank() < 1 || indices.getShape().back() < 1 ||
      indices.getShape().back() > data.getRank()) {
    op->emitOpError("the last dimension of indices must be in [1, rank of data]");
    return failure();
  }
  SmallVector<int64_t> shape(indices.getShape().drop_back());
  llvm::append_range(shape, data.getShape().drop_front(indices.getShape().back()));
  return shape;
}

LogicalResult verifyReduction(Operation *op, StringRef reduction) {
  if (reduction != "none" && reduction != "add" && reduction != "mul")
    return op->emitOpError("reduction must be \"none\", \"add\" or \"mul\", got \"")
           << reduction << "\"";
  return success();
}

} // namespace

LogicalResult GatherElementsOp::verify() {
  auto data = getData().getType(), indices = getIndices().getType();
  if (failed(verifyElementsIndexing(*this, data, indices, getAxis())))
    return failure();
  if (getResult().getType() != indices.clone(data.getElementType()))
    return emitOpError("result type must be the indices' shape with data's element type");
  return success();
}

LogicalResult ScatterElementsOp::verify() {
  auto data = getData().getType(), indices = getIndices().getType();
  if (failed(verifyElementsIndexing(*this, data, indices, getAxis())) ||
      failed(verifyReduction(*this, getReduction())))
    return failure();
  if (getUpdates().getType() != indices.clone(data.getElementType()))
    return emitOpError("updates must have the indices' shape and data's element type");
  if (getResult().getType() != data)
    return emitOpError("result type must be data's");
  return success();
}

LogicalResult GatherNDOp::verify() {
  auto shape = slicesShape(*this, getData().getType(), getIndices().getType());
  if (failed(shape))
    return failure();
  if (getResult().getType() != RankedTensorType::get(*shape, getData().getType().getElementType()))
    return emitOpError("result type does not match data and indices");
  return success();
}

LogicalResult ScatterNDOp::verify() {
  auto data = getData().getType();
  auto shape = slicesShape(*this, data, getIndices().getType());
  if (failed(shape) || failed(verifyReduction(*this, getReduction())))
    return failure();
  if (getUpdates().getType() != RankedTensorType::get(*shape, data.getElementType()))
    return emitOpError("updates must be indices.shape[:-1] + data.shape[k:] of data's element "
                       "type");
  if (getResult().getType() != data)
    return emitOpError("result type must be data's");
  return success();
}

LogicalResult TopKOp::verify() {
  auto in = getInput().getType();
  auto axis = zero::normalizeAxis(getAxis(), in.getRank());
  if (!axis)
    return emitOpError("axis ") << getAxis() << " is out of range for rank " << in.getRank();
  auto values = getValues().getType();
  int64_t k = values.getRank() == in.getRank() ? values.getDimSize(*axis) : -1;
  SmallVector<int64_t> expected(in.getShape());
  expected[*axis] = k;
  if (values.getShape() != ArrayRef<int64_t>(expected) ||
      getIndices().getType().getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("values and indices must be the input's shape with k along the axis");
  if (k < 1 || k > in.getDimSize(*axis))
    return emitOpError("k = ") << k << " must be in [1, " << in.getDimSize(*axis) << "]";
  if (getK() && getK().getType().getNumElements() != 1)
    return emitOpError("k must have one element");
  return success();
}

LogicalResult SliceOp::verify() {
  auto in = getInput().getType(), out = getResult().getType();
  ArrayRef<int64_t> starts = getStarts(), steps = getSteps();
  if (static_cast<int64_t>(starts.size()) != in.getRank() || steps.size() != starts.size() ||
      out.getRank() != in.getRank())
    return emitOpError("starts and steps must name every dimension");
  for (int64_t i = 0; i < in.getRank(); ++i) {
    if (steps[i] < 1)
      return emitOpError("steps must be positive");
    if (!zero::shape_rules::slice_in_bounds(starts[i], steps[i], out.getDimSize(i),
                                            in.getDimSize(i)))
      return emitOpError("dimension ") << i << " reads outside the input";
  }
  return success();
}

LogicalResult SplitOp::verify() {
  auto in = getInput().getType();
  auto axis = zero::normalizeAxis(getAxis(), in.getRank());
  if (!axis)
    return emitOpError("axis is out of range");
  if (getParts().empty())
    return emitOpError("needs at least one part");
  int64_t total = 0;
  for (Value part : getParts()) {
    auto type = cast<RankedTensorType>(part.getType());
    if (type.getRank() != in.getRank() || type.getElementType() != in.getElementType())
      return emitOpError("parts must have the input's rank and element type");
    for (int64_t i = 0; i < in.getRank(); ++i)
      if (i != *axis && type.getDimSize(i) != in.getDimSize(i))
        return emitOpError("parts differ from the input outside the split axis");
    total += type.getDimSize(*axis);
  }
  if (total != in.getDimSize(*axis))
    return emitOpError("the parts' sizes along the axis must add up to the input's");
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  auto out = getResult().getType();
  auto axis = zero::normalizeAxis(getAxis(), out.getRank());
  if (!axis)
    return emitOpError("axis is out of range");
  int64_t total = 0;
  for (Value input : getInputs()) {
    auto type = cast<RankedTensorType>(input.getType());
    if (type.getRank() != out.getRank() || type.getElementType() != out.getElementType())
      return emitOpError("inputs must have the result's rank and element type");
    for (int64_t i = 0; i < out.getRank(); ++i)
      if (i != *axis && type.getDimSize(i) != out.getDimSize(i))
        return emitOpError("inputs differ outside the concatenation axis");
    total += type.getDimSize(*axis);
  }
  if (total != out.getDimSize(*axis))
    return emitOpError("result size along the axis must be the sum of the inputs'");
  return success();
}

LogicalResult WhereOp::verify() {
  auto c = getCondition().getType(), x = getX().getType(), y = getY().getType();
  auto xy = zero::broadcastShapes(x.getShape(), y.getShape());
  auto all = xy ? zero::broadcastShapes(c.getShape(), *xy) : std::nullopt;
  if (!all || ArrayRef<int64_t>(*all) != getResult().getType().getShape())
    return emitOpError("result type is not the broadcast of the operand shapes");
  if (x.getElementType() != y.getElementType() ||
      x.getElementType() != getResult().getType().getElementType())
    return emitOpError("x, y and the result must share an element type");
  return success();
}

LogicalResult LayerNormalizationOp::verify() {
  auto in = getInput().getType();
  auto axis = zero::normalizeAxis(getAxis(), in.getRank());
  if (!axis)
    return emitOpError("axis is out of range");
  ArrayRef<int64_t> normalized = in.getShape().drop_front(*axis);
  if (getScale().getType().getShape() != normalized ||
      (getBias() && getBias().getType().getShape() != normalized))
    return emitOpError("scale and bias must have the normalized shape");
  SmallVector<int64_t> stats(in.getShape().take_front(*axis));
  stats.append(in.getRank() - *axis, 1);
  if (getResult().getType() != in || getMean().getType().getShape() != ArrayRef<int64_t>(stats) ||
      getInvStdDev().getType().getShape() != ArrayRef<int64_t>(stats))
    return emitOpError("result, mean or inv_std_dev type is wrong");
  return success();
}

namespace {

/// Checks the window attributes of an input with 1 to 3 spatial dimensions
/// (NCL, NCHW, NCDHW) and returns the output spatial sizes.
FailureOr<SmallVector<int64_t>> windowOutput(Operation *op, RankedTensorType input,
                                             ArrayRef<int64_t> kernel, ArrayRef<int64_t> strides,
                                             ArrayRef<int64_t> pads, ArrayRef<int64_t> dilations,
                                             bool ceilMode = false) {
  const int64_t rank = input.getRank() - 2;
  if (rank < 1 || rank > 3)
    return op->emitOpError("supports 1-D to 3-D (NCL, NCHW, NCDHW) inputs only");
  if (static_cast<int64_t>(kernel.size()) != rank || static_cast<int64_t>(strides.size()) != rank ||
      static_cast<int64_t>(pads.size()) != 2 * rank ||
      static_cast<int64_t>(dilations.size()) != rank)
    return op->emitOpError("needs ") << rank << " kernel sizes, strides and dilations and "
                                     << 2 * rank << " pads for a " << rank << "-D input";
  SmallVector<int64_t> out;
  for (int64_t i = 0; i < rank; ++i) {
    if (strides[i] < 1 || dilations[i] < 1 || kernel[i] < 1 || pads[i] < 0 || pads[i + rank] < 0)
      return op->emitOpError("window attributes must be positive (pads non-negative)");
    int64_t size = zero::windowOutputSize(input.getDimSize(2 + i), pads[i], pads[i + rank],
                                          dilations[i] * (kernel[i] - 1) + 1, strides[i], ceilMode);
    if (size < 0)
      return op->emitOpError("window is larger than the padded input");
    out.push_back(size);
  }
  return out;
}

/// A convolution's weight [M, C/group, k...] for `in` and `group`, and its
/// optional bias [M].
LogicalResult verifyConvWeight(Operation *op, RankedTensorType in, RankedTensorType w,
                               int64_t group, Value bias) {
  if (w.getRank() != in.getRank() || group < 1 || in.getDimSize(1) != w.getDimSize(1) * group ||
      w.getDimSize(0) % group != 0)
    return op->emitOpError("weight must be [M, C/group, k...] of the input's rank with M "
                           "divisible by group");
  if (bias &&
      cast<RankedTensorType>(bias.getType()).getShape() != ArrayRef<int64_t>{w.getDimSize(0)})
    return op->emitOpError("bias must be [M]");
  return success();
}

} // namespace

LogicalResult ConvOp::verify() {
  auto in = getInput().getType(), w = getWeight().getType(), y = getResult().getType();
  if (failed(verifyConvWeight(*this, in, w, static_cast<int64_t>(getGroup()), getBias())))
    return failure();
  auto spatial = windowOutput(*this, in, w.getShape().drop_front(2), getStrides(), getPads(),
                              getDilations());
  if (failed(spatial))
    return failure();
  SmallVector<int64_t> expected{in.getDimSize(0), w.getDimSize(0)};
  expected.append(*spatial);
  if (y.getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("result type does not match the convolution");
  return success();
}

LogicalResult ConvTransposeOp::verify() {
  // The adjoint of the Conv from the result to the input: the weight
  // [C, M/group, k...] is that Conv's, the result one of the sizes it maps
  // onto the input (output_padding below the stride makes it larger).
  auto in = getInput().getType(), w = getWeight().getType(), y = getResult().getType();
  if (y.getRank() != in.getRank() || y.getDimSize(0) != in.getDimSize(0))
    return emitOpError("result must be [N, ...] of the input's rank");
  if (failed(verifyConvWeight(*this, y, w, static_cast<int64_t>(getGroup()), Value())))
    return failure();
  if (w.getDimSize(0) != in.getDimSize(1))
    return emitOpError("weight dimension 0 must be the input's channels");
  auto spatial =
      windowOutput(*this, y, w.getShape().drop_front(2), getStrides(), getPads(), getDilations());
  if (failed(spatial))
    return failure();
  if (ArrayRef<int64_t>(*spatial) != in.getShape().drop_front(2))
    return emitOpError("result type does not match the transposed convolution (its padding "
                       "beyond the covered size must be below the stride)");
  return success();
}

namespace {

template <typename PoolOp>
LogicalResult verifyPool(PoolOp op, ArrayRef<int64_t> dilations, ArrayRef<Type> resultTypes) {
  auto in = op.getInput().getType();
  auto spatial = windowOutput(op, in, op.getKernelShape(), op.getStrides(), op.getPads(), dilations,
                              op.getCeilMode());
  if (failed(spatial))
    return failure();
  SmallVector<int64_t> expected{in.getDimSize(0), in.getDimSize(1)};
  expected.append(*spatial);
  for (Type type : resultTypes)
    if (cast<RankedTensorType>(type).getShape() != ArrayRef<int64_t>(expected))
      return op.emitOpError("result type does not match the pooling window");
  return success();
}

} // namespace

LogicalResult MaxPoolOp::verify() {
  std::optional<ArrayRef<int64_t>> given = getDilations();
  SmallVector<int64_t> dilations =
      given ? SmallVector<int64_t>(*given) : SmallVector<int64_t>(getKernelShape().size(), 1);
  return verifyPool(*this, dilations, {getResult().getType(), getArgmax().getType()});
}
LogicalResult AveragePoolOp::verify() {
  SmallVector<int64_t> dilations(getKernelShape().size(), 1);
  return verifyPool(*this, dilations, {getResult().getType()});
}

LogicalResult BatchNormalizationOp::verify() {
  auto in = getInput().getType();
  if (in.getRank() < 2)
    return emitOpError("input must be [N, C, ...]");
  auto channels = RankedTensorType::get({in.getDimSize(1)}, in.getElementType());
  for (Value v : {getScale(), getBias(), getRunningMean(), getRunningVar()})
    if (v.getType() != channels)
      return emitOpError("scale, bias and running statistics must be ") << channels;
  if (getResult().getType() != in)
    return emitOpError("result must have the input's type");
  for (Value v : {getSavedMean(), getSavedInvStd(), getNewRunningMean(), getNewRunningVar()})
    if (v.getType() != channels)
      return emitOpError("statistics results must be ") << channels;
  return success();
}

Value zero::onnx::buildBatchNormalizationInference(OpBuilder &b, Location loc,
                                                   RankedTensorType type, Value x, Value scale,
                                                   Value bias, Value mean, Value var,
                                                   float epsilon) {
  SmallVector<int64_t> channelShape(type.getRank(), 1);
  channelShape[1] = type.getDimSize(1);
  auto channelType = type.clone(channelShape);
  auto channel = [&](Value v) -> Value { return ReshapeOp::create(b, loc, channelType, v); };
  auto scalarType = RankedTensorType::get({}, b.getF32Type());
  Value eps = ConstantOp::create(b, loc, DenseElementsAttr::get(scalarType, epsilon));
  Value std = SqrtOp::create(b, loc, AddOp::create(b, loc, channelType, channel(var), eps));
  Value y = SubOp::create(b, loc, type, x, channel(mean));
  y = DivOp::create(b, loc, type, y, std);
  y = MulOp::create(b, loc, type, y, channel(scale));
  return AddOp::create(b, loc, type, y, channel(bias));
}

#define GET_OP_CLASSES
#include "dialects/Onnx/OnnxOps.cpp.inc"
