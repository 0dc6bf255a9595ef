//===- BuildTrainStep.cpp - reverse-mode autodiff and optimizer updates ---===//
//
// Differentiates @main's scalar loss with respect to every parameter global
// and appends one optimizer update per parameter. The result, @train_step,
// is still world-size agnostic: partitioning happens later.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "dialects/ShapeUtils.h"
#include "passes/GradientOpInterface.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Regex.h"

namespace zero {
#define GEN_PASS_DEF_BUILDTRAINSTEP
#define GEN_PASS_DEF_MARKMODELSTATE
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

Value GradientContext::constant(Location loc, float value) const {
  auto type = RankedTensorType::get({}, builder.getF32Type());
  return ox::ConstantOp::create(builder, loc, DenseElementsAttr::get(type, value));
}

namespace {

/// Emits the backward pass op by op, in reverse program order, each op
/// through its gradient rule (GradientOpInterface, GradientRules.cpp).
class GradientBuilder : public GradientContext {
public:
  GradientBuilder(OpBuilder &builder) : GradientContext(builder) {}

  /// Seeds d(loss)/d(loss) = seed and differentiates `ops` (program order).
  LogicalResult run(Value loss, ArrayRef<Operation *> ops, float seed = 1.0f);

  /// The gradient of every parameter the loss depends on, in first-use order.
  const llvm::MapVector<StringAttr, Value> &parameterGradients() const { return paramGrads; }

  using GradientContext::grad;
  Value grad(Value result) const override { return grads.lookup(result); }
  bool needsGrad(Value v) const override { return requiresGrad.contains(v); }
  void give(Value operand, Value grad) override;
  Value saved(Value v) override;

private:
  LogicalResult differentiate(Operation *forward);
  void accumulate(Value primal, Value grad);
  Value unbroadcast(Location loc, Value grad, RankedTensorType target);

  DenseSet<Value> requiresGrad;
  DenseMap<Value, Value> grads;
  DenseMap<Attribute, Value> backwardParamReads;
  DenseMap<Value, Value> rematerialized;
  llvm::MapVector<StringAttr, Value> paramGrads;
};

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
    result = ox::ReduceSumOp::create(builder, loc, type.clone(keptShape), grad,
                                     builder.getDenseI64ArrayAttr(axes), builder.getBoolAttr(true));
  if (tensorType(result) != target)
    result = ox::ReshapeOp::create(builder, loc, target, result);
  return result;
}

void GradientBuilder::accumulate(Value primal, Value grad) {
  auto [it, inserted] = grads.try_emplace(primal, grad);
  if (!inserted)
    it->second = ox::AddOp::create(builder, grad.getLoc(), grad.getType(), it->second, grad);
}

void GradientBuilder::give(Value operand, Value grad) {
  if (needsGrad(operand))
    accumulate(operand, unbroadcast(current->getLoc(), grad, tensorType(operand)));
}

Value GradientBuilder::saved(Value v) {
  if (auto load = v.getDefiningOp<ml_program::GlobalLoadOp>()) {
    Value &reissued = backwardParamReads[load.getGlobalAttr()];
    if (!reissued)
      reissued = ml_program::GlobalLoadOp::create(builder, load.getLoc(), load.getType(),
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
    Operation *clone = builder.clone(*def);
    clone->setOperand(0, source);
    redone = clone->getResult(0);
  }
  return redone;
}

LogicalResult GradientBuilder::run(Value loss, ArrayRef<Operation *> ops, float seed) {
  for (Operation *op : ops) {
    if (auto load = dyn_cast<ml_program::GlobalLoadOp>(op)) {
      auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(
          op, load.getGlobalAttr());
      if (global && receivesGradient(global) &&
          tensorType(load.getResult()).getElementType().isF32())
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

  grads[loss] = constant(loss.getLoc(), seed);
  for (Operation *op : llvm::reverse(ops))
    if (llvm::any_of(op->getResults(), [&](Value r) { return grads.count(r); }))
      if (failed(differentiate(op)))
        return failure();
  return success();
}

LogicalResult GradientBuilder::differentiate(Operation *forward) {
  // A parameter read ends the chain: its gradient is the parameter's.
  if (auto load = dyn_cast<ml_program::GlobalLoadOp>(forward)) {
    Value g = grad(load.getResult());
    auto [it, inserted] = paramGrads.try_emplace(load.getGlobalAttr().getRootReference(), g);
    if (!inserted)
      it->second = ox::AddOp::create(builder, load.getLoc(), g.getType(), it->second, g);
    return success();
  }
  auto rule = dyn_cast<GradientOpInterface>(forward);
  if (!rule)
    return forward->emitOpError("has no gradient rule");
  current = forward;
  return rule.buildGradient(*this);
}

/// Marks the parameter globals that are model state rather than weights:
/// those @main writes itself (a training-mode BatchNormalization's running
/// statistics) and those ONNX reads as running statistics, also in inference
/// mode, where PyTorch keeps them as buffers it never trains. Model state
/// gets no gradient and no update, and stays whole on every rank.
void markModelState(ModuleOp module, func::FuncOp func) {
  DenseSet<StringAttr> written;
  func.walk([&](ml_program::GlobalStoreOp store) {
    written.insert(store.getGlobalAttr().getRootReference());
  });
  for (auto global : module.getOps<ml_program::GlobalOp>())
    if (global->hasAttr(ox::kRunningStatisticsAttr) || written.contains(global.getSymNameAttr()))
      global->setAttr(kModelStateAttr, UnitAttr::get(module.getContext()));
}

/// Marks `zero.frozen` the weights that `freeze` matches or a non-empty
/// `trainable` does not, each pattern matched against the whole name. Fails
/// (reported on the module) on an invalid pattern or one that matches no
/// parameter.
LogicalResult markFrozen(ModuleOp module, StringRef freeze, StringRef trainable) {
  struct Pattern {
    StringRef flag, text;
    bool freezesMatches; // freeze: the matches are frozen; trainable: the others
    std::optional<llvm::Regex> regex;
    bool matched = false;
  };
  Pattern patterns[] = {{"freeze", freeze, true, {}}, {"trainable", trainable, false, {}}};
  for (Pattern &pattern : patterns) {
    if (pattern.text.empty())
      continue;
    pattern.regex.emplace(("^(" + pattern.text + ")$").str());
    std::string error;
    if (!pattern.regex->isValid(error))
      return module.emitError("invalid ")
             << pattern.flag << " pattern '" << pattern.text << "': " << error;
  }
  SmallVector<StringRef> names;
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    names.push_back(global.getSymName());
    bool frozen = false;
    for (Pattern &pattern : patterns) {
      if (!pattern.regex)
        continue;
      bool matches = pattern.regex->match(global.getSymName());
      pattern.matched |= matches;
      frozen |= matches == pattern.freezesMatches;
    }
    if (frozen && isTrainable(global))
      global->setAttr(kFrozenAttr, UnitAttr::get(module.getContext()));
  }
  for (Pattern &pattern : patterns) {
    if (!pattern.regex || pattern.matched)
      continue;
    InFlightDiagnostic diag = module.emitError()
                              << pattern.flag << " pattern '" << pattern.text
                              << "' matches no parameter (it must match a whole name; "
                                 "the parameters are ";
    llvm::interleaveComma(ArrayRef(names).take_front(8), diag,
                          [&](StringRef name) { diag << "'" << name << "'"; });
    if (names.size() > 8)
      diag << ", ... (" << names.size() << " in all)";
    return diag << ")";
  }
  return success();
}

struct MarkModelStatePass : public zero::impl::MarkModelStateBase<MarkModelStatePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (auto func = module.lookupSymbol<func::FuncOp>("main"))
      markModelState(module, func);
  }
};

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

