//===- BuildTrainStep.cpp - reverse-mode autodiff and optimizer updates ---===//
//
// Differentiates @main's scalar loss with respect to every parameter global
// and appends one optimizer update per parameter. The result, @train_step,
// is still world-size agnostic: partitioning happens later.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "dialects/ShapeUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/TypeSwitch.h"
#include "zero/plan_ops.h"

namespace zero {
#define GEN_PASS_DEF_BUILDTRAINSTEP
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

namespace {

/// Emits the backward pass op by op, in reverse program order.
class GradientBuilder {
public:
  GradientBuilder(OpBuilder &builder) : b(builder) {}

  /// Seeds d(loss)/d(loss) = 1 and differentiates `ops` (program order).
  LogicalResult run(Value loss, ArrayRef<Operation *> ops);

  /// The gradient of every parameter the loss depends on, in first-use order.
  const llvm::MapVector<StringAttr, Value> &parameterGradients() const { return paramGrads; }

private:
  LogicalResult differentiate(Operation *op);
  void accumulate(Value primal, Value grad);
  /// `v` as the backward pass may use it: parameter reads are re-issued so
  /// each parameter's backward uses are visible apart from its forward ones.
  Value saved(Value v);
  bool needsGrad(Value v) const { return requiresGrad.contains(v); }

  Value constant(Location loc, float value);
  Value unbroadcast(Location loc, Value grad, RankedTensorType target);
  Value transposeLastTwo(Location loc, Value v);

  OpBuilder &b;
  DenseSet<Value> requiresGrad;
  DenseMap<Value, Value> grads;
  DenseMap<Attribute, Value> backwardParamReads;
  DenseMap<Value, Value> rematerialized;
  llvm::MapVector<StringAttr, Value> paramGrads;
};

Value GradientBuilder::constant(Location loc, float value) {
  auto type = RankedTensorType::get({}, b.getF32Type());
  return ox::ConstantOp::create(b, loc, DenseElementsAttr::get(type, value));
}

Value GradientBuilder::unbroadcast(Location loc, Value grad, RankedTensorType target) {
  auto type = tensorType(grad);
  if (type == target)
    return grad;
  ArrayRef<int64_t> g = type.getShape(), t = target.getShape();
  int64_t lead = type.getRank() - target.getRank();
  SmallVector<int64_t> axes, keptShape;
  for (int64_t i = 0; i < type.getRank(); ++i) {
    bool reduce = i < lead || (t[i - lead] == 1 && g[i] != 1);
    if (reduce)
      axes.push_back(i);
    keptShape.push_back(reduce ? 1 : g[i]);
  }
  Value result = grad;
  if (!axes.empty())
    result = ox::ReduceSumOp::create(b, loc, type.clone(keptShape), grad,
                                     b.getDenseI64ArrayAttr(axes), b.getBoolAttr(true));
  if (tensorType(result) != target)
    result = ox::ReshapeOp::create(b, loc, target, result);
  return result;
}

Value GradientBuilder::transposeLastTwo(Location loc, Value v) {
  auto type = tensorType(v);
  SmallVector<int64_t> perm, shape(type.getShape());
  for (int64_t i = 0; i < type.getRank(); ++i)
    perm.push_back(i);
  std::swap(perm[type.getRank() - 1], perm[type.getRank() - 2]);
  std::swap(shape[type.getRank() - 1], shape[type.getRank() - 2]);
  return ox::TransposeOp::create(b, loc, type.clone(shape), v, b.getDenseI64ArrayAttr(perm));
}

void GradientBuilder::accumulate(Value primal, Value grad) {
  auto [it, inserted] = grads.try_emplace(primal, grad);
  if (!inserted)
    it->second = ox::AddOp::create(b, grad.getLoc(), grad.getType(), it->second, grad);
}

Value GradientBuilder::saved(Value v) {
  if (auto load = v.getDefiningOp<ml_program::GlobalLoadOp>()) {
    Value &reissued = backwardParamReads[load.getGlobalAttr()];
    if (!reissued)
      reissued = ml_program::GlobalLoadOp::create(b, load.getLoc(), load.getType(),
                                                  load.getGlobalAttr());
    return reissued;
  }
  // Layout changes of a parameter (a transposed or sliced weight) are redone
  // from the re-read parameter rather than kept alive from the forward pass:
  // otherwise ZeRO-3 would hold a full copy of such weights across the step.
  Operation *def = v.getDefiningOp();
  if (!def || !isa<ox::TransposeOp, ox::ReshapeOp, ox::SliceOp, ox::CastOp>(def))
    return v;
  Value source = saved(def->getOperand(0));
  if (source == def->getOperand(0))
    return v;
  Value &redone = rematerialized[v];
  if (!redone) {
    Operation *clone = b.clone(*def);
    clone->setOperand(0, source);
    redone = clone->getResult(0);
  }
  return redone;
}

LogicalResult GradientBuilder::run(Value loss, ArrayRef<Operation *> ops) {
  for (Operation *op : ops) {
    if (auto load = dyn_cast<ml_program::GlobalLoadOp>(op)) {
      auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
          op, load.getGlobalAttr());
      if (global && isTrainable(global) && tensorType(load.getResult()).getElementType().isF32())
        requiresGrad.insert(load.getResult());
      continue;
    }
    if (llvm::any_of(op->getOperands(), [&](Value v) { return needsGrad(v); }))
      for (Value r : op->getResults())
        if (tensorType(r).getElementType().isF32())
          requiresGrad.insert(r);
  }
  if (!needsGrad(loss))
    return emitError(loss.getLoc()) << "the loss does not depend on any trainable parameter";

