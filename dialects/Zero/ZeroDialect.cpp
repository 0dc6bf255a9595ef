//===- ZeroDialect.cpp - verifiers for training and collective ops --------===//

#include "dialects/Zero/ZeroDialect.h"

#include <cmath>
#include "dialects/ShapeUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "zero/plan_ops.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace zero;

#include "dialects/Zero/ZeroDialect.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Zero/ZeroAttrs.cpp.inc"

void ZeroDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Zero/ZeroOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "dialects/Zero/ZeroAttrs.cpp.inc"
      >();
}

LogicalResult ZeroDialect::verifyOperationAttribute(Operation *op, NamedAttribute attr) {
  // The other zero.* attributes are plain builtin values their readers check.
  if (attr.getName() != kPlacementAttr)
    return success();
  if (!isa<PlacementAttr>(attr.getValue()))
    return op->emitOpError("'") << kPlacementAttr << "' must be a #zero.placement";
  return success();
}

//===----------------------------------------------------------------------===//
// PlacementAttr
//===----------------------------------------------------------------------===//

namespace {

/// Parses `key = replicated` or `key = sharded<N>` (N >= 1).
ParseResult parseTensorPlacement(AsmParser &parser, StringRef key, int64_t &shards) {
  if (parser.parseKeyword(key) || parser.parseEqual())
    return failure();
  if (succeeded(parser.parseOptionalKeyword("replicated"))) {
    shards = PlacementAttr::kReplicated;
    return success();
  }
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword("sharded", " or 'replicated'") || parser.parseLess() ||
      parser.parseInteger(shards) || parser.parseGreater())
    return failure();
  // 0 would read back as replicated.
  if (shards < 1)
    return parser.emitError(loc, "a tensor is sharded over at least 1 rank, got ") << shards;
  return success();
}

void printTensorPlacement(AsmPrinter &printer, StringRef key, int64_t shards) {
  printer << key << " = ";
  if (shards == PlacementAttr::kReplicated)
    printer << "replicated";
  else
    printer << "sharded<" << shards << ">";
}

} // namespace

Attribute PlacementAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  int64_t weights, grad, state;
  if (parser.parseLess() || parseTensorPlacement(parser, "weights", weights) ||
      parser.parseComma() || parseTensorPlacement(parser, "grad", grad) || parser.parseComma() ||
      parseTensorPlacement(parser, "optimizer_state", state) || parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(), weights, grad,
                    state);
}

void PlacementAttr::print(AsmPrinter &printer) const {
  printer << "<";
  printTensorPlacement(printer, "weights", getWeights());
  printer << ", ";
  printTensorPlacement(printer, "grad", getGrad());
  printer << ", ";
  printTensorPlacement(printer, "optimizer_state", getOptimizerState());
  printer << ">";
}

LogicalResult PlacementAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t weights,
                                    int64_t grad, int64_t state) {
  for (int64_t shards : {weights, grad, state})
    if (shards < 0)
      return emitError() << "shard counts must be " << kReplicated
                         << " (replicated) or positive, got " << shards;
  // The update reads the weights, the gradient and the state together: where
  // the weights are shards so must the others be, and a gradient shard is
  // only ever reduced into for a sharded optimizer state.
  if (weights != kReplicated && grad == kReplicated)
    return emitError() << "sharded weights need a sharded gradient";
  if (grad != kReplicated && state == kReplicated)
    return emitError() << "a sharded gradient needs a sharded optimizer state";
  for (int64_t shards : {weights, grad})
    if (shards != kReplicated && shards != state)
      return emitError() << "the sharded tensors of a parameter must be sharded over the same "
                            "number of ranks";
  return success();
}

PlacementAttr zero::getPlacement(Operation *op) {
  if (auto placement = op->getAttrOfType<PlacementAttr>(kPlacementAttr))
    return placement;
  return PlacementAttr::getReplicated(op->getContext());
}

FailureOr<PlacementAttr> zero::getParameterPlacement(ml_program::GlobalOp global,
                                                     int64_t worldSize) {
  PlacementAttr placement = getPlacement(global);
  if (!isTrainable(global) && placement != PlacementAttr::getReplicated(global.getContext()))
    return global.emitOpError("is model state, which stays whole on every rank; it cannot be "
                              "placed ")
           << placement;
  // Shards are 1/world-size of the tensor (zero.load_shard): a placement over
  // other rank counts would need communicators the runtime does not have.
  if (placement.hasShardedOptimizerState() && placement.getOptimizerState() != worldSize)
    return global.emitOpError("is sharded over ")
           << placement.getOptimizerState() << " ranks, but the world size is " << worldSize;
  return placement;
}

RankedTensorType zero::getShardType(RankedTensorType type, int64_t worldSize) {
  return RankedTensorType::get({shardNumel(type.getNumElements(), worldSize)},
                               type.getElementType());
}

ml_program::GlobalOp zero::lookupParameter(Operation *from, FlatSymbolRefAttr symbol) {
  auto global = SymbolTable::lookupNearestSymbolFrom<ml_program::GlobalOp>(from, symbol);
  if (!global)
    from->emitOpError("names no parameter ") << symbol;
  return global;
}