    if (microSteps < 1) {
      module.emitError("micro-steps must be at least 1, got ") << static_cast<int64_t>(microSteps);
      return signalPassFailure();
    }
    SmallVector<Operation *> ops;
    for (Operation &op : body.without_terminator())
      ops.push_back(&op);

    markModelState(module, func);
    if (failed(markFrozen(module, freeze, trainable)))
      return signalPassFailure();
    OpBuilder builder(ret);
    // Micro-step a's forward pass is a copy of @main's on its own inputs,
    // placed after micro-step a-1's backward pass, so one micro-step's
    // activations are alive at a time.
    llvm::MapVector<StringAttr, Value> paramGrads;
    SmallVector<Value> losses;
    const unsigned numArgs = func.getNumArguments();
    const float seed = 1.0f / float(microSteps);
    for (int64_t a = 0; a < microSteps; ++a) {
      SmallVector<Operation *> stepOps;
      Value stepLoss = loss;
      if (a == 0) {
        stepOps = ops;
      } else {
        IRMapping inputs;
        for (unsigned i = 0; i < numArgs; ++i) {
          BlockArgument arg = func.getArgument(i);
          if (failed(func.insertArgument(func.getNumArguments(), arg.getType(),
                                         func.getArgAttrDict(i), arg.getLoc())))
            return signalPassFailure();
          func.setArgAttr(func.getNumArguments() - 1, kMicroStepAttr, builder.getI64IntegerAttr(a));
          inputs.map(arg, func.getArgument(func.getNumArguments() - 1));
        }
        for (Operation *op : ops) {
          Operation *copy = builder.clone(*op, inputs);
          if (auto dropout = dyn_cast<ox::DropoutOp>(copy))
            dropout.setMicroStep(a);
          stepOps.push_back(copy);
        }
        stepLoss = inputs.lookup(loss);
      }
      GradientBuilder gradients(builder);
      if (failed(gradients.run(stepLoss, stepOps, seed)))
        return signalPassFailure();
      for (auto [param, grad] : gradients.parameterGradients()) {
        auto [it, inserted] = paramGrads.try_emplace(param, grad);
        if (!inserted)
          it->second = AccumulateOp::create(builder, grad.getLoc(), it->second, grad);
      }
      losses.push_back(stepLoss);
    }
    if (microSteps > 1) {
      for (unsigned i = 0; i < numArgs; ++i)
        func.setArgAttr(i, kMicroStepAttr, builder.getI64IntegerAttr(0));
      // The reported loss is the mean over the K micro-batches.
      Value sum = losses.front();
      for (Value l : ArrayRef(losses).drop_front())
        sum = ox::AddOp::create(builder, loss.getLoc(), sum.getType(), sum, l);
      Value mean = ox::ConstantOp::create(
          builder, loss.getLoc(), DenseElementsAttr::get(cast<RankedTensorType>(sum.getType()), seed));
      ret.setOperand(0, ox::MulOp::create(builder, loss.getLoc(), sum.getType(), sum, mean));
    }

    for (auto [param, grad] : paramGrads) {
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
