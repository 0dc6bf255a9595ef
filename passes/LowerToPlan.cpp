//===- LowerToPlan.cpp - bufferization and kernel selection ---------------===//
//
// Lowers the partitioned @train_step (and an @eval_step, after plan.evaluation)
// to a plan.program. Each parameter is
// stored and updated as its #zero.placement (set by zero-partition) says; the
// stage number is only copied into the plan. Tensors become views of
// buffers; reshapes become views, collectives run in place where the schema
// allows it and no other view of the buffer is read afterwards (all-reduce of
// a dying gradient, stage-1 reduce-scatter into the gradient's own shard,
// all-gather of an updated shard into the parameter). Offsets are left to
// zero-plan-memory.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "dialects/ShapeUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "zero/plan_ops.h"

#include <optional>

namespace zero {
#define GEN_PASS_DEF_LOWERTOPLAN
#include "passes/Passes.h.inc"
} // namespace zero

using namespace mlir;
using namespace zero;
namespace ox = zero::onnx;

namespace {

/// An op that lowers to one instruction: operands and results in order, and
/// the attributes of the opcode's table (zero/plan_ops.h) taken from the op's
/// attributes of the same names.
struct SimpleLowering {
  StringRef op;
  plan::Opcode opcode;
  bool normalizeAxis = false; // the kernel takes `axis` in [0, rank of operand 0)
};

template <typename OpTy>
constexpr SimpleLowering simple(plan::Opcode opcode, bool normalizeAxis = false) {
  return {OpTy::getOperationName(), opcode, normalizeAxis};
}

using plan::Opcode;
constexpr SimpleLowering kSimpleLowerings[] = {
    simple<ox::CastOp>(Opcode::Cast),
    simple<ox::ExpandOp>(Opcode::Expand),
    simple<ox::IdentityOp>(Opcode::Copy),
    simple<ox::MatMulOp>(Opcode::MatMul),
    simple<ox::GemmOp>(Opcode::Gemm),
    simple<ox::TransposeOp>(Opcode::Transpose),
    simple<ox::GatherOp>(Opcode::Gather, /*normalizeAxis=*/true),
    simple<ox::GatherElementsOp>(Opcode::GatherElements, /*normalizeAxis=*/true),
    simple<ox::GatherNDOp>(Opcode::GatherND),
    simple<ox::TopKOp>(Opcode::TopK, /*normalizeAxis=*/true),
    simple<ox::SliceOp>(Opcode::Slice),
    simple<ox::ConcatOp>(Opcode::Concat, /*normalizeAxis=*/true),
    simple<ox::WhereOp>(Opcode::Where),
    simple<ox::ArgMaxOp>(Opcode::ArgMax, /*normalizeAxis=*/true),
    simple<ox::ArgMinOp>(Opcode::ArgMin, /*normalizeAxis=*/true),
    simple<ox::CumSumOp>(Opcode::CumSum, /*normalizeAxis=*/true),
    simple<ox::ConvOp>(Opcode::Conv),
    // (x, w) -> y is the gradient of the Conv from y to x for its input.
    simple<ox::ConvTransposeOp>(Opcode::ConvGradInput),
    simple<ox::MaxPoolOp>(Opcode::MaxPool),
    simple<ox::AveragePoolOp>(Opcode::AveragePool),
    simple<ox::SoftmaxOp>(Opcode::Softmax, /*normalizeAxis=*/true),
    simple<ox::LogSoftmaxOp>(Opcode::LogSoftmax, /*normalizeAxis=*/true),
    simple<ox::SoftmaxCrossEntropyLossOp>(Opcode::SoftmaxCrossEntropyLoss),
    simple<ox::NegativeLogLikelihoodLossOp>(Opcode::NegativeLogLikelihoodLoss),
    simple<SoftmaxGradOp>(Opcode::SoftmaxGrad),
    simple<LogSoftmaxGradOp>(Opcode::LogSoftmaxGrad),
    simple<SoftmaxCrossEntropyLossGradOp>(Opcode::SoftmaxCrossEntropyLossGrad),
    simple<NegativeLogLikelihoodLossGradOp>(Opcode::NegativeLogLikelihoodLossGrad),
    simple<GatherGradOp>(Opcode::GatherGrad),
    simple<SliceGradOp>(Opcode::SliceGrad),
    simple<GatherElementsGradOp>(Opcode::GatherElementsGrad),
    simple<ScatterElementsGradOp>(Opcode::ScatterElementsGrad),
    simple<GatherNDGradOp>(Opcode::GatherNDGrad),
    simple<ScatterNDGradOp>(Opcode::ScatterNDGrad),
    simple<ConvGradInputOp>(Opcode::ConvGradInput),
    simple<ConvGradWeightOp>(Opcode::ConvGradWeight),
    simple<MaxPoolGradOp>(Opcode::MaxPoolGrad),
    simple<AveragePoolGradOp>(Opcode::AveragePoolGrad),
    simple<BatchNormalizationGradOp>(Opcode::BatchNormalizationGrad),
    simple<SumSquaresOp>(Opcode::SumSquares),
    // Left where gradients are not sharded: an addition of whole gradients.
    simple<AccumulateOp>(Opcode::Add),
    simple<ClipCoefficientOp>(Opcode::ClipCoefficient),
};

const SimpleLowering *findSimpleLowering(OperationName name) {
  const auto *rule = llvm::find_if(
      kSimpleLowerings, [&](const SimpleLowering &r) { return r.op == name.getStringRef(); });
  return rule == std::end(kSimpleLowerings) ? nullptr : rule;
}

/// Where a parameter lives: its placement, its resident storage and the views
/// of it.
struct ParameterStorage {
  PlacementAttr placement;
  FlatSymbolRefAttr full;  // the whole tensor (absent for sharded weights)
  FlatSymbolRefAttr flat;  // the padded flat tensor (whole weights, sharded state:
                           // the all-gather target)
  FlatSymbolRefAttr shard; // this rank's shard (sharded optimizer state)
  plan::ParameterOp op;    // its plan.parameter
};

class PlanBuilder {
public:
  PlanBuilder(ModuleOp module, int64_t worldSize, StringRef backend, bool omitWeights)
      : module(module), worldSize(worldSize), backend(backend), omitWeights(omitWeights),
        b(module.getContext()) {}

