//===- ZeroDialect.cpp - verifiers for training and collective ops --------===//

#include "dialects/Zero/ZeroDialect.h"
#include "dialects/ShapeUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpImplementation.h"
#include "zero/plan_ops.h"

using namespace mlir;
using namespace zero;

#include "dialects/Zero/ZeroDialect.cpp.inc"

void ZeroDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Zero/ZeroOps.cpp.inc"
      >();
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
  size_t given = (getAlphaAttr() ? 1 : 0) + (getBetaAttr() ? 1 : 0);
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
