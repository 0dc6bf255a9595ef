//===- PlanDialect.cpp - verifiers for executable plans -------------------===//

#include "dialects/Plan/PlanDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "zero/plan_generated.h"

using namespace mlir;
using namespace zero::plan;

#include "dialects/Plan/PlanDialect.cpp.inc"

void PlanDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/Plan/PlanOps.cpp.inc"
      >();
}

int64_t zero::plan::getTensorBytes(RankedTensorType type) {
  return type.getNumElements() * (type.getElementTypeBitWidth() / 8);
}

bool zero::plan::isKnownOpcode(StringRef opcode) {
  // The schema's generated enum is the one list of opcodes.
  for (Opcode value : EnumValuesOpcode())
    if (opcode == EnumNameOpcode(value))
      return true;
  return false;
}

LogicalResult ProgramOp::verify() {
  if (getWorldSize() < 1)
    return emitOpError("world size must be at least 1");
  if (getZeroStage() > 3)
    return emitOpError("ZeRO stage must be 0, 1, 2 or 3");
  if (getBackend() != "cpu" && getBackend() != "cuda")
    return emitOpError("unknown backend '") << getBackend() << "'";
  return success();
}

LogicalResult BufferOp::verify() {
  static const llvm::StringSet<> kinds = {"parameter",     "gradient", "optimizer_state",
                                          "activation",    "communication",
                                          "input",         "constant",
                                          "model_state"};
  if (!kinds.contains(getKind()))
    return emitOpError("unknown kind '") << getKind() << "'";
  if (getBytesAttr().getInt() < 0)
    return emitOpError("size must not be negative");
  return success();
}

LogicalResult ValueOp::verify() {
  auto type = cast<RankedTensorType>(getType());
  if (!type.getElementType().isF32() && !type.getElementType().isInteger(64))
    return emitOpError("element type must be f32 or i64");
  if (getByteOffsetAttr().getInt() < 0 || getRankStrideAttr().getInt() < 0)
    return emitOpError("byte_offset and rank_stride must not be negative");
  return success();
}

// Symbol references are checked here, with the verifier's shared symbol
// tables, so verifying a plan stays linear in its size.
LogicalResult ValueOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto buffer = symbolTable.lookupNearestSymbolFrom<BufferOp>(*this, getBufferAttr());
  if (!buffer)
    return emitOpError("names no buffer ") << getBufferAttr();
  auto type = cast<RankedTensorType>(getType());
  auto world = getOperation()->getParentOfType<ProgramOp>().getWorldSize();
  int64_t offset = getByteOffsetAttr().getInt(), stride = getRankStrideAttr().getInt();
  int64_t end = offset + stride * (world - 1) + getTensorBytes(type);
  if (end > buffer.getBytesAttr().getInt())
    return emitOpError("view of ") << end << " bytes exceeds buffer " << getBufferAttr() << " of "
                                   << buffer.getBytes() << " bytes";
  return success();
}

LogicalResult InstrOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  for (Attribute ref : llvm::concat<const Attribute>(getInputs(), getOutputs()))
    if (!symbolTable.lookupNearestSymbolFrom<ValueOp>(*this, cast<SymbolRefAttr>(ref)))
      return emitOpError("names no value ") << ref;
  return success();
}

LogicalResult InstrOp::verify() {
  if (!isKnownOpcode(getOpcode()))
    return emitOpError("unknown opcode '") << getOpcode() << "'";
  if (getOpcode() == "Wait") {
    auto slot = getAttrs().getAs<IntegerAttr>("slot");
    if (getInputs().size() != 2 || !getOutputs().empty() || !slot || slot.getInt() < 1)
      return emitOpError("Wait takes the two operands of the collective it completes and a "
                         "positive slot");
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Plan/PlanOps.cpp.inc"