  grads[loss] = constant(loss.getLoc(), 1.0f);
  for (Operation *op : llvm::reverse(ops))
    if (llvm::any_of(op->getResults(), [&](Value r) { return grads.count(r); }))
      if (failed(differentiate(op)))
        return failure();
  return success();
}

LogicalResult GradientBuilder::differentiate(Operation *op) {
  Location loc = op->getLoc();
  auto grad = [&](unsigned result = 0) { return grads.lookup(op->getResult(result)); };
  auto give = [&](Value operand, Value g) {
    if (needsGrad(operand))
      accumulate(operand, unbroadcast(loc, g, tensorType(operand)));
  };

  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ml_program::GlobalLoadOp load) {
        Value g = grad();
        auto [it, inserted] = paramGrads.try_emplace(load.getGlobalAttr().getRootReference(), g);
        if (!inserted)
          it->second = ox::AddOp::create(b, loc, g.getType(), it->second, g);
        return success();
      })
      .Case([&](ox::AddOp add) {
        give(add.getLhs(), grad());
        give(add.getRhs(), grad());
        return success();
      })
      .Case([&](ox::SubOp sub) {
        give(sub.getLhs(), grad());
        if (needsGrad(sub.getRhs()))
          give(sub.getRhs(), ox::NegOp::create(b, loc, grad()));
        return success();
      })
      .Case([&](ox::MulOp mul) {
        Value dy = grad();
        if (needsGrad(mul.getLhs()))
          give(mul.getLhs(), ox::MulOp::create(b, loc, dy.getType(), dy, saved(mul.getRhs())));
        if (needsGrad(mul.getRhs()))
          give(mul.getRhs(), ox::MulOp::create(b, loc, dy.getType(), dy, saved(mul.getLhs())));
        return success();
      })
      .Case([&](ox::DivOp div) {
        Value dy = grad();
        Value rhs = saved(div.getRhs());
        if (needsGrad(div.getLhs()))
          give(div.getLhs(), ox::DivOp::create(b, loc, dy.getType(), dy, rhs));
        if (needsGrad(div.getRhs())) {
          // d(a/b)/db = -(a/b)/b
          Value t = ox::MulOp::create(b, loc, dy.getType(), dy, div.getResult());
          t = ox::DivOp::create(b, loc, dy.getType(), t, rhs);
          give(div.getRhs(), ox::NegOp::create(b, loc, t));
        }
        return success();
      })
      .Case([&](ox::PowOp pow) {
        Value dy = grad();
        Value base = saved(pow.getLhs()), exponent = saved(pow.getRhs());
        if (needsGrad(pow.getLhs())) {
          // d(a^e)/da = e * a^(e-1)
          Value em1 = ox::SubOp::create(b, loc, exponent.getType(), exponent, constant(loc, 1));
          Value p = ox::PowOp::create(b, loc, dy.getType(), base, em1);
          Value t = ox::MulOp::create(b, loc, dy.getType(), p, exponent);
          give(pow.getLhs(), ox::MulOp::create(b, loc, dy.getType(), dy, t));
        }
        if (needsGrad(pow.getRhs())) {
          // d(a^e)/de = a^e * ln(a)
          Value lnA = ox::LogOp::create(b, loc, base);
          Value t = ox::MulOp::create(b, loc, dy.getType(), pow.getResult(), lnA);
          give(pow.getRhs(), ox::MulOp::create(b, loc, dy.getType(), dy, t));
        }
        return success();
      })
      .Case([&](ox::NegOp neg) {
        give(neg.getInput(), ox::NegOp::create(b, loc, grad()));
        return success();
      })
      .Case([&](ox::SqrtOp sqrt) {
        Value half = ox::MulOp::create(b, loc, grad().getType(), grad(), constant(loc, 0.5f));
        give(sqrt.getInput(), ox::DivOp::create(b, loc, half.getType(), half, sqrt.getResult()));
        return success();
      })
      .Case([&](ox::ExpOp exp) {
        give(exp.getInput(), ox::MulOp::create(b, loc, grad().getType(), grad(), exp.getResult()));
        return success();
      })
      .Case([&](ox::LogOp log) {
        give(log.getInput(),
             ox::DivOp::create(b, loc, grad().getType(), grad(), saved(log.getInput())));
        return success();
      })
      .Case([&](ox::ReshapeOp reshape) {
        give(reshape.getInput(),
             ox::ReshapeOp::create(b, loc, reshape.getInput().getType(), grad()));
        return success();
      })
      .Case([&](ox::ExpandOp expand) {
        give(expand.getInput(), grad()); // unbroadcast sums the copies back
        return success();
      })
      .Case([&](ox::TransposeOp transpose) {
        ArrayRef<int64_t> perm = transpose.getPerm();
        SmallVector<int64_t> inverse(perm.size());
        for (auto [i, p] : llvm::enumerate(perm))
          inverse[p] = i;
        give(transpose.getInput(),
             ox::TransposeOp::create(b, loc, transpose.getInput().getType(), grad(),
                                     b.getDenseI64ArrayAttr(inverse)));
        return success();
      })
      .Case([&](ox::CastOp cast) {
        // Casts between float and integer carry no gradient.
        if (cast.getInput().getType() == cast.getResult().getType())
          give(cast.getInput(), grad());
        return success();
      })
      .Case([&](ox::IdentityOp identity) {
        give(identity.getInput(), grad());
        return success();
      })
      .Case([&](ox::GemmOp gemm) {
        Value dy = grad();
        bool ta = gemm.getTransA(), tb = gemm.getTransB();
        auto alpha = gemm.getAlphaAttr();
        auto zeroBeta = b.getF32FloatAttr(0.0f);
        auto makeGemm = [&](Value x, Value y, bool tx, bool ty, Type type) {
          return ox::GemmOp::create(b, loc, type, x, y, Value(), alpha, zeroBeta,
                                    b.getBoolAttr(tx), b.getBoolAttr(ty))
              .getResult();
        };
        if (needsGrad(gemm.getA())) {
          Value bv = saved(gemm.getB());
          Type type = gemm.getA().getType();
          // op(A)' = alpha * dY * op(B)^T; A' is that or its transpose.
          Value da = ta ? makeGemm(bv, dy, tb, true, type) : makeGemm(dy, bv, false, !tb, type);
          give(gemm.getA(), da);
        }
        if (needsGrad(gemm.getB())) {
          Value av = saved(gemm.getA());
          Type type = gemm.getB().getType();
          // op(B)' = alpha * op(A)^T * dY; B' is that or its transpose.
          Value db = tb ? makeGemm(dy, av, true, ta, type) : makeGemm(av, dy, !ta, false, type);
          give(gemm.getB(), db);
        }
        if (gemm.getC() && needsGrad(gemm.getC())) {
          Value dc = dy;
          if (gemm.getBeta().convertToFloat() != 1.0f)
            dc = ox::MulOp::create(b, loc, dy.getType(), dy,
                                   constant(loc, gemm.getBeta().convertToFloat()));
          give(gemm.getC(), dc);
        }
        return success();
      })
      .Case([&](ox::MatMulOp matmul) {
        Value dy = grad();
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
        if (needsGrad(matmul.getLhs()))
          give(matmul.getLhs(),
               ox::MatMulOp::create(b, loc, withLastTwo(m, k), dy,
                                    transposeLastTwo(loc, saved(matmul.getRhs()))));
        if (needsGrad(matmul.getRhs()))
          give(matmul.getRhs(),
               ox::MatMulOp::create(b, loc, withLastTwo(k, n),
                                    transposeLastTwo(loc, saved(matmul.getLhs())), dy));
        return success();
      })
      .Case([&](ox::SoftmaxOp softmax) {
        int64_t axis = *normalizeAxis(softmax.getAxis(), tensorType(softmax.getInput()).getRank());
        give(softmax.getInput(),
             SoftmaxGradOp::create(b, loc, grad(), softmax.getResult(), axis));
        return success();
      })
      .Case([&](ox::LogSoftmaxOp logSoftmax) {
        int64_t axis =
            *normalizeAxis(logSoftmax.getAxis(), tensorType(logSoftmax.getInput()).getRank());
        give(logSoftmax.getInput(),
             LogSoftmaxGradOp::create(b, loc, grad(), logSoftmax.getResult(), axis));
        return success();
      })
      .Case([&](ox::SoftmaxCrossEntropyLossOp loss) -> LogicalResult {
        if (loss.getLogProb() && grads.count(loss.getLogProb()))
          return loss.emitOpError("gradients through the log_prob output are not supported");
        // Class weights are data (as in PyTorch, which has no gradient for them).
        if (loss.getWeights() && needsGrad(loss.getWeights()))
          return loss.emitOpError("class weights computed from trainable parameters are not "
                                  "supported");
        give(loss.getInput(), SoftmaxCrossEntropyLossGradOp::create(
                                  b, loc, loss.getInput().getType(), grad(), saved(loss.getInput()),
                                  loss.getLabels(), loss.getWeights(), loss.getReductionAttr(),
                                  loss.getIgnoreIndexAttr()));
        return success();
      })
      .Case([&](ox::NegativeLogLikelihoodLossOp loss) -> LogicalResult {
        if (loss.getWeights() && needsGrad(loss.getWeights()))
          return loss.emitOpError("class weights computed from trainable parameters are not "
                                  "supported");
        give(loss.getInput(), NegativeLogLikelihoodLossGradOp::create(
                                  b, loc, loss.getInput().getType(), grad(), saved(loss.getInput()),
                                  loss.getLabels(), loss.getWeights(), loss.getReductionAttr(),
                                  loss.getIgnoreIndexAttr()));
        return success();
      })
      .Case<ox::ReduceSumOp, ox::ReduceMeanOp>([&](auto reduce) {
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
        Value g = grad();
        if (tensorType(g).getShape() != ArrayRef<int64_t>(kept))
          g = ox::ReshapeOp::create(b, loc, inType.clone(kept), g);
        if (isa<ox::ReduceMeanOp>(reduce.getOperation()))
          g = ox::MulOp::create(b, loc, g.getType(), g, constant(loc, 1.0f / count));
        if (tensorType(g) != inType)
          g = ox::ExpandOp::create(b, loc, inType, g);
        give(reduce.getInput(), g);
        return success();
      })
      .Case([&](ox::GatherOp gather) {
        auto dataType = tensorType(gather.getData());
        int64_t axis = *normalizeAxis(gather.getAxis(), dataType.getRank());
        give(gather.getData(), GatherGradOp::create(b, loc, dataType, grad(), gather.getIndices(),
                                                    b.getI64IntegerAttr(axis)));
        return success();
      })
      .Case([&](ox::SliceOp slice) {
        give(slice.getInput(),
             SliceGradOp::create(b, loc, slice.getInput().getType(), grad(),
                                 slice.getStartsAttr(), slice.getStepsAttr()));
        return success();
      })
      .Case([&](ox::ConcatOp concat) {
        auto type = tensorType(concat.getResult());
        int64_t axis = *normalizeAxis(concat.getAxis(), type.getRank());
        SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1);
        for (Value input : concat.getInputs()) {
          if (needsGrad(input))
            give(input, ox::SliceOp::create(b, loc, input.getType(), grad(),
                                            b.getDenseI64ArrayAttr(starts),
                                            b.getDenseI64ArrayAttr(steps)));
          starts[axis] += tensorType(input).getDimSize(axis);
        }
        return success();
      })
      .Case([&](ox::WhereOp where) {
        Value dy = grad(), zero = constant(loc, 0.0f);
        if (needsGrad(where.getX()))
          give(where.getX(), ox::WhereOp::create(b, loc, dy.getType(), where.getCondition(), dy, zero));
        if (needsGrad(where.getY()))
          give(where.getY(), ox::WhereOp::create(b, loc, dy.getType(), where.getCondition(), zero, dy));
        return success();
      })
      .Case([&](ox::LayerNormalizationOp norm) -> LogicalResult {
        if (grads.count(norm.getMean()) || grads.count(norm.getInvStdDev()))
          return norm.emitOpError("gradients through the mean and inv_std_dev outputs are not "
                                  "supported");
        auto grads = LayerNormalizationGradOp::create(
            b, loc,
            TypeRange{norm.getInput().getType(), norm.getScale().getType(),
                      norm.getScale().getType()},
            grad(), saved(norm.getInput()), saved(norm.getScale()), norm.getMean(),
            norm.getInvStdDev(), norm.getAxisAttr());
        give(norm.getInput(), grads.getDinput());
        give(norm.getScale(), grads.getDscale());
        if (norm.getBias())
          give(norm.getBias(), grads.getDbias());
        return success();
      })
      .Case([&](ox::ConvOp conv) {
        Value dy = grad();
        auto create = [&](auto tag, Type type, Value saved) {
          using OpTy = decltype(tag);
          return OpTy::create(b, loc, type, dy, saved, conv.getStridesAttr(), conv.getPadsAttr(),
                              conv.getDilationsAttr(), conv.getGroupAttr())
              .getResult();
        };
        if (needsGrad(conv.getInput()))
          give(conv.getInput(), create(ConvGradInputOp(), conv.getInput().getType(),
                                       saved(conv.getWeight())));
        if (needsGrad(conv.getWeight()))
          give(conv.getWeight(), create(ConvGradWeightOp(), conv.getWeight().getType(),
                                        saved(conv.getInput())));
        if (conv.getBias() && needsGrad(conv.getBias())) {
          auto biasType = tensorType(conv.getBias());
          give(conv.getBias(),
               ox::ReduceSumOp::create(b, loc, biasType, dy, b.getDenseI64ArrayAttr({0, 2, 3}),
                                       b.getBoolAttr(false)));
        }
        return success();
      })
      .Case([&](ox::MaxPoolOp pool) -> LogicalResult {
        if (grads.count(pool.getArgmax()))
          return pool.emitOpError("argmax has no gradient");
        give(pool.getInput(),
             MaxPoolGradOp::create(b, loc, pool.getInput().getType(), grad(), pool.getArgmax(),
                                   pool.getKernelShapeAttr(), pool.getStridesAttr(),
                                   pool.getPadsAttr(), pool.getCeilModeAttr()));
        return success();
      })
      .Case([&](ox::AveragePoolOp pool) {
        give(pool.getInput(),
             AveragePoolGradOp::create(b, loc, pool.getInput().getType(), grad(),
                                       pool.getKernelShapeAttr(), pool.getStridesAttr(),
                                       pool.getPadsAttr(), pool.getCountIncludePadAttr(),
                                       pool.getCeilModeAttr()));
        return success();
      })
      .Case([&](ox::BatchNormalizationOp norm) -> LogicalResult {
        if (!grads.count(norm.getResult()))
          return success(); // only the running statistics are used: state, no gradient
        auto channels = norm.getScale().getType();
        auto g = BatchNormalizationGradOp::create(
            b, loc, TypeRange{norm.getInput().getType(), channels, channels}, grad(),
            saved(norm.getInput()), saved(norm.getScale()), norm.getSavedMean(),
            norm.getSavedInvStd());
        give(norm.getInput(), g.getDinput());
        give(norm.getScale(), g.getDscale());
        give(norm.getBias(), g.getDbias());
        return success();
      })
      .Case([&](ox::ConstantOp) { return success(); })
      .Default([&](Operation *other) -> LogicalResult {
        // Unary ops with a derivative kernel (zero/elementwise_ops.h).
        const plan_ops::ElementwiseOp *info =
            isa<ox::OnnxDialect>(other->getDialect())
                ? plan_ops::find_elementwise(other->getName().stripDialect())
                : nullptr;
        if (!info || !info->has_derivative)
          return other->emitOpError("has no gradient rule");
        Value input = other->getOperand(0);
        Value forward =
            info->saved == elementwise::Saved::Input ? saved(input) : other->getResult(0);
        auto derivative = ElementwiseGradOp::create(b, loc, info->name, grad(), forward,
                                                    /*alpha=*/nullptr, /*beta=*/nullptr);
        for (const auto &attribute : llvm::ArrayRef(info->attributes, info->num_attributes))
          derivative->setAttr(attribute.name, other->getAttr(attribute.name));
        give(input, derivative);
        return success();
      });
}

