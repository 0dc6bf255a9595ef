//===- PlanSerializer.cpp - plan.program to the FlatBuffer plan -----------===//

#include "codegen/PlanSerializer.h"

#include "zero/plan_format.h"
#include "zero/plan_generated.h"

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

std::optional<fb::Opcode> parseOpcode(llvm::StringRef name) {
  for (fb::Opcode opcode : fb::EnumValuesOpcode())
    if (name == fb::EnumNameOpcode(opcode))
      return opcode;
  return std::nullopt;
}

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

fb::Reduction parseReduction(llvm::StringRef reduction) {
  return llvm::StringSwitch<fb::Reduction>(reduction)
      .Case("sum", fb::Reduction::Sum)
      .Case("none", fb::Reduction::None)
      .Default(fb::Reduction::Mean);
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

mlir::FailureOr<std::pair<fb::Attrs, flatbuffers::Offset<void>>>
Serializer::attributes(plan::InstrOp op, fb::Opcode opcode) {
  mlir::DictionaryAttr attrs = op.getAttrs();
  auto f32 = [&](llvm::StringRef name) {
    auto a = attrs.getAs<mlir::FloatAttr>(name);
    return a ? static_cast<float>(a.getValueAsDouble()) : 0.0f;
  };
  auto boolean = [&](llvm::StringRef name) {
    auto a = attrs.getAs<mlir::BoolAttr>(name);
    return a && a.getValue();
  };
  auto i64 = [&](llvm::StringRef name) {
    auto a = attrs.getAs<mlir::IntegerAttr>(name);
    return a ? a.getInt() : 0;
  };
  auto i64s = [&](llvm::StringRef name) {
    auto a = attrs.getAs<mlir::DenseI64ArrayAttr>(name);
    std::vector<int64_t> v = a ? std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end())
                               : std::vector<int64_t>();
    return fbb.CreateVector(v);
  };
  auto reduction = [&] {
    auto a = attrs.getAs<mlir::StringAttr>("reduction");
    return parseReduction(a ? a.getValue() : "mean");
  };
  auto none = std::make_pair(fb::Attrs::NONE, flatbuffers::Offset<void>());

  switch (opcode) {
  case fb::Opcode::Gemm:
    return std::make_pair(fb::Attrs::GemmAttrs,
                          fb::CreateGemmAttrs(fbb, boolean("trans_a"), boolean("trans_b"),
                                              f32("alpha"), f32("beta"))
                              .Union());
  case fb::Opcode::Gather:
  case fb::Opcode::GatherGrad:
  case fb::Opcode::Concat:
  case fb::Opcode::Softmax:
  case fb::Opcode::LogSoftmax:
  case fb::Opcode::SoftmaxGrad:
  case fb::Opcode::LogSoftmaxGrad:
    return std::make_pair(fb::Attrs::AxisAttrs, fb::CreateAxisAttrs(fbb, i64("axis")).Union());
  case fb::Opcode::SoftmaxCrossEntropyLoss:
  case fb::Opcode::NegativeLogLikelihoodLoss:
  case fb::Opcode::SoftmaxCrossEntropyLossGrad:
  case fb::Opcode::NegativeLogLikelihoodLossGrad:
    return std::make_pair(fb::Attrs::LossAttrs,
                          fb::CreateLossAttrs(fbb, reduction(), i64("ignore_index"),
                                              attrs.contains("ignore_index"))
                              .Union());
  case fb::Opcode::ReduceSum:
  case fb::Opcode::ReduceMean: {
    auto axes = i64s("axes");
    return std::make_pair(fb::Attrs::ReduceAttrs,
                          fb::CreateReduceAttrs(fbb, axes, boolean("keepdims")).Union());
  }
  case fb::Opcode::Transpose: {
    auto perm = i64s("perm");
    return std::make_pair(fb::Attrs::PermAttrs, fb::CreatePermAttrs(fbb, perm).Union());
  }
  case fb::Opcode::Slice:
  case fb::Opcode::SliceGrad: {
    auto starts = i64s("starts");
    auto steps = i64s("steps");
    return std::make_pair(fb::Attrs::SliceAttrs,
                          fb::CreateSliceAttrs(fbb, starts, steps).Union());
  }
  case fb::Opcode::LayerNormalization:
  case fb::Opcode::LayerNormalizationGrad:
    return std::make_pair(fb::Attrs::LayerNormAttrs,
                          fb::CreateLayerNormAttrs(fbb, i64("axis"), f32("epsilon")).Union());
  case fb::Opcode::Conv:
  case fb::Opcode::ConvGradInput:
  case fb::Opcode::ConvGradWeight: {
    auto strides = i64s("strides"), pads = i64s("pads"), dilations = i64s("dilations");
    return std::make_pair(fb::Attrs::ConvAttrs,
                          fb::CreateConvAttrs(fbb, strides, pads, dilations, i64("group"))
                              .Union());
  }
  case fb::Opcode::MaxPool:
  case fb::Opcode::AveragePool:
  case fb::Opcode::MaxPoolGrad:
  case fb::Opcode::AveragePoolGrad: {
    auto kernel = i64s("kernel_shape"), strides = i64s("strides"), pads = i64s("pads");
    return std::make_pair(fb::Attrs::PoolAttrs,
                          fb::CreatePoolAttrs(fbb, kernel, strides, pads,
                                              boolean("count_include_pad"), boolean("ceil_mode"))
                              .Union());
  }
  case fb::Opcode::BatchNormalization:
  case fb::Opcode::BatchNormalizationGrad:
    return std::make_pair(fb::Attrs::BatchNormAttrs,
                          fb::CreateBatchNormAttrs(fbb, f32("epsilon"), f32("momentum")).Union());
  case fb::Opcode::Fill:
    return std::make_pair(fb::Attrs::FillAttrs, fb::CreateFillAttrs(fbb, f32("value")).Union());
  case fb::Opcode::SgdUpdate:
    return std::make_pair(
        fb::Attrs::SgdAttrs,
        fb::CreateSgdAttrs(fbb, f32("lr"), f32("momentum"), f32("weight_decay")).Union());
  case fb::Opcode::AdamWUpdate:
    return std::make_pair(fb::Attrs::AdamWAttrs,
                          fb::CreateAdamWAttrs(fbb, f32("lr"), f32("beta1"), f32("beta2"),
                                               f32("eps"), f32("weight_decay"))
                              .Union());
  case fb::Opcode::AllReduce:
  case fb::Opcode::ReduceScatter:
  case fb::Opcode::AllGather: {
    auto kind = opcode == fb::Opcode::AllGather ? fb::Reduction::Sum : reduction();
    return std::make_pair(fb::Attrs::CollectiveAttrs,
                          fb::CreateCollectiveAttrs(fbb, kind, static_cast<uint32_t>(i64("slot")),
                                                    static_cast<uint32_t>(i64("group")))
                              .Union());
  }
  case fb::Opcode::Wait:
    return std::make_pair(fb::Attrs::WaitAttrs,
                          fb::CreateWaitAttrs(fbb, static_cast<uint32_t>(i64("slot"))).Union());
  default:
    if (!attrs.empty())
      return op.emitOpError("opcode ") << op.getOpcode() << " takes no attributes";
    return none;
  }
}

