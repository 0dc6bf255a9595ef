//===- GradientRules.cpp - every op's gradient, as external models --------===//
//
// One `gradient` overload per op, grouped by family; registerGradientRules
// attaches each as the op's GradientOpInterface. The unary ops with a
// derivative kernel share one model, attached from the elementwise list, so
// a new such op needs no code here (docs/adding-an-op.md).
//
//===----------------------------------------------------------------------===//

#include "passes/GradientOpInterface.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/ShapeUtils.h"
#include "dialects/Zero/ZeroDialect.h"

#include "zero/plan_ops.h"

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

#include "passes/GradientOpInterface.cpp.inc"

namespace {

// Each rule reads its op's results' gradients from `ctx` and gives its
// operands theirs; `b` and `loc` (the op's) build the backward ops.

//===----------------------------------------------------------------------===//
// Binary elementwise ops: compositions of forward ops
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::AddOp add, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(add.getLhs(), ctx.grad());
  ctx.give(add.getRhs(), ctx.grad());
  return success();
}

LogicalResult gradient(ox::SubOp sub, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(sub.getLhs(), ctx.grad());
  if (ctx.needsGrad(sub.getRhs()))
    ctx.give(sub.getRhs(), ox::NegOp::create(b, loc, ctx.grad()));
  return success();
}

LogicalResult gradient(ox::MulOp mul, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  if (ctx.needsGrad(mul.getLhs()))
    ctx.give(mul.getLhs(), ox::MulOp::create(b, loc, dy.getType(), dy, ctx.saved(mul.getRhs())));
  if (ctx.needsGrad(mul.getRhs()))
    ctx.give(mul.getRhs(), ox::MulOp::create(b, loc, dy.getType(), dy, ctx.saved(mul.getLhs())));
  return success();
}

LogicalResult gradient(ox::DivOp div, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  Value rhs = ctx.saved(div.getRhs());
  if (ctx.needsGrad(div.getLhs()))
    ctx.give(div.getLhs(), ox::DivOp::create(b, loc, dy.getType(), dy, rhs));
  if (ctx.needsGrad(div.getRhs())) {
    // d(a/b)/db = -(a/b)/b
    Value t = ox::MulOp::create(b, loc, dy.getType(), dy, div.getResult());
    t = ox::DivOp::create(b, loc, dy.getType(), t, rhs);
    ctx.give(div.getRhs(), ox::NegOp::create(b, loc, t));
  }
  return success();
}

LogicalResult gradient(ox::PowOp pow, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  Value base = ctx.saved(pow.getLhs()), exponent = ctx.saved(pow.getRhs());
  if (ctx.needsGrad(pow.getLhs())) {
    // d(a^e)/da = e * a^(e-1)
    Value em1 = ox::SubOp::create(b, loc, exponent.getType(), exponent, ctx.constant(loc, 1));
    Value p = ox::PowOp::create(b, loc, dy.getType(), base, em1);
    Value t = ox::MulOp::create(b, loc, dy.getType(), p, exponent);
    ctx.give(pow.getLhs(), ox::MulOp::create(b, loc, dy.getType(), dy, t));
  }
  if (ctx.needsGrad(pow.getRhs())) {
    // d(a^e)/de = a^e * ln(a)
    Value lnA = ox::LogOp::create(b, loc, base);
    Value t = ox::MulOp::create(b, loc, dy.getType(), pow.getResult(), lnA);
    ctx.give(pow.getRhs(), ox::MulOp::create(b, loc, dy.getType(), dy, t));
  }
  return success();
}

/// Max and Min: the gradient goes to the operand selected, half of it to
/// each on a tie (torch.maximum's and torch.minimum's rule). `Wins` compares
/// lhs with rhs: Greater for Max, Less for Min.
template <typename Wins, typename OpTy>
LogicalResult selectGradient(OpTy op, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad(), zero = ctx.constant(loc, 0.0f);
  Value lhs = ctx.saved(op.getLhs()), rhs = ctx.saved(op.getRhs());
  auto maskType = tensorType(dy).clone(b.getI64Type());
  Value wins = Wins::create(b, loc, maskType, lhs, rhs);
  Value tie = ox::EqualOp::create(b, loc, maskType, lhs, rhs);
  Value half = ox::MulOp::create(b, loc, dy.getType(), dy, ctx.constant(loc, 0.5f));
  auto where = [&](Value condition, Value x, Value y) {
    return ox::WhereOp::create(b, loc, dy.getType(), condition, x, y).getResult();
  };
  if (ctx.needsGrad(op.getLhs()))
    ctx.give(op.getLhs(), where(wins, dy, where(tie, half, zero)));
  if (ctx.needsGrad(op.getRhs()))
    ctx.give(op.getRhs(), where(wins, zero, where(tie, half, dy)));
  return success();
}