struct BuildTrainStepPass : public zero::impl::BuildTrainStepBase<BuildTrainStepPass> {
  using BuildTrainStepBase::BuildTrainStepBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>("main");
    if (!func || func.getBody().getBlocks().size() != 1) {
      module.emitError("expected a single-block function @main returning the loss");
      return signalPassFailure();
    }
    if (optimizer != "sgd" && optimizer != "adam" && optimizer != "adamw") {
      module.emitError("unknown optimizer '") << optimizer << "' (expected sgd, adam or adamw)";
      return signalPassFailure();
    }
    double decay = weightDecay >= 0 ? weightDecay : (optimizer == "adamw" ? 0.01 : 0.0);
    if (optimizer == "adam" && decay != 0) {
      module.emitError("adam with weight decay is L2-coupled in PyTorch; use adamw, or adam "
                       "with weight-decay 0");
      return signalPassFailure();
    }
    // PyTorch's own argument checks.
    double lrValue = lr, epsValue = eps, b1 = beta1, b2 = beta2, m = momentum, wd = weightDecay;
    auto invalid = [&](StringRef what, double value, StringRef rule) {
      module.emitError("invalid ") << what << " " << value << ": " << rule;
      signalPassFailure();
    };
    if (lrValue < 0)
      return invalid("learning rate", lrValue, "it must not be negative");
    if (epsValue < 0)
      return invalid("eps", epsValue, "it must not be negative");
    if (b1 < 0 || b1 >= 1)
      return invalid("beta1", b1, "it must be in [0, 1)");
    if (b2 < 0 || b2 >= 1)
      return invalid("beta2", b2, "it must be in [0, 1)");
    if (m < 0)
      return invalid("momentum", m, "it must not be negative");
    if (wd < 0 && wd != -1)
      return invalid("weight decay", wd, "it must not be negative");
    if (optimizer == "sgd" && (beta1 != 0.9 || beta2 != 0.999 || eps != 1e-8)) {
      module.emitError("beta1, beta2 and eps apply to adam and adamw, not sgd");
      return signalPassFailure();
    }
    if (optimizer != "sgd" && momentum != 0) {
      module.emitError("momentum applies to sgd; use beta1 for adam and adamw");
      return signalPassFailure();
    }