mlir::FailureOr<flatbuffers::Offset<fb::Instruction>> Serializer::instruction(plan::InstrOp op) {
  auto opcode = parseOpcode(op.getOpcode());
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

  std::vector<flatbuffers::Offset<fb::Instruction>> instructions;
  std::vector<flatbuffers::Offset<fb::Initializer>> initializers;
  std::vector<flatbuffers::Offset<fb::Input>> inputs;
  std::vector<flatbuffers::Offset<fb::Parameter>> parameters;
  std::vector<flatbuffers::Offset<fb::Output>> outputs;
  std::optional<uint32_t> loss;
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> sourceModel;
  for (mlir::Operation &op : program.getBody().front()) {
    if (auto instr = llvm::dyn_cast<plan::InstrOp>(op)) {
      auto offset = instruction(instr);
      if (mlir::failed(offset))
        return failure();
      instructions.push_back(*offset);
    } else if (auto init = llvm::dyn_cast<plan::InitOp>(op)) {
      auto offset = initializer(init);
      if (mlir::failed(offset))
        return failure();
      initializers.push_back(*offset);
    } else if (auto input = llvm::dyn_cast<plan::InputOp>(op)) {
      auto index = indexOf(input.getValueAttr(), input);
      if (mlir::failed(index))
        return failure();
      inputs.push_back(fb::CreateInputDirect(fbb, input.getName().str().c_str(), *index));
    } else if (auto param = llvm::dyn_cast<plan::ParameterOp>(op)) {
      auto index = indexOf(param.getValueAttr(), param);
      if (mlir::failed(index))
        return failure();
      auto type = llvm::cast<mlir::RankedTensorType>(param.getType());
      std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
      parameters.push_back(fb::CreateParameterDirect(fbb, param.getName().str().c_str(), &shape,
                                                     *index, param.getSharded(),
                                                     param.getShardNumel(), param.getTrainable()));
    } else if (auto output = llvm::dyn_cast<plan::OutputOp>(op)) {
      auto index = indexOf(output.getValueAttr(), output);
      if (mlir::failed(index))
        return failure();
      outputs.push_back(fb::CreateOutputDirect(fbb, output.getName().str().c_str(), *index));
    } else if (auto lossOp = llvm::dyn_cast<plan::LossOp>(op)) {
      auto index = indexOf(lossOp.getValueAttr(), lossOp);
      if (mlir::failed(index))
        return failure();
      loss = *index;
    } else if (auto source = llvm::dyn_cast<plan::SourceModelOp>(op)) {
      std::vector<char> bytes = elementBytes(source.getBytes());
      sourceModel = fbb.CreateVector(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    }
  }
  if (!loss && outputs.empty())
    return program.emitOpError("has neither a plan.loss nor plan.outputs");

  fb::Backend backend = program.getBackend() == "cuda" ? fb::Backend::Cuda : fb::Backend::Cpu;
  auto root = fb::CreatePlan(
      fbb, kPlanFormatVersion, backend, program.getWorldSize(), program.getZeroStage(),
      static_cast<uint64_t>(*program.getArenaBytes()), fbb.CreateVector(values),
      fbb.CreateVector(instructions), fbb.CreateVector(initializers), fbb.CreateVector(inputs),
      fbb.CreateVector(parameters), loss.value_or(0), sourceModel, fbb.CreateVector(outputs),
      program.getWeightsOmitted());
  fb::FinishPlanBuffer(fbb, root);
  os.write(reinterpret_cast<const char *>(fbb.GetBufferPointer()), fbb.GetSize());
  return success();
}

mlir::LogicalResult serializePlan(plan::ProgramOp program, llvm::raw_ostream &os) {
  return Serializer(program).run(os);
}

} // namespace zero::codegen