LogicalResult gradient(ox::MaxOp max, GradientContext &ctx, OpBuilder &b, Location loc) {
  return selectGradient<ox::GreaterOp>(max, ctx, b, loc);
}

LogicalResult gradient(ox::MinOp min, GradientContext &ctx, OpBuilder &b, Location loc) {
  return selectGradient<ox::LessOp>(min, ctx, b, loc);
}

/// PyTorch's: dx = dy where x > 0, else slope * dy (also at 0); dslope = x * dy
/// where x <= 0, summed over the dimensions the slope was broadcast along.
LogicalResult gradient(ox::PReluOp prelu, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad(), zero = ctx.constant(loc, 0.0f);
  Value x = ctx.saved(prelu.getLhs());
  Value positive = ox::GreaterOp::create(b, loc, tensorType(dy).clone(b.getI64Type()), x, zero);
  if (ctx.needsGrad(prelu.getLhs())) {
    Value scaled = ox::MulOp::create(b, loc, dy.getType(), dy, ctx.saved(prelu.getRhs()));
    ctx.give(prelu.getLhs(), ox::WhereOp::create(b, loc, dy.getType(), positive, dy, scaled));
  }
  if (ctx.needsGrad(prelu.getRhs())) {
    Value scaled = ox::MulOp::create(b, loc, dy.getType(), dy, x);
    ctx.give(prelu.getRhs(), ox::WhereOp::create(b, loc, dy.getType(), positive, zero, scaled));
  }
  return success();
}

/// Only FLOAT Mod has a gradient, and it has fmod = 1: y = a - trunc(a/b) b,
/// so da = dy and db = -dy trunc(a/b) = -dy (a - y) / b.
LogicalResult gradient(ox::ModOp mod, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  ctx.give(mod.getLhs(), dy);
  if (ctx.needsGrad(mod.getRhs())) {
    Value lhs = ctx.saved(mod.getLhs()), rhs = ctx.saved(mod.getRhs());
    Value multiple = ox::SubOp::create(b, loc, dy.getType(), lhs, mod.getResult());
    Value quotient = ox::DivOp::create(b, loc, dy.getType(), multiple, rhs);
    Value t = ox::MulOp::create(b, loc, dy.getType(), dy, quotient);
    ctx.give(mod.getRhs(), ox::NegOp::create(b, loc, t));
  }
  return success();
}

LogicalResult gradient(ox::WhereOp where, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad(), zero = ctx.constant(loc, 0.0f);
  if (ctx.needsGrad(where.getX()))
    ctx.give(where.getX(),
             ox::WhereOp::create(b, loc, dy.getType(), where.getCondition(), dy, zero));
  if (ctx.needsGrad(where.getY()))
    ctx.give(where.getY(),
             ox::WhereOp::create(b, loc, dy.getType(), where.getCondition(), zero, dy));
  return success();
}

//===----------------------------------------------------------------------===//
// Unary elementwise ops composed of forward ops (the others: ElementwiseRule)
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::NegOp neg, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(neg.getInput(), ox::NegOp::create(b, loc, ctx.grad()));
  return success();
}

LogicalResult gradient(ox::SqrtOp sqrt, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value half = ox::MulOp::create(b, loc, ctx.grad().getType(), ctx.grad(), ctx.constant(loc, 0.5f));
  ctx.give(sqrt.getInput(), ox::DivOp::create(b, loc, half.getType(), half, sqrt.getResult()));
  return success();
}

LogicalResult gradient(ox::ExpOp exp, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(exp.getInput(),
           ox::MulOp::create(b, loc, ctx.grad().getType(), ctx.grad(), exp.getResult()));
  return success();
}

LogicalResult gradient(ox::LogOp log, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(log.getInput(),
           ox::DivOp::create(b, loc, ctx.grad().getType(), ctx.grad(), ctx.saved(log.getInput())));
  return success();
}

// Floor, Ceil and Sign are piecewise constant: their gradient is zero,
// which PyTorch also gives at the steps, so nothing flows to the input.
LogicalResult gradient(ox::FloorOp, GradientContext &, OpBuilder &, Location) { return success(); }
LogicalResult gradient(ox::CeilOp, GradientContext &, OpBuilder &, Location) { return success(); }
LogicalResult gradient(ox::SignOp, GradientContext &, OpBuilder &, Location) { return success(); }

//===----------------------------------------------------------------------===//
// Layout and copies
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::ReshapeOp reshape, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(reshape.getInput(),
           ox::ReshapeOp::create(b, loc, reshape.getInput().getType(), ctx.grad()));
  return success();
}

LogicalResult gradient(ox::ExpandOp expand, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(expand.getInput(), ctx.grad()); // give() sums the copies back
  return success();
}

