//===- PlanSerializer.cpp - plan.program to the FlatBuffer plan -----------===//

#include "codegen/PlanSerializer.h"

#include "zero/plan_format.h"
#include "zero/plan_generated.h"
#include "zero/plan_ops.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"

#include <cstring>
#include <optional>

namespace fb = zero::plan; // the generated FlatBuffer types
using mlir::failure;
using mlir::success;

namespace zero::codegen {

namespace {

class Serializer {
public:
  explicit Serializer(plan::ProgramOp program) : program(program), symbols(program) {}

  mlir::LogicalResult run(llvm::raw_ostream &os);

private:
  mlir::FailureOr<uint32_t> indexOf(mlir::Attribute ref, mlir::Operation *user);
  mlir::FailureOr<flatbuffers::Offset<fb::Instruction>> instruction(plan::InstrOp op);
  mlir::FailureOr<flatbuffers::Offset<fb::Initializer>> initializer(plan::InitOp op);
  mlir::FailureOr<std::pair<fb::Attrs, flatbuffers::Offset<void>>>
  attributes(plan::InstrOp op, fb::Opcode opcode);

  plan::ProgramOp program;
  mlir::SymbolTable symbols;
  flatbuffers::FlatBufferBuilder fbb{1 << 20};
  llvm::StringMap<uint32_t> valueIndex;
};

std::optional<fb::ValueKind> parseKind(llvm::StringRef kind) {
  return llvm::StringSwitch<std::optional<fb::ValueKind>>(kind)
      .Case("parameter", fb::ValueKind::Parameter)
      .Case("gradient", fb::ValueKind::Gradient)
      .Case("optimizer_state", fb::ValueKind::OptimizerState)
      .Case("activation", fb::ValueKind::Activation)
      .Case("communication", fb::ValueKind::Communication)
      .Case("input", fb::ValueKind::Input)
      .Case("constant", fb::ValueKind::Constant)
      .Case("model_state", fb::ValueKind::ModelState)
      .Default(std::nullopt);
}

/// The bytes an elements attribute holds, splats expanded.
std::vector<char> elementBytes(mlir::ElementsAttr data) {
  auto type = llvm::cast<mlir::ShapedType>(data.getType());
  size_t elementBytes = type.getElementTypeBitWidth() / 8;
  size_t total = type.getNumElements() * elementBytes;
  if (auto resource = llvm::dyn_cast<mlir::DenseResourceElementsAttr>(data)) {
    llvm::ArrayRef<char> blob = resource.getRawHandle().getBlob()->getData();
    return std::vector<char>(blob.begin(), blob.end());
  }
  auto dense = llvm::cast<mlir::DenseElementsAttr>(data);
  llvm::ArrayRef<char> raw = dense.getRawData();
  std::vector<char> bytes(total);
  for (size_t offset = 0; offset < total; offset += elementBytes)
    std::memcpy(bytes.data() + offset, raw.data() + (dense.isSplat() ? 0 : offset), elementBytes);
  return bytes;
}

} // namespace

mlir::FailureOr<uint32_t> Serializer::indexOf(mlir::Attribute ref, mlir::Operation *user) {
  auto symbol = llvm::cast<mlir::FlatSymbolRefAttr>(ref).getValue();
  auto it = valueIndex.find(symbol);
  if (it == valueIndex.end())
    return user->emitOpError("names no value @") << symbol;
  return it->second;
}

/// The instruction's attribute table, written field by field from its
/// descriptor (zero/plan_ops.h); a required field that is missing or of
/// another kind is an error, never a made-up value.
mlir::FailureOr<std::pair<fb::Attrs, flatbuffers::Offset<void>>>
Serializer::attributes(plan::InstrOp op, fb::Opcode opcode) {
  using plan_ops::AttrKind;
  mlir::DictionaryAttr attrs = op.getAttrs();
  const plan_ops::OpDescriptor *desc = plan_ops::find_op(opcode);
  const plan_ops::AttrTable *table = desc ? plan_ops::find_attr_table(desc->attrs) : nullptr;
  if (!table) {
    if (!attrs.empty())
      return op.emitOpError("opcode ") << op.getOpcode() << " takes no attributes";
    return std::make_pair(fb::Attrs::NONE, flatbuffers::Offset<void>());
  }
  llvm::ArrayRef<plan_ops::AttrField> fields(table->fields, table->num_fields);
  auto wrongKind = [&](const plan_ops::AttrField &field) {
    return op.emitOpError("attribute '") << field.name << "' of " << op.getOpcode()
                                         << " has the wrong kind";
  };
  // The serializer trusts no verifier: an attribute it would not write is an
  // error, not a silent drop.
  for (mlir::NamedAttribute attr : attrs)
    if (llvm::none_of(fields, [&](const plan_ops::AttrField &f) { return attr.getName() == f.name; }))
      return op.emitOpError("attribute '") << attr.getName().getValue()
                                           << "' is not an attribute of " << op.getOpcode();
  // Vectors first: a FlatBuffer table refers to objects built before it.
  llvm::SmallVector<flatbuffers::Offset<flatbuffers::Vector<int64_t>>> vectors(fields.size());
  for (auto [i, field] : llvm::enumerate(fields)) {
    mlir::Attribute value = attrs.get(field.name);
    if (!value || field.kind != AttrKind::I64s)
      continue;
    auto array = llvm::dyn_cast<mlir::DenseI64ArrayAttr>(value);
    if (!array)
      return wrongKind(field);
    vectors[i] = fbb.CreateVector(array.asArrayRef().data(), array.size());
  }
  // Every given field is written, also when it equals the schema default.
  // (On an error the whole plan is abandoned, builder included.)
  fbb.ForceDefaults(true);
  auto start = fbb.StartTable();
  for (auto [i, field] : llvm::enumerate(fields)) {
    mlir::Attribute value = attrs.get(field.name);
    if (value && !desc->uses(i))
      return op.emitOpError("attribute '") << field.name << "' is not an attribute of "
                                           << op.getOpcode();
    if (!value) {
      if (field.presence == plan_ops::Presence::Required && desc->uses(i))
        return op.emitOpError() << op.getOpcode() << " needs attribute '" << field.name << "'";
      continue;
    }
    bool ok = true;
    switch (field.kind) {
    case AttrKind::Bool:
      if (auto b = llvm::dyn_cast<mlir::BoolAttr>(value))
        fbb.AddElement<uint8_t>(field.offset, b.getValue(), 0);
      else
        ok = false;
      break;
    case AttrKind::I64:
    case AttrKind::U32:
      if (auto i = llvm::dyn_cast<mlir::IntegerAttr>(value);
          i && (field.kind == AttrKind::I64 || llvm::isUInt<32>(i.getInt()))) {
        if (field.kind == AttrKind::I64)
          fbb.AddElement<int64_t>(field.offset, i.getInt(), 0);
        else
          fbb.AddElement<uint32_t>(field.offset, static_cast<uint32_t>(i.getInt()), 0);
      } else {
        ok = false;
      }
      break;
    case AttrKind::F32:
      if (auto f = llvm::dyn_cast<mlir::FloatAttr>(value))
        fbb.AddElement<float>(field.offset, static_cast<float>(f.getValueAsDouble()), 0);
      else
        ok = false;
      break;
    case AttrKind::I64s:
      fbb.AddOffset(field.offset, vectors[i]);
      break;
    case AttrKind::Reduction:
    case AttrKind::Schedule: {
      auto name = llvm::dyn_cast<mlir::StringAttr>(value);
      uint8_t byte;
      if (name && plan_ops::parse_enum_field(field.kind, name.data(), name.size(), &byte))
        fbb.AddElement<uint8_t>(field.offset, byte, 0);
      else
        ok = false;
      break;
    }
    }
    if (!ok)
      return wrongKind(field);
    if (field.presence == plan_ops::Presence::Optional)
      fbb.AddElement<uint8_t>(field.flag, 1, 0);
  }
  flatbuffers::Offset<void> table_offset(fbb.EndTable(start));
  fbb.ForceDefaults(false);
  return std::make_pair(desc->attrs, table_offset);
}

mlir::FailureOr<flatbuffers::Offset<fb::Instruction>> Serializer::instruction(plan::InstrOp op) {
  auto opcode = plan::parseOpcode(op.getOpcode());
  if (!opcode)
    return op.emitOpError("opcode '") << op.getOpcode() << "' is not in the plan schema";
  std::vector<uint32_t> inputs, outputs;
  for (mlir::Attribute ref : op.getInputs()) {
    auto index = indexOf(ref, op);
    if (mlir::failed(index))
      return failure();
    inputs.push_back(*index);
  }
  for (mlir::Attribute ref : op.getOutputs()) {
    auto index = indexOf(ref, op);
    if (mlir::failed(index))
      return failure();
    outputs.push_back(*index);
  }
  auto attrs = attributes(op, *opcode);
  if (mlir::failed(attrs))
    return failure();
  std::string loc;
  if (auto name = llvm::dyn_cast<mlir::NameLoc>(op.getLoc()))
    loc = name.getName().str();
  return fb::CreateInstructionDirect(fbb, *opcode, &inputs, &outputs, attrs->first,
                                     attrs->second, loc.empty() ? nullptr : loc.c_str());
}

mlir::FailureOr<flatbuffers::Offset<fb::Initializer>> Serializer::initializer(plan::InitOp op) {
  auto index = indexOf(op.getValueAttr(), op);
  if (mlir::failed(index))
    return failure();
  auto value = symbols.lookup<plan::ValueOp>(op.getValueAttr().getAttr());
  auto type = llvm::cast<mlir::RankedTensorType>(value.getType());
  size_t bytes = plan::getTensorBytes(type);
  size_t width = type.getElementTypeBitWidth() / 8;
  std::vector<char> source = elementBytes(op.getData());
  // A slice of the data (a shard), zero-padded past its end.
  std::vector<uint8_t> data(bytes, 0);
  size_t begin = op.getDataOffset() * width;
  if (begin < source.size())
    std::memcpy(data.data(), source.data() + begin, std::min(bytes, source.size() - begin));
  fbb.ForceVectorAlignment(data.size(), sizeof(uint8_t), 64);
  auto vector = fbb.CreateVector(data);
  return fb::CreateInitializer(fbb, *index, op.getRank(), vector);
}

mlir::LogicalResult Serializer::run(llvm::raw_ostream &os) {
  if (!program.getArenaBytes())
    return program.emitOpError("has no memory plan; run zero-plan-memory first");

  std::vector<flatbuffers::Offset<fb::Value>> values;
  for (auto value : program.getOps<plan::ValueOp>()) {
    auto buffer = symbols.lookup<plan::BufferOp>(value.getBufferAttr().getAttr());
    auto kind = parseKind(buffer.getKind());
    if (!buffer.getOffset() || !kind)
      return value.emitOpError("its buffer has no offset or an unknown kind");
    auto type = llvm::cast<mlir::RankedTensorType>(value.getType());
    std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
    fb::DType dtype = type.getElementType().isF32() ? fb::DType::F32 : fb::DType::I64;
    valueIndex[value.getSymName()] = values.size();
    values.push_back(fb::CreateValueDirect(
        fbb, value.getSymName().str().c_str(), dtype, &shape,
        static_cast<uint64_t>(*buffer.getOffset() + value.getByteOffset()),
        static_cast<uint64_t>(value.getRankStride()), *kind));
  }

  // The step's instructions, then the evaluation's after plan.evaluation.
  std::vector<flatbuffers::Offset<fb::Instruction>> instructions, evalInstructions;
  std::vector<flatbuffers::Offset<fb::Instruction>> *stream = &instructions;
  std::vector<flatbuffers::Offset<fb::Initializer>> initializers;
  std::vector<flatbuffers::Offset<fb::Input>> inputs, evalInputs;
  std::vector<flatbuffers::Offset<fb::Parameter>> parameters;
  std::vector<flatbuffers::Offset<fb::Output>> outputs, metrics;
  std::optional<uint32_t> loss, evalLoss, stepCounter;
  bool hasEvaluation = false;
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> sourceModel;
  for (mlir::Operation &op : program.getBody().front()) {
    if (auto instr = llvm::dyn_cast<plan::InstrOp>(op)) {
      auto offset = instruction(instr);
      if (mlir::failed(offset))
        return failure();
      stream->push_back(*offset);
    } else if (auto counter = llvm::dyn_cast<plan::StepCounterOp>(op)) {
      auto index = indexOf(counter.getValueAttr(), counter);
      if (mlir::failed(index))
        return failure();
      stepCounter = *index;
    } else if (llvm::isa<plan::EvaluationOp>(op)) {
      hasEvaluation = true;
      stream = &evalInstructions;
    } else if (auto init = llvm::dyn_cast<plan::InitOp>(op)) {
      auto offset = initializer(init);
      if (mlir::failed(offset))
        return failure();
      initializers.push_back(*offset);
    } else if (auto input = llvm::dyn_cast<plan::InputOp>(op)) {
      auto index = indexOf(input.getValueAttr(), input);
      if (mlir::failed(index))
        return failure();
      (input.getEval() ? evalInputs : inputs)
          .push_back(fb::CreateInputDirect(fbb, input.getName().str().c_str(), *index,
                                           input.getMicroStep()));
    } else if (auto param = llvm::dyn_cast<plan::ParameterOp>(op)) {
      auto index = indexOf(param.getValueAttr(), param);
      if (mlir::failed(index))
        return failure();
      auto type = llvm::cast<mlir::RankedTensorType>(param.getType());
      std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
      std::vector<flatbuffers::Offset<fb::Output>> state;
      if (auto names = param.getOptimizerStateAttr())
        for (mlir::NamedAttribute entry : names) {
          auto value = llvm::dyn_cast<mlir::FlatSymbolRefAttr>(entry.getValue());
          if (!value)
            return param.emitOpError("optimizer_state '") << entry.getName().getValue()
                                                          << "' names no value";
          auto stateIndex = indexOf(value, param);
          if (mlir::failed(stateIndex))
            return failure();
          state.push_back(
              fb::CreateOutputDirect(fbb, entry.getName().getValue().str().c_str(), *stateIndex));
        }
      parameters.push_back(fb::CreateParameterDirect(
          fbb, param.getName().str().c_str(), &shape, *index, param.getSharded(),
          param.getShardNumel(), param.getTrainable(), state.empty() ? nullptr : &state,
          param.getStateSharded()));
    } else if (auto output = llvm::dyn_cast<plan::OutputOp>(op)) {
      auto index = indexOf(output.getValueAttr(), output);
      if (mlir::failed(index))
        return failure();
      outputs.push_back(fb::CreateOutputDirect(fbb, output.getName().str().c_str(), *index));
    } else if (auto metric = llvm::dyn_cast<plan::MetricOp>(op)) {
      auto index = indexOf(metric.getValueAttr(), metric);
      if (mlir::failed(index))
        return failure();
      metrics.push_back(fb::CreateOutputDirect(fbb, metric.getName().str().c_str(), *index));
    } else if (auto lossOp = llvm::dyn_cast<plan::LossOp>(op)) {
      auto index = indexOf(lossOp.getValueAttr(), lossOp);
      if (mlir::failed(index))
        return failure();
      (lossOp.getEval() ? evalLoss : loss) = *index;
    } else if (auto source = llvm::dyn_cast<plan::SourceModelOp>(op)) {
      std::vector<char> bytes = elementBytes(source.getBytes());
      sourceModel = fbb.CreateVector(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    }
  }
  if (!loss && outputs.empty())
    return program.emitOpError("has neither a plan.loss nor plan.outputs");
  if (hasEvaluation != evalLoss.has_value())
    return program.emitOpError("needs both a plan.evaluation and an evaluation loss, or neither");
  flatbuffers::Offset<fb::Evaluation> evaluation;
  if (hasEvaluation)
    evaluation = fb::CreateEvaluation(fbb, fbb.CreateVector(evalInstructions),
                                      fbb.CreateVector(evalInputs), *evalLoss);

  fb::Backend backend = program.getBackend() == "cuda" ? fb::Backend::Cuda : fb::Backend::Cpu;
  auto root = fb::CreatePlan(
      fbb, kPlanFormatVersion, backend, program.getWorldSize(), program.getZeroStage(),
      static_cast<uint64_t>(*program.getArenaBytes()), fbb.CreateVector(values),
      fbb.CreateVector(instructions), fbb.CreateVector(initializers), fbb.CreateVector(inputs),
      fbb.CreateVector(parameters), loss.value_or(0), sourceModel, fbb.CreateVector(outputs),
      program.getWeightsOmitted(),
      // Absent, not empty, without metrics: plans that report none stay as they were.
      metrics.empty() ? 0 : fbb.CreateVector(metrics), evaluation, stepCounter.has_value(),
      stepCounter.value_or(0));
  fb::FinishPlanBuffer(fbb, root);
  os.write(reinterpret_cast<const char *>(fbb.GetBufferPointer()), fbb.GetSize());
  return success();
}

mlir::LogicalResult serializePlan(plan::ProgramOp program, llvm::raw_ostream &os) {
  return Serializer(program).run(os);
}

} // namespace zero::codegen