  LogicalResult run();

private:
  LogicalResult lowerParameters();
  /// Inputs and ops of `func`: the step's, or (`evaluation`) the evaluation
  /// program's, after plan.evaluation.
  LogicalResult lowerFunction(func::FuncOp func, bool evaluation);
  LogicalResult lowerOp(Operation *op);
  LogicalResult lowerSimple(Operation *op, const SimpleLowering &rule);
  SmallVector<NamedAttribute> simpleAttributes(Operation *op, const SimpleLowering &rule);
  LogicalResult lowerLearningRate(LearningRateOp op);
  /// The optimizer step counter (I64 scalar state), created on first use;
  /// incremented once per step, before the first update reads it.
  FlatSymbolRefAttr stepCounter();
  void incrementStep(Location loc);
  LogicalResult lowerAllGather(AllGatherOp op);
  LogicalResult lowerReduceScatter(ReduceScatterOp op);
  LogicalResult lowerUpdate(Operation *op);

  FlatSymbolRefAttr newBuffer(StringRef name, int64_t bytes, StringRef kind, bool persistent);
  FlatSymbolRefAttr newValue(StringRef name, RankedTensorType type, FlatSymbolRefAttr buffer,
                             int64_t byteOffset = 0, int64_t rankStride = 0);
  /// A fresh buffer and value for the result `v`.
  FlatSymbolRefAttr define(Value v, StringRef kind = "activation");
  void instr(Location loc, StringRef opcode, ArrayRef<FlatSymbolRefAttr> inputs,
             ArrayRef<FlatSymbolRefAttr> outputs, ArrayRef<NamedAttribute> attrs = {});
  plan::ValueOp valueOp(FlatSymbolRefAttr sym) {
    return symbols->lookup<plan::ValueOp>(sym.getAttr());
  }
  plan::BufferOp bufferOf(FlatSymbolRefAttr value) {
    return symbols->lookup<plan::BufferOp>(valueOp(value).getBufferAttr().getAttr());
  }
  std::string uniqueName(StringRef base) {
    std::string name = base.str();
    for (int i = 1; symbols->lookup(name); ++i)
      name = (base + "_" + Twine(i)).str();
    return name;
  }
  FlatSymbolRefAttr lookup(Value v) { return values.lookup(v); }
  /// Records that SSA value `v` lives in plan value `sym`.
  FlatSymbolRefAttr bind(Value v, FlatSymbolRefAttr sym) {
    values[v] = sym;
    aliases[valueOp(sym).getBufferAttr().getAttr()].push_back(v);
    return sym;
  }
  /// Whether `op` may overwrite the buffer behind `input`: nothing that
  /// views that buffer (reshapes share it) is read after `op`.
  bool canOverwrite(Value input, Operation *op) {
    plan::BufferOp buffer = bufferOf(lookup(input));
    if (buffer.getPersistent())
      return false;
    for (Value alias : aliases[buffer.getSymNameAttr()])
      for (Operation *user : alias.getUsers())
        if (user != op && !user->isBeforeInBlock(op))
          return false;
    return true;
  }
  NamedAttribute attr(StringRef name, Attribute value) { return b.getNamedAttr(name, value); }
  void init(Location loc, FlatSymbolRefAttr value, int32_t rank, ElementsAttr data,
            int64_t dataOffset) {
    plan::InitOp::create(b, loc, value, b.getSI32IntegerAttr(rank), data,
                         b.getI64IntegerAttr(dataOffset));
  }