namespace {

/// The world size a sharded op is partitioned for, from the enclosing module.
FailureOr<int64_t> moduleWorldSize(Operation *op) {
  auto module = op->getParentOfType<ModuleOp>();
  auto attr = module ? module->getAttrOfType<IntegerAttr>(kWorldSizeAttr) : IntegerAttr();
  if (!attr)
    return op->emitOpError("needs a module partitioned with '") << kWorldSizeAttr << "'";
  return attr.getInt();
}

template <typename UpdateOp>
LogicalResult verifyUpdate(UpdateOp op) {
  auto global = lookupParameter(op, op.getParamAttr());
  if (!global)
    return failure();
  auto paramType = cast<RankedTensorType>(global.getType());
  RankedTensorType expected = paramType;
  if (op.getSharded()) {
    auto worldSize = moduleWorldSize(op);
    if (failed(worldSize))
      return failure();
    expected = getShardType(paramType, *worldSize);
  }
  if (op.getGrad().getType() != expected)
    return op.emitOpError("gradient type ") << op.getGrad().getType() << " does not match "
                                            << expected << " of parameter " << op.getParamAttr();
  return success();
}

template <typename LossGradOp>
LogicalResult verifyLossGrad(LossGradOp op) {
  auto in = op.getInput().getType();
  if (in.getRank() < 2)
    return op.emitOpError("input must be [N, C, ...]");
  if (op.getDinput().getType() != in)
    return op.emitOpError("dinput type must match the input type ") << in;
  if (Value weights = op.getWeights()) {
    auto type = cast<RankedTensorType>(weights.getType());
    if (type.getRank() != 1 || type.getDimSize(0) != in.getDimSize(1))
      return op.emitOpError("weights must have shape [C] = [") << in.getDimSize(1) << "]";
  }
  return success();
}

} // namespace

LogicalResult ElementwiseGradOp::verify() {
  const zero::plan_ops::ElementwiseOp *info = zero::plan_ops::find_elementwise(getOp());
  if (!info || !info->has_derivative)
    return emitOpError() << "'" << getOp() << "' is not an elementwise op with a derivative kernel";
  // Exactly the forward op's attributes.
  size_t given = 0;
  for (Attribute a : {Attribute(getAlphaAttr()), Attribute(getBetaAttr()),
                      Attribute(getGammaAttr()), Attribute(getMinAttr()), Attribute(getMaxAttr())})
    given += a ? 1 : 0;
  for (const auto &attribute : llvm::ArrayRef(info->attributes, info->num_attributes))
    if (!(*this)->hasAttr(attribute.name))
      return emitOpError() << "of '" << getOp() << "' needs attribute '" << attribute.name << "'";
  if (given != info->num_attributes)
    return emitOpError() << "of '" << getOp() << "' takes " << info->num_attributes
                         << " attribute(s), got " << given;
  return success();
}

LogicalResult SoftmaxCrossEntropyLossGradOp::verify() { return verifyLossGrad(*this); }
LogicalResult NegativeLogLikelihoodLossGradOp::verify() { return verifyLossGrad(*this); }
LogicalResult SgdUpdateOp::verify() { return verifyUpdate(*this); }
LogicalResult AdamWUpdateOp::verify() { return verifyUpdate(*this); }

LogicalResult LearningRateOp::verify() {
  StringRef schedule = getSchedule();
  if (schedule != "constant" && schedule != "linear" && schedule != "cosine")
    return emitOpError("unknown schedule '") << schedule << "' (expected constant, linear or cosine)";
  const int64_t warmup = getWarmupStepsAttr().getInt(), total = getTotalStepsAttr().getInt();
  if (warmup < 0)
    return emitOpError("warmup_steps must not be negative");
  if (schedule != "constant" && total < 1)
    return emitOpError("the ") << schedule << " schedule needs total_steps of at least 1";
  if (schedule != "constant" && warmup > total)
    return emitOpError("warmup_steps (") << warmup << ") exceed total_steps (" << total << ")";
  double ratio = getMinLrRatio().convertToDouble();
  if (!(ratio >= 0 && ratio <= 1))
    return emitOpError("min_lr_ratio must be in [0, 1]");
  return success();
}

LogicalResult ClipCoefficientOp::verify() {
  double maxNorm = getMaxNorm().convertToDouble();
  if (!(maxNorm > 0) || std::isinf(maxNorm))
    return emitOpError("max_norm must be positive and finite");
  return success();
}

LogicalResult LoadShardOp::verify() {
  auto global = lookupParameter(*this, getParamAttr());
  if (!global)
    return failure();
  auto worldSize = moduleWorldSize(*this);
  if (failed(worldSize))
    return failure();
  auto expected = getShardType(cast<RankedTensorType>(global.getType()), *worldSize);
  if (getShard().getType() != expected)
    return emitOpError("shard type must be ") << expected;
  return success();
}

namespace {

LogicalResult verifyReduction(Operation *op, StringRef reduction) {
  if (reduction != "sum" && reduction != "mean")
    return op->emitOpError("reduction must be \"sum\" or \"mean\", got \"") << reduction << "\"";
  return success();
}

} // namespace

LogicalResult AllReduceOp::verify() { return verifyReduction(*this, getReduction()); }

LogicalResult ReduceScatterOp::verify() {
  if (failed(verifyReduction(*this, getReduction())))
    return failure();
  if (getWorldSize() < 1)
    return emitOpError("world size must be positive");
  auto expected = getShardType(getInput().getType(), getWorldSize());
  if (getShard().getType() != expected)
    return emitOpError("shard type must be ") << expected;
  return success();
}

LogicalResult AllGatherOp::verify() {
  if (getWorldSize() < 1)
    return emitOpError("world size must be positive");
  auto expected = getShardType(getResult().getType(), getWorldSize());
  if (getShard().getType() != expected)
    return emitOpError("shard type must be ") << expected << " for result "
                                              << getResult().getType();
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Zero/ZeroOps.cpp.inc"