    Block &body = func.getBody().front();
    auto ret = cast<func::ReturnOp>(body.getTerminator());
    if (ret.getNumOperands() < 1) {
      func.emitError("@main must return the loss");
      return signalPassFailure();
    }
    Value loss = ret.getOperand(0);
    auto lossType = dyn_cast<RankedTensorType>(loss.getType());
    if (!lossType || lossType.getRank() != 0 || !lossType.getElementType().isF32()) {
      func.emitError("the loss must be a scalar f32 tensor, got ") << loss.getType();
      return signalPassFailure();
    }

    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);

    OpBuilder builder(ret);
    GradientBuilder gradients(builder);
    if (failed(gradients.run(loss, ops)))
      return signalPassFailure();

    for (auto [param, grad] : gradients.parameterGradients()) {
      Location loc = NameLoc::get(param, grad.getLoc());
      auto symbol = FlatSymbolRefAttr::get(param);
      if (optimizer == "sgd")
        SgdUpdateOp::create(builder, loc, symbol, grad, builder.getF32FloatAttr(lr),
                            builder.getF32FloatAttr(momentum), builder.getF32FloatAttr(decay),
                            /*sharded=*/nullptr);
      else
        AdamWUpdateOp::create(builder, loc, symbol, grad, builder.getF32FloatAttr(lr),
                              builder.getF32FloatAttr(beta1), builder.getF32FloatAttr(beta2),
                              builder.getF32FloatAttr(eps), builder.getF32FloatAttr(decay),
                              /*sharded=*/nullptr);
    }
    func.setName("train_step");
  }
};

} // namespace