  ModuleOp module;
  int64_t worldSize;
  std::string backend;
  bool omitWeights;
  OpBuilder b;
  plan::ProgramOp program;
  std::optional<SymbolTable> symbols; // of `program`: lookups by hash, not by scan
  DenseMap<Value, FlatSymbolRefAttr> values;
  DenseMap<StringAttr, SmallVector<Value>> aliases; // buffer -> SSA values in it
  llvm::StringMap<ParameterStorage> params;
  FlatSymbolRefAttr step;
  bool stepIncremented = false;
  bool forwardOnly = false;
  bool lowersEvaluation = false;
  int64_t nextValue = 0;
};

FlatSymbolRefAttr PlanBuilder::newBuffer(StringRef name, int64_t bytes, StringRef kind,
                                         bool persistent) {
  auto buffer = plan::BufferOp::create(b, program.getLoc(), b.getStringAttr(uniqueName(("mem." + name).str())),
                                       b.getI64IntegerAttr(bytes), b.getStringAttr(kind),
                                       persistent ? b.getUnitAttr() : nullptr, IntegerAttr());
  symbols->insert(buffer);
  return FlatSymbolRefAttr::get(buffer.getSymNameAttr());
}

FlatSymbolRefAttr PlanBuilder::newValue(StringRef name, RankedTensorType type,
                                        FlatSymbolRefAttr buffer, int64_t byteOffset,
                                        int64_t rankStride) {
  auto value = plan::ValueOp::create(b, program.getLoc(), b.getStringAttr(uniqueName(name)),
                                     TypeAttr::get(type), buffer, b.getI64IntegerAttr(byteOffset),
                                     b.getI64IntegerAttr(rankStride), StringAttr());
  symbols->insert(value);
  return FlatSymbolRefAttr::get(value.getSymNameAttr());
}

FlatSymbolRefAttr PlanBuilder::define(Value v, StringRef kind) {
  auto type = tensorType(v);
  std::string name = "v" + std::to_string(nextValue++);
  auto buffer = newBuffer(name, plan::getTensorBytes(type), kind, /*persistent=*/false);
  return bind(v, newValue(name, type, buffer));
}

void PlanBuilder::instr(Location loc, StringRef opcode, ArrayRef<FlatSymbolRefAttr> inputs,
                        ArrayRef<FlatSymbolRefAttr> outputs, ArrayRef<NamedAttribute> attrs) {
  SmallVector<Attribute> in(inputs.begin(), inputs.end()), out(outputs.begin(), outputs.end());
  plan::InstrOp::create(b, loc, b.getStringAttr(opcode), b.getArrayAttr(in), b.getArrayAttr(out),
                        b.getDictionaryAttr(attrs));
}

LogicalResult PlanBuilder::lowerParameters() {
  for (auto global : module.getOps<ml_program::GlobalOp>()) {
    auto type = dyn_cast<RankedTensorType>(global.getType());
    if (!type || !type.getElementType().isF32() || !global.getValue())
      return global.emitOpError("parameters must be f32 tensors with an initial value");
    StringRef name = global.getSymName();
    int64_t shardNumel = zero::shardNumel(type.getNumElements(), worldSize);
    int64_t shardBytes = shardNumel * 4;
    auto shardType = RankedTensorType::get({shardNumel}, b.getF32Type());
    auto flatType = RankedTensorType::get({shardNumel * worldSize}, b.getF32Type());
    auto data = cast<ElementsAttr>(*global.getValue());
    FailureOr<PlacementAttr> placement = getParameterPlacement(global, worldSize);
    if (failed(placement))
      return failure();
    ParameterStorage storage;
    storage.placement = *placement;
    if (!isTrainable(global)) {
      // Model state: whole, per rank, updated by its op, exported as is.
      auto buffer = newBuffer(name, plan::getTensorBytes(type), "model_state", true);
      storage.full = newValue(name, type, buffer);
      init(global.getLoc(), storage.full, -1, data, 0);
      plan::ParameterOp::create(b, global.getLoc(), b.getStringAttr(name), TypeAttr::get(type),
                                storage.full, nullptr, b.getI64IntegerAttr(type.getNumElements()),
                                b.getBoolAttr(false), DictionaryAttr(), nullptr);
      params[name] = storage;
      continue;
    }
    const bool shardedWeights = placement->hasShardedWeights();
    if (!shardedWeights) {
      // Updated as shards, the whole parameter is padded to whole shards so
      // the updated ones gather straight back into it.
      const bool shardedUpdate = placement->hasShardedOptimizerState();
      int64_t bytes = shardedUpdate ? shardBytes * worldSize : plan::getTensorBytes(type);
      auto buffer = newBuffer(name, bytes, "parameter", /*persistent=*/true);
      storage.full = newValue(name, type, buffer);
      if (shardedUpdate) {
        storage.flat = newValue((name + ".flat").str(), flatType, buffer);
        storage.shard = newValue((name + ".shard").str(), shardType, buffer, 0, shardBytes);
      }
      if (!omitWeights)
        init(global.getLoc(), storage.full, -1, data, 0);
    } else {
      auto buffer = newBuffer(name, shardBytes, "parameter", /*persistent=*/true);
      storage.shard = newValue((name + ".shard").str(), shardType, buffer);
      for (int64_t rank = 0; rank < worldSize && !omitWeights; ++rank)
        init(global.getLoc(), storage.shard, rank, data, rank * shardNumel);
    }
    auto param = plan::ParameterOp::create(
        b, global.getLoc(), b.getStringAttr(name), TypeAttr::get(type),
        shardedWeights ? storage.shard : storage.full, shardedWeights ? b.getUnitAttr() : nullptr,
        b.getI64IntegerAttr(shardNumel), b.getBoolAttr(true), DictionaryAttr(), nullptr);
    storage.op = param;
    // For the report; the serialized plan needs only `sharded`.
    if (Attribute recorded = global->getAttr(kPlacementAttr))
      param->setAttr(kPlacementAttr, recorded);
    if (global->hasAttr(kFrozenAttr))
      param->setAttr(kFrozenAttr, b.getUnitAttr());
    params[name] = storage;
  }
  return success();
}

LogicalResult PlanBuilder::lowerReduceScatter(ReduceScatterOp op) {
  FlatSymbolRefAttr input = lookup(op.getInput());
  auto inputType = tensorType(op.getInput());
  int64_t shardNumel = op.getShard().getType().getNumElements();
  int64_t paddedBytes = shardNumel * worldSize * 4;
  plan::ValueOp inputValue = valueOp(input);
  plan::BufferOp buffer = bufferOf(input);
  if (inputValue.getByteOffset() != 0 || inputValue.getRankStride() != 0 ||
      buffer.getPersistent()) {
    // The collective needs the gradient at the start of a buffer it may pad.
    FlatSymbolRefAttr copy = define(op.getInput());
    instr(op.getLoc(), "Copy", {input}, {copy});
    input = copy;
    buffer = bufferOf(copy);
  }
  buffer.setBytes(std::max<int64_t>(buffer.getBytes(), paddedBytes));
  // A replicated gradient (stage 1) was kept whole until its update, here:
  // its buffer is the gradient, and its shard may take the gradient's place.
  // A sharded one is reduced as it completes, so its buffer is in transit.
  const bool wholeGradient = llvm::any_of(op->getUsers(), [&](Operation *user) {
    if (!isa<SgdUpdateOp, AdamWUpdateOp>(user))
      return false;
    auto param = user->getAttrOfType<FlatSymbolRefAttr>("param");
    PlacementAttr placement = params.lookup(param.getValue()).placement;
    return placement && !placement.hasShardedGrad();
  });
  buffer.setKind(wholeGradient ? "gradient" : "communication");
  int64_t numel = inputType.getNumElements();
  if (numel < shardNumel * worldSize) {
    // Padding must not feed garbage into the reduction.
    auto padType = RankedTensorType::get({shardNumel * worldSize - numel}, b.getF32Type());
    auto pad = newValue(valueOp(input).getSymName().str() + ".pad", padType,
                        valueOp(input).getBufferAttr(), numel * 4);
    instr(op.getLoc(), "Fill", {}, {pad}, {attr("value", b.getF32FloatAttr(0.0f))});
  }
  auto flat = newValue(valueOp(input).getSymName().str() + ".flat",
                       RankedTensorType::get({shardNumel * worldSize}, b.getF32Type()),
                       valueOp(input).getBufferAttr());
  FlatSymbolRefAttr shard;
  if (wholeGradient && canOverwrite(op.getInput(), op)) {
    shard = newValue(valueOp(input).getSymName().str() + ".shard", op.getShard().getType(),
                     valueOp(input).getBufferAttr(), 0, shardNumel * 4);
    bind(op.getShard(), shard);
  } else {
    shard = define(op.getShard(), "gradient");
  }
  instr(op.getLoc(), "ReduceScatter", {flat}, {shard},
        {attr("reduction", op.getReductionAttr())});
  return success();
}

LogicalResult PlanBuilder::lowerAllGather(AllGatherOp op) {
  FlatSymbolRefAttr shard = lookup(op.getShard());
  // An updated shard gathered straight back into its parameter: in place.
  if (op->hasOneUse())
    if (auto store = dyn_cast<ml_program::GlobalStoreOp>(*op->getUsers().begin())) {
      const ParameterStorage &p = params[store.getGlobal().getRootReference()];
      if (p.flat && p.shard == shard) {
        instr(op.getLoc(), "AllGather", {shard}, {p.flat});
        bind(op.getResult(), p.full);
        return success();
      }
    }
  auto type = tensorType(op.getResult());
  int64_t shardNumel = op.getShard().getType().getNumElements();
  std::string name = "v" + std::to_string(nextValue++);
  auto buffer = newBuffer(name, shardNumel * worldSize * 4, "communication", false);
  auto flat = newValue(name + ".flat",
                       RankedTensorType::get({shardNumel * worldSize}, b.getF32Type()), buffer);
  instr(op.getLoc(), "AllGather", {shard}, {flat});
  bind(op.getResult(), newValue(name, type, buffer));
  return success();
}

LogicalResult PlanBuilder::lowerUpdate(Operation *op) {
  auto symbol = op->getAttrOfType<FlatSymbolRefAttr>("param");
  const ParameterStorage &p = params[symbol.getValue()];
  bool sharded = op->hasAttr("sharded");
  FlatSymbolRefAttr param = sharded ? p.shard : p.full;
  FlatSymbolRefAttr grad = lookup(op->getOperand(0));
  auto stateType = tensorType(op->getOperand(0));
  // Named for checkpoints as PyTorch's optimizer state_dict names them.
  SmallVector<NamedAttribute> stateNames;
  auto state = [&](StringRef suffix) {
    std::string name = (symbol.getValue() + "." + suffix).str();
    auto buffer = newBuffer(name, plan::getTensorBytes(stateType), "optimizer_state", true);
    FlatSymbolRefAttr value = newValue(name, stateType, buffer);
    stateNames.push_back(attr(suffix, value));
    return value;
  };

  SmallVector<FlatSymbolRefAttr> inputs{param, grad};
  plan::Opcode opcode = plan::Opcode::SgdUpdate;
  if (auto sgd = dyn_cast<SgdUpdateOp>(op)) {
    if (!sgd.getMomentum().isZero())
      inputs.push_back(state("momentum_buffer"));
  } else {
    opcode = plan::Opcode::AdamWUpdate;
    incrementStep(op->getLoc());
    inputs.append({state("exp_avg"), state("exp_avg_sq"), step});
  }
  // The hyperparameters by name; the optional scalars follow the inputs.
  SmallVector<NamedAttribute> attrs = simpleAttributes(op, {op->getName().getStringRef(), opcode});
  for (auto [name, operand] : {std::pair{"has_scheduled_lr", getScheduledLrMutable(op)},
                               std::pair{"has_grad_scale", getGradScaleMutable(op)}}) {
    if (operand.empty())
      continue;
    inputs.push_back(lookup(operand[0].get()));
    attrs.push_back(attr(name, b.getBoolAttr(true)));
  }
  instr(op->getLoc(), plan::EnumNameOpcode(opcode), inputs, {}, attrs);
  plan::ParameterOp record = p.op;
  if (!stateNames.empty())
    record.setOptimizerStateAttr(b.getDictionaryAttr(stateNames));
  if (sharded)
    record.setStateSharded(true);
  return success();
}

FlatSymbolRefAttr PlanBuilder::stepCounter() {
  if (!step)
    step = newValue("step", RankedTensorType::get({}, b.getI64Type()),
                    newBuffer("step", 8, "optimizer_state", true));
  return step;
}

void PlanBuilder::incrementStep(Location loc) {
  if (stepIncremented)
    return;
  instr(loc, "IncrementStep", {stepCounter()}, {stepCounter()});
  stepIncremented = true;
}

LogicalResult PlanBuilder::lowerLearningRate(LearningRateOp op) {
  // The rate of step s reads the counter before this step counts itself.
  if (stepIncremented)
    return op.emitOpError("must come before the first optimizer update");
  instr(op.getLoc(), "LearningRate", {stepCounter()}, {define(op.getRate())},
        simpleAttributes(op, {op->getName().getStringRef(), plan::Opcode::LearningRate}));
  incrementStep(op.getLoc());
  return success();
}

SmallVector<NamedAttribute> PlanBuilder::simpleAttributes(Operation *op,
                                                          const SimpleLowering &rule) {
  // ODS leaves default-valued attributes out of the dictionary; the plan
  // states every one it has (the serializer invents none).
  NamedAttrList given(op->getAttrDictionary());
  op->getName().populateDefaultAttrs(given);
  SmallVector<NamedAttribute> attrs;
  const plan_ops::OpDescriptor *desc = plan_ops::find_op(rule.opcode);
  if (const plan_ops::AttrTable *table = plan_ops::find_attr_table(desc->attrs)) {
    for (auto [i, field] : llvm::enumerate(ArrayRef(table->fields, table->num_fields))) {
      Attribute value = given.get(field.name);
      if (!value) // ONNX's spelling (transA for trans_a)
        value = given.get(llvm::convertToCamelFromSnakeCase(field.name));
      if (!value || !desc->uses(i))
        continue; // the plan verifier reports a required one missing
      if (rule.normalizeAxis && StringRef(field.name) == "axis")
        value = b.getI64IntegerAttr(*normalizeAxis(cast<IntegerAttr>(value).getInt(),
                                                   tensorType(op->getOperand(0)).getRank()));
      attrs.push_back(attr(field.name, value));
    }
  }
  return attrs;
}

LogicalResult PlanBuilder::lowerSimple(Operation *op, const SimpleLowering &rule) {
  SmallVector<NamedAttribute> attrs = simpleAttributes(op, rule);
  SmallVector<FlatSymbolRefAttr> in, out;
  for (Value v : op->getOperands())
    in.push_back(lookup(v));
  for (Value r : op->getResults())
    out.push_back(define(r));
  instr(op->getLoc(), plan::EnumNameOpcode(rule.opcode), in, out, attrs);
  return success();
}

LogicalResult PlanBuilder::lowerOp(Operation *op) {
  Location loc = op->getLoc();
  if (const SimpleLowering *rule = findSimpleLowering(op->getName()))
    return lowerSimple(op, *rule);
  // The elementwise ops and their derivative kernels (zero/elementwise_ops.h).
  if (auto g = dyn_cast<ElementwiseGradOp>(op))
    return lowerSimple(op, {g.getOperationName(), plan_ops::find_elementwise(g.getOp())->derivative});
  if (isa<ox::OnnxDialect>(op->getDialect()))
    if (const auto *info = plan_ops::find_elementwise(op->getName().stripDialect()))
      return lowerSimple(op, {op->getName().getStringRef(), info->opcode});
  // ScatterElements and ScatterND: the reduction picks the opcode.
  auto byReduction = [](StringRef reduction, Opcode none, Opcode add, Opcode mul) {
    return reduction == "add" ? add : reduction == "mul" ? mul : none;
  };
  if (auto scatter = dyn_cast<ox::ScatterElementsOp>(op))
    return lowerSimple(op, {op->getName().getStringRef(),
                            byReduction(scatter.getReduction(), Opcode::ScatterElements,
                                        Opcode::ScatterElementsAdd, Opcode::ScatterElementsMul),
                            /*normalizeAxis=*/true});
  if (auto scatter = dyn_cast<ox::ScatterNDOp>(op))
    return lowerSimple(op, {op->getName().getStringRef(),
                            byReduction(scatter.getReduction(), Opcode::ScatterND,
                                        Opcode::ScatterNDAdd, Opcode::ScatterNDMul)});
  // ONNX's Mod: fmod picks the opcode.
  if (auto mod = dyn_cast<ox::ModOp>(op))
    return lowerSimple(
        op, {op->getName().getStringRef(), mod.getFmod() ? plan::Opcode::FMod : plan::Opcode::Mod});

  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ml_program::GlobalLoadOp load) -> LogicalResult {
        const ParameterStorage &p = params[load.getGlobalAttr().getRootReference()];
        if (!p.full)
          return load.emitOpError("reads a parameter with sharded weights; zero-partition "
                                  "must gather it");
        bind(load.getResult(), p.full);
        return success();
      })
      .Case([&](LoadShardOp load) -> LogicalResult {
        const ParameterStorage &p = params[load.getParam()];
        if (!p.shard)
          return load.emitOpError("reads a shard of a parameter placed ")
                 << p.placement << ", which has none";
        bind(load.getResult(), p.shard);
        return success();
      })
      .Case([&](ml_program::GlobalStoreOp store) {
        const ParameterStorage &p = params[store.getGlobal().getRootReference()];
        if (lookup(store.getValue()) != p.full)
          instr(loc, "Copy", {lookup(store.getValue())}, {p.full});
        return success();
      })
      .Case([&](ox::ConstantOp constant) {
        auto type = tensorType(constant.getResult());
        std::string name = "const" + std::to_string(nextValue++);
        auto buffer = newBuffer(name, plan::getTensorBytes(type), "constant", true);
        auto value = newValue(name, type, buffer);
        init(loc, value, -1, constant.getValue(), 0);
        bind(constant.getResult(), value);
        return success();
      })
      .Case([&](ox::ReshapeOp reshape) {
        plan::ValueOp source = valueOp(lookup(reshape.getInput()));
        bind(reshape.getResult(), newValue(source.getSymName().str() + ".view", tensorType(reshape.getResult()),
                     source.getBufferAttr(), source.getByteOffset(), source.getRankStride()));
        return success();
      })
      .Case([&](ox::SplitOp split) {
        // A part is a view where the parts are contiguous runs of the input
        // (every dimension before the axis is 1), else a Slice of it.
        FlatSymbolRefAttr input = lookup(split.getInput());
        plan::ValueOp source = valueOp(input);
        auto type = tensorType(split.getInput());
        int64_t axis = *normalizeAxis(split.getAxis(), type.getRank());
        const bool views =
            source.getRankStride() == 0 &&
            llvm::all_of(type.getShape().take_front(axis), [](int64_t d) { return d == 1; });
        const int64_t rowBytes = plan::getTensorBytes(type) / type.getDimSize(axis);
        SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1);
        for (Value part : split.getParts()) {
          if (views)
            bind(part, newValue(source.getSymName().str() + ".part", tensorType(part),
                                source.getBufferAttr(),
                                source.getByteOffset() + starts[axis] * rowBytes));
          else if (!part.use_empty())
            instr(loc, "Slice", {input}, {define(part)},
                  {attr("starts", b.getDenseI64ArrayAttr(starts)),
                   attr("steps", b.getDenseI64ArrayAttr(steps))});
          starts[axis] += tensorType(part).getDimSize(axis);
        }
        return success();
      })
      .Case([&](ox::BatchNormalizationOp norm) -> LogicalResult {
        // The running statistics are updated in place in their globals.
        SmallVector<FlatSymbolRefAttr> in;
        for (Value v : norm->getOperands())
          in.push_back(lookup(v));
        for (int i : {3, 4}) {
          if (!norm->getOperand(i).getDefiningOp<ml_program::GlobalLoadOp>())
            return norm.emitOpError("running statistics must be model state globals");
          bind(norm->getResult(i), in[i]);
        }
        SmallVector<FlatSymbolRefAttr> out{define(norm.getResult()), define(norm.getSavedMean()),
                                           define(norm.getSavedInvStd())};
        instr(loc, "BatchNormalization", in, out,
              {attr("epsilon", norm.getEpsilonAttr()), attr("momentum", norm.getMomentumAttr())});
        return success();
      })
      .Case([&](ox::LayerNormalizationOp norm) {
        SmallVector<FlatSymbolRefAttr> in{lookup(norm.getInput()), lookup(norm.getScale())};
        if (norm.getBias()) {
          in.push_back(lookup(norm.getBias()));
        } else {
          // The kernel always adds a bias; a missing one is zeros.
          auto type = tensorType(norm.getScale());
          std::string name = "const" + std::to_string(nextValue++);
          auto zeros = newValue(name, type,
                                newBuffer(name, plan::getTensorBytes(type), "constant", true));
          init(loc, zeros, -1, DenseElementsAttr::get(type, 0.0f), 0);
          in.push_back(zeros);
        }
        SmallVector<FlatSymbolRefAttr> out;
        for (Value r : norm->getResults())
          out.push_back(define(r));
        instr(loc, "LayerNormalization", in, out,
              {attr("axis", norm.getAxisAttr()), attr("epsilon", norm.getEpsilonAttr())});
        return success();
      })
      .Case([&](LayerNormalizationGradOp grad) {
        // Without a trainable scale or bias (InstanceNormalization's unit
        // scale) the kernel computes dinput alone.
        SmallVector<FlatSymbolRefAttr> in, out{define(grad.getDinput())};
        for (Value v : grad->getOperands())
          in.push_back(lookup(v));
        if (!grad.getDscale().use_empty() || !grad.getDbias().use_empty())
          out.append({define(grad.getDscale()), define(grad.getDbias())});
        instr(loc, "LayerNormalizationGrad", in, out,
              simpleAttributes(grad, {grad->getName().getStringRef(),
                                      Opcode::LayerNormalizationGrad}));
        return success();
      })
      .Case<ox::ReduceSumOp, ox::ReduceMeanOp, ox::ReduceMaxOp, ox::ReduceMinOp, ox::ReduceProdOp,
            ox::ReduceL2Op>([&](auto reduce) {
        int64_t rank = tensorType(reduce.getInput()).getRank();
        SmallVector<int64_t> axes;
        for (int64_t a : reduce.getAxes())
          axes.push_back(*normalizeAxis(a, rank));
        if (axes.empty())
          for (int64_t i = 0; i < rank; ++i)
            axes.push_back(i);
        llvm::sort(axes);
        instr(loc, reduce->getName().stripDialect(), {lookup(reduce.getInput())},
              {define(reduce.getResult())},
              {attr("axes", b.getDenseI64ArrayAttr(axes)),
               attr("keepdims", reduce.getKeepdimsAttr())});
        return success();
      })
      .Case([&](AllReduceOp allReduce) {
        FlatSymbolRefAttr input = lookup(allReduce.getInput());
        FlatSymbolRefAttr output = input;
        if (canOverwrite(allReduce.getInput(), allReduce)) {
          bind(allReduce.getResult(), input); // in place: the input dies here
        } else {
          output = define(allReduce.getResult());
        }
        bool isGradient = llvm::any_of(allReduce->getUsers(), [](Operation *user) {
          return isa<SgdUpdateOp, AdamWUpdateOp>(user);
        });
        if (isGradient)
          bufferOf(output).setKind("gradient");
        instr(loc, "AllReduce", {input}, {output},
              {attr("reduction", allReduce.getReductionAttr())});
        return success();
      })
      .Case([&](ReduceScatterOp op) { return lowerReduceScatter(op); })
      .Case([&](LearningRateOp op) { return lowerLearningRate(op); })
      .Case<ox::DropoutOp, DropoutGradOp>([&](Operation *op) -> LogicalResult {
        // The masks are keyed by the step the counter holds until the
        // updates count this one.
        if (stepIncremented)
          return op->emitOpError("comes after the step counter's increment");
        bool forward = isa<ox::DropoutOp>(op);
        plan::Opcode opcode = forward ? plan::Opcode::Dropout : plan::Opcode::DropoutGrad;
        instr(loc, plan::EnumNameOpcode(opcode), {lookup(op->getOperand(0)), stepCounter()},
              {define(op->getResult(0))},
              simpleAttributes(op, {op->getName().getStringRef(), opcode}));
        return success();
      })
      .Case([&](MetricOp metric) {
        // Read by the launcher after the step.
        FlatSymbolRefAttr value = lookup(metric.getValue());
        bufferOf(value).setPersistent(true);
        plan::MetricOp::create(b, loc, metric.getNameAttr(), value);
        return success();
      })
      .Case([&](AllGatherOp op) { return lowerAllGather(op); })
      .Case<SgdUpdateOp, AdamWUpdateOp>([&](Operation *op) { return lowerUpdate(op); })
      .Case([&](func::ReturnOp ret) {
        // Results are read by the launcher after the step.
        auto func = ret->getParentOfType<func::FuncOp>();
        for (auto [i, operand] : llvm::enumerate(ret.getOperands())) {
          FlatSymbolRefAttr value = lookup(operand);
          bufferOf(value).setPersistent(true);
          if (!forwardOnly) {
            plan::LossOp::create(b, loc, value, lowersEvaluation ? b.getUnitAttr() : nullptr);
            break;
          }
          auto name = func.getResultAttrOfType<StringAttr>(i, "zero.output");
          plan::OutputOp::create(b, loc, name ? name : b.getStringAttr("output" + Twine(i)), value);
        }
        return success();
      })
      .Default([&](Operation *other) {
        return other->emitOpError("cannot be lowered to a plan instruction");
      });
}

