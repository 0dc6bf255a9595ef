//===- PlanDialect.cpp - verifiers for executable plans -------------------===//

#include "dialects/Plan/PlanDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "zero/plan_generated.h"
#include "zero/plan_ops.h"

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

zero::plan::InstructionStreams zero::plan::getInstructionStreams(ProgramOp program) {
  InstructionStreams streams;
  auto *stream = &streams.step;
  for (Operation &op : program.getBody().front()) {
    if (isa<EvaluationOp>(op))
      stream = &streams.evaluation;
    else if (auto instr = dyn_cast<InstrOp>(op))
      stream->push_back(instr);
  }
  return streams;
}

std::optional<Opcode> zero::plan::parseOpcode(StringRef opcode) {
  // The schema's generated enum is the one list of opcodes.
  for (Opcode value : EnumValuesOpcode())
    if (opcode == EnumNameOpcode(value))
      return value;
  return std::nullopt;
}

namespace {

StringRef kindName(zero::plan_ops::AttrKind kind) {
  using K = zero::plan_ops::AttrKind;
  switch (kind) {
  case K::Bool: return "a bool";
  case K::I64: return "an i64";
  case K::U32: return "an integer in [0, 2^32)";
  case K::F32: return "an f32";
  case K::I64s: return "an array<i64>";
  case K::Reduction: return "\"sum\", \"mean\" or \"none\"";
  case K::Schedule: return "\"constant\", \"linear\" or \"cosine\"";
  }
  return "";
}

bool hasKind(Attribute value, zero::plan_ops::AttrKind kind) {
  using K = zero::plan_ops::AttrKind;
  switch (kind) {
  case K::Bool:
    return isa<BoolAttr>(value);
  case K::I64: {
    auto i = dyn_cast<IntegerAttr>(value);
    return i && i.getType().isSignlessInteger(64);
  }
  case K::U32: {
    auto i = dyn_cast<IntegerAttr>(value);
    return i && i.getType().isSignlessInteger(64) && i.getInt() >= 0 && i.getInt() <= UINT32_MAX;
  }
  case K::F32: {
    auto f = dyn_cast<FloatAttr>(value);
    return f && f.getType().isF32();
  }
  case K::I64s:
    return isa<DenseI64ArrayAttr>(value);
  case K::Reduction:
  case K::Schedule: {
    auto s = dyn_cast<StringAttr>(value);
    uint8_t byte;
    return s && zero::plan_ops::parse_enum_field(kind, s.data(), s.size(), &byte);
  }
  }
  return false;
}

} // namespace

LogicalResult ProgramOp::verify() {
  if (getWorldSize() < 1)
    return emitOpError("world size must be at least 1");
  if (getZeroStage() > 3)
    return emitOpError("ZeRO stage must be 0, 1, 2 or 3");
  if (getBackend() != "cpu" && getBackend() != "cuda")
    return emitOpError("unknown backend '") << getBackend() << "'";
  auto evaluations = getBody().getOps<EvaluationOp>();
  bool hasEvaluation = !evaluations.empty();
  if (hasEvaluation && std::next(evaluations.begin()) != evaluations.end())
    return emitOpError("has more than one plan.evaluation");
  int64_t losses[2] = {0, 0};
  for (auto loss : getBody().getOps<LossOp>())
    ++losses[loss.getEval()];
  for (auto input : getBody().getOps<InputOp>())
    if (input.getEval() && !hasEvaluation)
      return input.emitOpError("is an evaluation input, but the program has no plan.evaluation");
  if (losses[0] > 1 || losses[1] > 1)
    return emitOpError("has more than one ") << (losses[1] > 1 ? "evaluation " : "") << "loss";
  if (losses[1] != int64_t(hasEvaluation))
    return emitOpError(hasEvaluation ? "has a plan.evaluation but no evaluation loss"
                                     : "has an evaluation loss but no plan.evaluation");
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
  std::optional<Opcode> opcode = parseOpcode(getOpcode());
  if (!opcode)
    return emitOpError("unknown opcode '") << getOpcode() << "'";
  const zero::plan_ops::OpDescriptor *desc = zero::plan_ops::find_op(*opcode);
  if (!desc)
    return emitOpError("opcode '") << getOpcode() << "' has no descriptor (zero/plan_ops.h)";
  auto count = [&](size_t n, uint16_t min, uint16_t max, StringRef what) -> LogicalResult {
    if (n >= min && n <= max)
      return success();
    InFlightDiagnostic diag = emitOpError() << getOpcode() << " takes ";
    if (min == max)
      diag << min;
    else
      diag << min << " to " << max;
    return diag << " " << what << ", got " << n;
  };
  if (failed(count(getInputs().size(), desc->min_in, desc->max_in, "inputs")) ||
      failed(count(getOutputs().size(), desc->min_out, desc->max_out, "outputs")))
    return failure();

  // Every attribute is one of the opcode's table, of its kind; a required one
  // is present. The serializer relies on this and supplies nothing itself.
  const zero::plan_ops::AttrTable *table = zero::plan_ops::find_attr_table(desc->attrs);
  ArrayRef<zero::plan_ops::AttrField> fields;
  if (table)
    fields = ArrayRef(table->fields, table->num_fields);
  for (NamedAttribute attr : getAttrs()) {
    const auto *field = llvm::find_if(
        fields, [&](const zero::plan_ops::AttrField &f) { return attr.getName() == f.name; });
    if (field == fields.end() || !desc->uses(field - fields.begin()))
      return emitOpError("attribute '") << attr.getName().getValue() << "' is not an attribute of "
                                        << getOpcode();
    if (!hasKind(attr.getValue(), field->kind))
      return emitOpError("attribute '") << field->name << "' of " << getOpcode() << " must be "
                                        << kindName(field->kind) << ", got " << attr.getValue();
  }
  for (auto [i, field] : llvm::enumerate(fields))
    if (field.presence == zero::plan_ops::Presence::Required && desc->uses(i) &&
        !getAttrs().contains(field.name))
      return emitOpError() << getOpcode() << " needs attribute '" << field.name << "' ("
                           << kindName(field.kind) << ")";
  if (*opcode == Opcode::Wait && getAttrs().getAs<IntegerAttr>("slot").getInt() < 1)
    return emitOpError("Wait completes an asynchronous collective: its slot must be positive");
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Plan/PlanOps.cpp.inc"