LogicalResult gradient(ox::TransposeOp transpose, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  ArrayRef<int64_t> perm = transpose.getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  ctx.give(transpose.getInput(),
           ox::TransposeOp::create(b, loc, transpose.getInput().getType(), ctx.grad(),
                                   b.getDenseI64ArrayAttr(inverse)));
  return success();
}

LogicalResult gradient(ox::CastOp cast, GradientContext &ctx, OpBuilder &b, Location loc) {
  // Casts between float and integer carry no gradient.
  if (cast.getInput().getType() == cast.getResult().getType())
    ctx.give(cast.getInput(), ctx.grad());
  return success();
}

LogicalResult gradient(ox::IdentityOp identity, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(identity.getInput(), ctx.grad());
  return success();
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::GatherOp gather, GradientContext &ctx, OpBuilder &b, Location loc) {
  auto dataType = tensorType(gather.getData());
  int64_t axis = *normalizeAxis(gather.getAxis(), dataType.getRank());
  ctx.give(gather.getData(), GatherGradOp::create(b, loc, dataType, ctx.grad(), gather.getIndices(),
                                                  b.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult gradient(ox::GatherElementsOp gather, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  auto dataType = tensorType(gather.getData());
  int64_t axis = *normalizeAxis(gather.getAxis(), dataType.getRank());
  ctx.give(gather.getData(),
           GatherElementsGradOp::create(b, loc, dataType, ctx.grad(), gather.getIndices(),
                                        b.getI64IntegerAttr(axis)));
  return success();
}

/// none: data's gradient is dy where nothing was written (torch.scatter's),
/// each update's the dy where it landed (also one a repeated index
/// overwrote, as torch's). add: dy for data, gathered for the updates. mul:
/// dy times the product of the updates landing on each element for data;
/// the updates' gradient is not supported.
LogicalResult gradient(ox::ScatterElementsOp scatter, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  Value dy = ctx.grad(), indices = scatter.getIndices();
  auto axis = b.getI64IntegerAttr(
      *normalizeAxis(scatter.getAxis(), tensorType(scatter.getData()).getRank()));
  StringRef reduction = scatter.getReduction();
  if (reduction == "mul" && ctx.needsGrad(scatter.getUpdates()))
    return scatter.emitOpError("the gradient of the updates of a ScatterElements with reduction "
                               "'mul' is not supported");
  if (ctx.needsGrad(scatter.getData())) {
    Value ddata = dy;
    if (reduction == "none")
      ddata = ScatterElementsGradOp::create(b, loc, dy.getType(), dy, indices, axis);
    else if (reduction == "mul")
      ddata = ox::ScatterElementsOp::create(b, loc, dy.getType(), dy, indices,
                                            ctx.saved(scatter.getUpdates()), axis,
                                            b.getStringAttr("mul"));
    ctx.give(scatter.getData(), ddata);
  }
  if (ctx.needsGrad(scatter.getUpdates()))
    ctx.give(scatter.getUpdates(), ox::GatherElementsOp::create(
                                       b, loc, scatter.getUpdates().getType(), dy, indices, axis));
  return success();
}

LogicalResult gradient(ox::GatherNDOp gather, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(gather.getData(), GatherNDGradOp::create(b, loc, gather.getData().getType(), ctx.grad(),
                                                    gather.getIndices()));
  return success();
}

/// As ScatterElements', by slices.
LogicalResult gradient(ox::ScatterNDOp scatter, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad(), indices = scatter.getIndices();
  StringRef reduction = scatter.getReduction();
  if (reduction == "mul" && ctx.needsGrad(scatter.getUpdates()))
    return scatter.emitOpError("the gradient of the updates of a ScatterND with reduction 'mul' "
                               "is not supported");
  if (ctx.needsGrad(scatter.getData())) {
    Value ddata = dy;
    if (reduction == "none")
      ddata = ScatterNDGradOp::create(b, loc, dy.getType(), dy, indices);
    else if (reduction == "mul")
      ddata = ox::ScatterNDOp::create(b, loc, dy.getType(), dy, indices,
                                      ctx.saved(scatter.getUpdates()), b.getStringAttr("mul"));
    ctx.give(scatter.getData(), ddata);
  }
  if (ctx.needsGrad(scatter.getUpdates()))
    ctx.give(scatter.getUpdates(),
             ox::GatherNDOp::create(b, loc, scatter.getUpdates().getType(), dy, indices));
  return success();
}

/// The values' gradient goes back to where they came from (the indices
/// never repeat); the indices have none.
LogicalResult gradient(ox::TopKOp topk, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dvalues = ctx.grad(topk.getValues());
  if (!dvalues)
    return success();
  auto inType = tensorType(topk.getInput());
  ctx.give(topk.getInput(), GatherElementsGradOp::create(b, loc, inType, dvalues, topk.getIndices(),
                                                         b.getI64IntegerAttr(*normalizeAxis(
                                                             topk.getAxis(), inType.getRank()))));
  return success();
}

LogicalResult gradient(ox::SliceOp slice, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(slice.getInput(), SliceGradOp::create(b, loc, slice.getInput().getType(), ctx.grad(),
                                                 slice.getStartsAttr(), slice.getStepsAttr()));
  return success();
}

LogicalResult gradient(ox::ConcatOp concat, GradientContext &ctx, OpBuilder &b, Location loc) {
  auto type = tensorType(concat.getResult());
  int64_t axis = *normalizeAxis(concat.getAxis(), type.getRank());
  SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1);
  for (Value input : concat.getInputs()) {
    if (ctx.needsGrad(input))
      ctx.give(input,
               ox::SliceOp::create(b, loc, input.getType(), ctx.grad(),
                                   b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(steps)));
    starts[axis] += tensorType(input).getDimSize(axis);
  }
  return success();
}

/// The parts' gradients side by side: one Concat, however many parts (zeros
/// for a part the loss does not reach).
LogicalResult gradient(ox::SplitOp split, GradientContext &ctx, OpBuilder &b, Location loc) {
  SmallVector<Value> parts;
  for (Value part : split.getParts()) {
    Value g = ctx.grad(part);
    parts.push_back(
        g ? g : ox::ExpandOp::create(b, loc, part.getType(), ctx.constant(loc, 0.0f)).getResult());
  }
  ctx.give(split.getInput(), parts.size() == 1
                                 ? parts.front()
                                 : ox::ConcatOp::create(b, loc, split.getInput().getType(), parts,
                                                        split.getAxisAttr())
                                       .getResult());
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

/// ReduceSum and ReduceMean: the gradient expanded back over the reduced
/// axes (divided by their size for the mean).
template <typename ReduceOp>
LogicalResult reduceGradient(ReduceOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  auto inType = tensorType(reduce.getInput());
  SmallVector<bool> reduced(inType.getRank(), reduce.getAxes().empty());
  for (int64_t axis : reduce.getAxes())
    reduced[*normalizeAxis(axis, inType.getRank())] = true;
  SmallVector<int64_t> kept;
  int64_t count = 1;
  for (int64_t i = 0; i < inType.getRank(); ++i) {
    kept.push_back(reduced[i] ? 1 : inType.getDimSize(i));
    if (reduced[i])
      count *= inType.getDimSize(i);
  }
  Value g = ctx.grad();
  if (tensorType(g).getShape() != ArrayRef<int64_t>(kept))
    g = ox::ReshapeOp::create(b, loc, inType.clone(kept), g);
  if (isa<ox::ReduceMeanOp>(reduce.getOperation()))
    g = ox::MulOp::create(b, loc, g.getType(), g, ctx.constant(loc, 1.0f / count));
  if (tensorType(g) != inType)
    g = ox::ExpandOp::create(b, loc, inType, g);
  ctx.give(reduce.getInput(), g);
  return success();
}

LogicalResult gradient(ox::ReduceSumOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  return reduceGradient(reduce, ctx, b, loc);
}

LogicalResult gradient(ox::ReduceMeanOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  return reduceGradient(reduce, ctx, b, loc);
}

/// A reduction's input type and its result's type with the reduced
/// dimensions kept as 1, and `v` (of the result's shape) reshaped to it.
template <typename ReduceOp> struct Reduced {
  RankedTensorType in, kept;

  Reduced(ReduceOp reduce) : in(tensorType(reduce.getInput())) {
    SmallVector<bool> reduced(in.getRank(), reduce.getAxes().empty());
    for (int64_t axis : reduce.getAxes())
      reduced[*normalizeAxis(axis, in.getRank())] = true;
    SmallVector<int64_t> shape;
    for (int64_t i = 0; i < in.getRank(); ++i)
      shape.push_back(reduced[i] ? 1 : in.getDimSize(i));
    kept = in.clone(shape);
  }
  Value keep(OpBuilder &b, Location loc, Value v) const {
    return tensorType(v) == kept ? v : ox::ReshapeOp::create(b, loc, kept, v).getResult();
  }
  RankedTensorType mask(RankedTensorType t) const {
    return t.clone(IntegerType::get(t.getContext(), 64));
  }
};

/// ReduceMax and ReduceMin: the gradient split evenly among the elements
/// equal to the result (torch.amax's and torch.amin's rule).
template <typename ReduceOp>
LogicalResult extremeGradient(ReduceOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  Reduced<ReduceOp> r(reduce);
  Value x = ctx.saved(reduce.getInput());
  Value y = r.keep(b, loc, reduce.getResult()), dy = r.keep(b, loc, ctx.grad());
  Value hit =
      ox::CastOp::create(b, loc, r.in, ox::EqualOp::create(b, loc, r.mask(r.in), x, y).getResult());
  Value ties =
      ox::ReduceSumOp::create(b, loc, r.kept, hit, reduce.getAxesAttr(), b.getBoolAttr(true));
  Value share = ox::DivOp::create(b, loc, r.kept, dy, ties);
  ctx.give(reduce.getInput(), ox::MulOp::create(b, loc, r.in, hit, share));
  return success();
}

LogicalResult gradient(ox::ReduceMaxOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  return extremeGradient(reduce, ctx, b, loc);
}

LogicalResult gradient(ox::ReduceMinOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  return extremeGradient(reduce, ctx, b, loc);
}

/// dx_i = dy * (the product of the other elements), exact with zeros
/// (torch.prod's): p is the product of the nonzero elements; with none zero
/// dx_i = dy p / x_i, with one zero only that element gets dy p, with more
/// every dx_i is 0.
LogicalResult gradient(ox::ReduceProdOp reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  Reduced<ox::ReduceProdOp> r(reduce);
  Value x = ctx.saved(reduce.getInput()), dy = r.keep(b, loc, ctx.grad());
  Value zero = ctx.constant(loc, 0.0f), one = ctx.constant(loc, 1.0f);
  Value isZero = ox::EqualOp::create(b, loc, r.mask(r.in), x, zero);
  Value nonzero = ox::WhereOp::create(b, loc, r.in, isZero, one, x);
  Value p =
      ox::ReduceProdOp::create(b, loc, r.kept, nonzero, reduce.getAxesAttr(), b.getBoolAttr(true));
  Value zeros = ox::ReduceSumOp::create(b, loc, r.kept, ox::CastOp::create(b, loc, r.in, isZero),
                                        reduce.getAxesAttr(), b.getBoolAttr(true));
  Value dyp = ox::MulOp::create(b, loc, r.kept, dy, p);
  Value noZero = ox::EqualOp::create(b, loc, r.mask(r.kept), zeros, zero);
  Value oneZero = ox::EqualOp::create(b, loc, r.mask(r.kept), zeros, one);
  Value atZero = ox::WhereOp::create(b, loc, r.kept, oneZero, dyp, zero);
  Value atNonzero = ox::WhereOp::create(b, loc, r.in, noZero,
                                        ox::DivOp::create(b, loc, r.in, dyp, nonzero), zero);
  ctx.give(reduce.getInput(), ox::WhereOp::create(b, loc, r.in, isZero, atZero, atNonzero));
  return success();
}

/// dx = x dy / y, and 0 where the norm y is 0 (torch.linalg.vector_norm's).
LogicalResult gradient(ox::ReduceL2Op reduce, GradientContext &ctx, OpBuilder &b, Location loc) {
  Reduced<ox::ReduceL2Op> r(reduce);
  Value x = ctx.saved(reduce.getInput());
  Value y = r.keep(b, loc, reduce.getResult()), dy = r.keep(b, loc, ctx.grad());
  Value zero = ctx.constant(loc, 0.0f);
  Value scale =
      ox::WhereOp::create(b, loc, r.kept, ox::EqualOp::create(b, loc, r.mask(r.kept), y, zero),
                          zero, ox::DivOp::create(b, loc, r.kept, dy, y));
  ctx.give(reduce.getInput(), ox::MulOp::create(b, loc, r.in, x, scale));
  return success();
}

/// The gradient of a running sum is the running sum the other way.
LogicalResult gradient(ox::CumSumOp cumsum, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(cumsum.getInput(),
           ox::CumSumOp::create(b, loc, ctx.grad().getType(), ctx.grad(), cumsum.getAxisAttr(),
                                b.getBoolAttr(cumsum.getExclusive()),
                                b.getBoolAttr(!cumsum.getReverse())));
  return success();
}

//===----------------------------------------------------------------------===//
// Matrix products
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::GemmOp gemm, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  bool ta = gemm.getTransA(), tb = gemm.getTransB();
  auto alpha = gemm.getAlphaAttr();
  auto zeroBeta = b.getF32FloatAttr(0.0f);
  auto makeGemm = [&](Value x, Value y, bool tx, bool ty, Type type) {
    return ox::GemmOp::create(b, loc, type, x, y, Value(), alpha, zeroBeta, b.getBoolAttr(tx),
                              b.getBoolAttr(ty))
        .getResult();
  };
  if (ctx.needsGrad(gemm.getA())) {
    Value bv = ctx.saved(gemm.getB());
    Type type = gemm.getA().getType();
    // op(A)' = alpha * dY * op(B)^T; A' is that or its transpose.
    Value da = ta ? makeGemm(bv, dy, tb, true, type) : makeGemm(dy, bv, false, !tb, type);
    ctx.give(gemm.getA(), da);
  }
  if (ctx.needsGrad(gemm.getB())) {
    Value av = ctx.saved(gemm.getA());
    Type type = gemm.getB().getType();
    // op(B)' = alpha * op(A)^T * dY; B' is that or its transpose.
    Value db = tb ? makeGemm(dy, av, true, ta, type) : makeGemm(av, dy, !ta, false, type);
    ctx.give(gemm.getB(), db);
  }
  if (gemm.getC() && ctx.needsGrad(gemm.getC())) {
    Value dc = dy;
    if (gemm.getBeta().convertToFloat() != 1.0f)
      dc = ox::MulOp::create(b, loc, dy.getType(), dy,
                             ctx.constant(loc, gemm.getBeta().convertToFloat()));
    ctx.give(gemm.getC(), dc);
  }
  return success();
}

Value transposeLastTwo(OpBuilder &b, Location loc, Value v) {
  auto type = tensorType(v);
  SmallVector<int64_t> perm, shape(type.getShape());
  for (int64_t i = 0; i < type.getRank(); ++i)
    perm.push_back(i);
  std::swap(perm[type.getRank() - 1], perm[type.getRank() - 2]);
  std::swap(shape[type.getRank() - 1], shape[type.getRank() - 2]);
  return ox::TransposeOp::create(b, loc, type.clone(shape), v, b.getDenseI64ArrayAttr(perm));
}

LogicalResult gradient(ox::MatMulOp matmul, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  auto dyType = tensorType(dy);
  auto withLastTwo = [&](int64_t m, int64_t n) {
    SmallVector<int64_t> shape(dyType.getShape().drop_back(2));
    shape.push_back(m);
    shape.push_back(n);
    return dyType.clone(shape);
  };
  auto lhsType = tensorType(matmul.getLhs()), rhsType = tensorType(matmul.getRhs());
  int64_t m = lhsType.getShape().end()[-2], k = lhsType.getShape().back();
  int64_t n = rhsType.getShape().back();
  if (ctx.needsGrad(matmul.getLhs()))
    ctx.give(matmul.getLhs(),
             ox::MatMulOp::create(b, loc, withLastTwo(m, k), dy,
                                  transposeLastTwo(b, loc, ctx.saved(matmul.getRhs()))));
  if (ctx.needsGrad(matmul.getRhs()))
    ctx.give(matmul.getRhs(),
             ox::MatMulOp::create(b, loc, withLastTwo(k, n),
                                  transposeLastTwo(b, loc, ctx.saved(matmul.getLhs())), dy));
  return success();
}

//===----------------------------------------------------------------------===//
// Softmax and losses: fused gradient ops (dialects/Zero/ZeroOps.td)
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::DropoutOp dropout, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(dropout.getInput(), DropoutGradOp::create(b, loc, ctx.grad(), dropout.getRatioAttr(),
                                                      dropout.getStreamAttr(),
                                                      dropout.getMicroStepAttr()));
  return success();
}

LogicalResult gradient(ox::SoftmaxOp softmax, GradientContext &ctx, OpBuilder &b, Location loc) {
  int64_t axis = *normalizeAxis(softmax.getAxis(), tensorType(softmax.getInput()).getRank());
  ctx.give(softmax.getInput(),
           SoftmaxGradOp::create(b, loc, ctx.grad(), softmax.getResult(), axis));
  return success();
}

LogicalResult gradient(ox::LogSoftmaxOp logSoftmax, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  int64_t axis = *normalizeAxis(logSoftmax.getAxis(), tensorType(logSoftmax.getInput()).getRank());
  ctx.give(logSoftmax.getInput(),
           LogSoftmaxGradOp::create(b, loc, ctx.grad(), logSoftmax.getResult(), axis));
  return success();
}

LogicalResult gradient(ox::SoftmaxCrossEntropyLossOp loss, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  if (ctx.grad(loss.getLogProb()))
    return loss.emitOpError("gradients through the log_prob output are not supported");
  // Class weights are data (as in PyTorch, which has no gradient for them).
  if (loss.getWeights() && ctx.needsGrad(loss.getWeights()))
    return loss.emitOpError("class weights computed from trainable parameters are not "
                            "supported");
  ctx.give(loss.getInput(), SoftmaxCrossEntropyLossGradOp::create(
                                b, loc, loss.getInput().getType(), ctx.grad(),
                                ctx.saved(loss.getInput()), loss.getLabels(), loss.getWeights(),
                                loss.getReductionAttr(), loss.getIgnoreIndexAttr()));
  return success();
}

LogicalResult gradient(ox::NegativeLogLikelihoodLossOp loss, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  if (loss.getWeights() && ctx.needsGrad(loss.getWeights()))
    return loss.emitOpError("class weights computed from trainable parameters are not "
                            "supported");
  ctx.give(loss.getInput(), NegativeLogLikelihoodLossGradOp::create(
                                b, loc, loss.getInput().getType(), ctx.grad(),
                                ctx.saved(loss.getInput()), loss.getLabels(), loss.getWeights(),
                                loss.getReductionAttr(), loss.getIgnoreIndexAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Normalizations
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::LayerNormalizationOp norm, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  if (ctx.grad(norm.getMean()) || ctx.grad(norm.getInvStdDev()))
    return norm.emitOpError("gradients through the mean and inv_std_dev outputs are not "
                            "supported");
  auto grads = LayerNormalizationGradOp::create(
      b, loc,
      TypeRange{norm.getInput().getType(), norm.getScale().getType(), norm.getScale().getType()},
      ctx.grad(), ctx.saved(norm.getInput()), ctx.saved(norm.getScale()), norm.getMean(),
      norm.getInvStdDev(), norm.getAxisAttr());
  ctx.give(norm.getInput(), grads.getDinput());
  ctx.give(norm.getScale(), grads.getDscale());
  if (norm.getBias())
    ctx.give(norm.getBias(), grads.getDbias());
  return success();
}

LogicalResult gradient(ox::BatchNormalizationOp norm, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  if (!ctx.grad())
    return success(); // only the running statistics are used: state, no gradient
  auto channels = norm.getScale().getType();
  auto g = BatchNormalizationGradOp::create(
      b, loc, TypeRange{norm.getInput().getType(), channels, channels}, ctx.grad(),
      ctx.saved(norm.getInput()), ctx.saved(norm.getScale()), norm.getSavedMean(),
      norm.getSavedInvStd());
  ctx.give(norm.getInput(), g.getDinput());
  ctx.give(norm.getScale(), g.getDscale());
  ctx.give(norm.getBias(), g.getDbias());
  return success();
}

//===----------------------------------------------------------------------===//
// Convolution and pooling: fused gradient ops
//===----------------------------------------------------------------------===//

LogicalResult gradient(ox::ConvOp conv, GradientContext &ctx, OpBuilder &b, Location loc) {
  Value dy = ctx.grad();
  auto create = [&](auto tag, Type type, Value saved) {
    using OpTy = decltype(tag);
    return OpTy::create(b, loc, type, dy, saved, conv.getStridesAttr(), conv.getPadsAttr(),
                        conv.getDilationsAttr(), conv.getGroupAttr())
        .getResult();
  };
  if (ctx.needsGrad(conv.getInput()))
    ctx.give(conv.getInput(),
             create(ConvGradInputOp(), conv.getInput().getType(), ctx.saved(conv.getWeight())));
  if (ctx.needsGrad(conv.getWeight()))
    ctx.give(conv.getWeight(),
             create(ConvGradWeightOp(), conv.getWeight().getType(), ctx.saved(conv.getInput())));
  if (conv.getBias() && ctx.needsGrad(conv.getBias())) {
    auto biasType = tensorType(conv.getBias());
    // Over the batch and every spatial axis.
    SmallVector<int64_t> axes{0};
    llvm::append_range(axes, llvm::seq<int64_t>(2, tensorType(dy).getRank()));
    ctx.give(conv.getBias(),
             ox::ReduceSumOp::create(b, loc, biasType, dy, b.getDenseI64ArrayAttr(axes),
                                     b.getBoolAttr(false)));
  }
  return success();
}

// ConvTranspose is the adjoint of a Conv from its result to its input, so
// its input's gradient is that Conv of dy and its weight's that Conv's
// weight gradient, with x in the role of the Conv's output gradient.
LogicalResult gradient(ox::ConvTransposeOp convT, GradientContext &ctx, OpBuilder &b,
                       Location loc) {
  Value dy = ctx.grad();
  if (ctx.needsGrad(convT.getInput()))
    ctx.give(convT.getInput(),
             ox::ConvOp::create(b, loc, convT.getInput().getType(), dy,
                                ctx.saved(convT.getWeight()), Value(), convT.getStridesAttr(),
                                convT.getPadsAttr(), convT.getDilationsAttr(), convT.getGroupAttr())
                 .getResult());
  if (ctx.needsGrad(convT.getWeight()))
    ctx.give(convT.getWeight(),
             ConvGradWeightOp::create(b, loc, convT.getWeight().getType(),
                                      ctx.saved(convT.getInput()), dy, convT.getStridesAttr(),
                                      convT.getPadsAttr(), convT.getDilationsAttr(),
                                      convT.getGroupAttr())
                 .getResult());
  return success();
}

LogicalResult gradient(ox::MaxPoolOp pool, GradientContext &ctx, OpBuilder &b, Location loc) {
  if (ctx.grad(pool.getArgmax()))
    return pool.emitOpError("argmax has no gradient");
  ctx.give(pool.getInput(), MaxPoolGradOp::create(b, loc, pool.getInput().getType(), ctx.grad(),
                                                  pool.getArgmax(), pool.getKernelShapeAttr(),
                                                  pool.getStridesAttr(), pool.getPadsAttr(),
                                                  pool.getCeilModeAttr(), pool.getDilationsAttr()));
  return success();
}

LogicalResult gradient(ox::AveragePoolOp pool, GradientContext &ctx, OpBuilder &b, Location loc) {
  ctx.give(pool.getInput(),
           AveragePoolGradOp::create(b, loc, pool.getInput().getType(), ctx.grad(),
                                     pool.getKernelShapeAttr(), pool.getStridesAttr(),
                                     pool.getPadsAttr(), pool.getCountIncludePadAttr(),
                                     pool.getCeilModeAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Models
//===----------------------------------------------------------------------===//

/// The model of an op with its own `gradient` overload above.
template <typename OpTy> struct Rule : GradientOpInterface::ExternalModel<Rule<OpTy>, OpTy> {
  LogicalResult buildGradient(Operation *op, GradientContext &ctx) const {
    return gradient(cast<OpTy>(op), ctx, ctx.getBuilder(), op->getLoc());
  }
};

template <typename... OpTys> void attachRules(MLIRContext &context) {
  (OpTys::template attachInterface<Rule<OpTys>>(context), ...);
}

/// The unary ops with a derivative kernel (zero/elementwise_ops.h): one
/// zero.elementwise_grad of the incoming gradient and the forward tensor the
/// kernel reads, with the op's attributes. One model for all of them, so it
/// finds the op's entry by name.
struct ElementwiseRule : GradientOpInterface::FallbackModel<ElementwiseRule> {
  LogicalResult buildGradient(Operation *op, GradientContext &ctx) const {
    const plan_ops::ElementwiseOp &info = *plan_ops::find_elementwise(op->getName().stripDialect());
    Value input = op->getOperand(0);
    Value forward = info.saved == elementwise::Saved::Input ? ctx.saved(input) : op->getResult(0);
    auto derivative =
        ElementwiseGradOp::create(ctx.getBuilder(), op->getLoc(), info.name, ctx.grad(), forward,
                                  /*alpha=*/nullptr, /*beta=*/nullptr, /*gamma=*/nullptr,
                                  /*min=*/nullptr, /*max=*/nullptr);
    for (const auto &attribute : llvm::ArrayRef(info.attributes, info.num_attributes))
      derivative->setAttr(attribute.name, op->getAttr(attribute.name));
    ctx.give(input, derivative);
    return success();
  }
};

} // namespace

void zero::registerGradientRules(DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *context, ox::OnnxDialect *) {
    attachRules<ox::AddOp, ox::SubOp, ox::MulOp, ox::DivOp, ox::PowOp, ox::MaxOp, ox::MinOp,
                ox::PReluOp, ox::ModOp, ox::WhereOp, ox::NegOp, ox::SqrtOp, ox::ExpOp, ox::LogOp,
                ox::FloorOp, ox::CeilOp, ox::SignOp, ox::ReshapeOp, ox::ExpandOp, ox::TransposeOp,
                ox::CastOp, ox::IdentityOp, ox::GatherOp, ox::GatherElementsOp,
                ox::ScatterElementsOp, ox::GatherNDOp, ox::ScatterNDOp, ox::TopKOp, ox::SliceOp,
                ox::SplitOp, ox::ConcatOp, ox::ReduceSumOp, ox::ReduceMeanOp, ox::ReduceMaxOp,
                ox::ReduceMinOp,
                ox::ReduceProdOp, ox::ReduceL2Op, ox::CumSumOp, ox::GemmOp, ox::MatMulOp,
                ox::SoftmaxOp, ox::LogSoftmaxOp, ox::SoftmaxCrossEntropyLossOp,
                ox::NegativeLogLikelihoodLossOp, ox::LayerNormalizationOp, ox::BatchNormalizationOp,
                ox::ConvOp, ox::ConvTransposeOp, ox::MaxPoolOp, ox::AveragePoolOp,
                ox::DropoutOp>(*context);
    for (const plan_ops::ElementwiseOp &info : plan_ops::kElementwiseOps) {
      if (!info.has_derivative)
        continue;
      // Every list entry is an onnx op (the importer's table is the list).
      auto name = RegisteredOperationName::lookup(("onnx." + Twine(info.name)).str(), context);
      assert(name && "an elementwise op without an onnx dialect op");
      // Were an op ever to have both, its composed rule above would win.
      if (name && !name->hasInterface<GradientOpInterface>())
        name->attachInterface<ElementwiseRule>();
    }
  });
}