LogicalResult PlanBuilder::lowerFunction(func::FuncOp func, bool evaluation) {
  lowersEvaluation = evaluation;
  for (BlockArgument arg : func.getArguments()) {
    auto name = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "zero.input");
    if (!name)
      return func.emitError("argument ") << arg.getArgNumber() << " has no 'zero.input' name";
    auto type = tensorType(arg);
    std::string bufferName = (evaluation ? "eval." : "") + name.getValue().str();
    auto buffer = newBuffer(bufferName, plan::getTensorBytes(type), "input", true);
    bind(arg, newValue(bufferName, type, buffer));
    auto microStep = func.getArgAttrOfType<IntegerAttr>(arg.getArgNumber(), kMicroStepAttr);
    plan::InputOp::create(b, func.getLoc(), name, lookup(arg),
                          b.getUI32IntegerAttr(microStep ? microStep.getInt() : 0),
                          evaluation ? b.getUnitAttr() : nullptr);
  }
  for (Operation &op : func.getBody().front())
    if (failed(lowerOp(&op)))
      return failure();
  return success();
}

LogicalResult PlanBuilder::run() {
  // A partitioned @train_step trains; an unpartitioned @main is evaluated
  // (forward-only plans, e.g. for operator conformance).
  auto func = module.lookupSymbol<func::FuncOp>("train_step");
  if (!func) {
    func = module.lookupSymbol<func::FuncOp>("main");
    forwardOnly = true;
  }
  if (!func || forwardOnly == module->hasAttr(kStageAttr))
    return module.emitError("expected a partitioned @train_step (run zero-partition) or an "
                            "unpartitioned @main");

  // The stage is informational in the plan: placements decided the storage.
  auto stage = module->getAttrOfType<IntegerAttr>(kStageAttr);
  b.setInsertionPointToEnd(module.getBody());
  program = plan::ProgramOp::create(b, module.getLoc(), b.getStringAttr(backend),
                                    b.getUI32IntegerAttr(worldSize),
                                    b.getUI32IntegerAttr(stage ? stage.getInt() : 0), IntegerAttr(),
                                    omitWeights ? b.getUnitAttr() : nullptr);
  program.getBody().emplaceBlock();
  symbols.emplace(program);
  b.setInsertionPointToStart(&program.getBody().front());

  if (auto source = module->getAttrOfType<ElementsAttr>("zero.source_model"))
    plan::SourceModelOp::create(b, module.getLoc(), source);
  if (failed(lowerParameters()) || failed(lowerFunction(func, /*evaluation=*/false)))
    return failure();
  // A counter that only Dropout reads (SGD without a schedule) still counts
  // the steps.
  if (step) {
    incrementStep(func.getLoc());
    plan::StepCounterOp::create(b, func.getLoc(), step);
  }
  if (auto eval = module.lookupSymbol<func::FuncOp>("eval_step")) {
    if (forwardOnly)
      return eval.emitError("a forward-only plan has no evaluation program");
    plan::EvaluationOp::create(b, eval.getLoc());
    if (failed(lowerFunction(eval, /*evaluation=*/true)))
      return failure();
  }

  // The plan replaces the tensor program.
  for (Operation &op : llvm::make_early_inc_range(module.getBody()->getOperations()))
    if (&op != program.getOperation())
      op.erase();
  module->removeAttr("zero.source_model");
  return success();
}

struct LowerToPlanPass : public zero::impl::LowerToPlanBase<LowerToPlanPass> {
  using LowerToPlanBase::LowerToPlanBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (backend != "cpu" && backend != "cuda") {
      module.emitError("unknown backend '") << backend << "' (expected cpu or cuda)";
      return signalPassFailure();
    }
    auto world = module->getAttrOfType<IntegerAttr>(kWorldSizeAttr);
    if (failed(PlanBuilder(module, world ? world.getInt() : 1, backend, omitWeights).run()))
      return signalPassFailure();
    int64_t instructions = 0, buffers = 0, values = 0;
    module.walk([&](Operation *op) {
      instructions += isa<plan::InstrOp>(op);
      buffers += isa<plan::BufferOp>(op);
      values += isa<plan::ValueOp>(op);
    });
    numInstructions += instructions;
    numBuffers += buffers;
    numViews += values - buffers;
  }
};

} // namespace
