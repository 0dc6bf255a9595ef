//===- OnnxImporter.cpp - ONNX model to the onnx dialect ------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/OnnxModelLoader.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/Zero/ZeroDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <algorithm>

using namespace mlir;

namespace zero::frontend {

namespace {

constexpr int64_t kMinOpset = 13;
constexpr int64_t kMaxOpset = 17;

/// Operand positions that carry data (as opposed to shapes or axes that
/// shape inference and constant folding consume at compile time).
llvm::SmallVector<int> dataOperands(const ::onnx::NodeProto &node) {
  const std::string &op = node.op_type();
  if (op == "Reshape" || op == "Expand" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "ReduceSum" || op == "ReduceMean")
    return {0};
  llvm::SmallVector<int> all;
  for (int i = 0; i < node.input_size(); ++i)
    all.push_back(i);
  return all;
}

class Importer {
public:
  Importer(MLIRContext &context, const std::string &path, const ::onnx::ModelProto &model)
      : context(context), builder(&context), path(path), model(model),
        fileLoc(FileLineColLoc::get(&context, path, 0, 0)) {}

  OwningOpRef<ModuleOp> run();

private:
  InFlightDiagnostic error(Location loc) { return emitError(loc); }
  Location nodeLoc(const ::onnx::NodeProto &node) {
    std::string name = node.name().empty() ? node.op_type() : node.name();
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  InFlightDiagnostic nodeError(const ::onnx::NodeProto &node) {
    return error(nodeLoc(node)) << "node '" << node.name() << "' (" << node.op_type()
                                << ", opset " << opset << "): ";
  }

  LogicalResult checkOpset();
  FailureOr<RankedTensorType> convertType(const ::onnx::TypeProto &type, StringRef what);
  FailureOr<Type> convertElementType(int32_t dataType, StringRef what);
  FailureOr<DenseElementsAttr> convertTensor(const ::onnx::TensorProto &tensor, Location loc);
  LogicalResult importParameters(ModuleOp module);
  LogicalResult collectNeededNodes(const std::string &loss);
  LogicalResult importNode(const ::onnx::NodeProto &node);
  FailureOr<Value> lookup(const std::string &name, const ::onnx::NodeProto &node);
  FailureOr<RankedTensorType> outputType(const ::onnx::NodeProto &node, int index);
  FailureOr<SmallVector<int64_t>> constantInts(const std::string &name,
                                               const ::onnx::NodeProto &node);
  void storeSourceModel(ModuleOp module);

  MLIRContext &context;
  OpBuilder builder;
  std::string path;
  const ::onnx::ModelProto &model;
  Location fileLoc;
  int64_t opset = 0;

  llvm::StringMap<Value> values;
  llvm::StringMap<const ::onnx::TypeProto *> valueTypes;
  llvm::StringMap<const ::onnx::TensorProto *> constants; // initializers and Constant nodes
  llvm::StringMap<int> producer;                          // value name -> node index
  llvm::StringSet<> parameters;
  llvm::DenseSet<int> neededNodes;
  std::vector<std::unique_ptr<::onnx::TypeProto>> ownedTypes;
};

LogicalResult Importer::checkOpset() {
  for (const auto &import : model.opset_import())
    if (import.domain().empty() || import.domain() == "ai.onnx")
      opset = import.version();
  if (opset < kMinOpset || opset > kMaxOpset)
    return error(fileLoc) << "ONNX opset " << opset << " is not supported (supported: "
                          << kMinOpset << " to " << kMaxOpset << ")";
  return success();
}

FailureOr<Type> Importer::convertElementType(int32_t dataType, StringRef what) {
  switch (dataType) {
  case ::onnx::TensorProto::FLOAT:
    return Type(builder.getF32Type());
  case ::onnx::TensorProto::INT64:
    return Type(builder.getI64Type());
  default:
    return error(fileLoc) << what << " has element type "
                          << ::onnx::TensorProto::DataType_Name(
                                 static_cast<::onnx::TensorProto::DataType>(dataType))
                          << "; only FLOAT and INT64 are supported";
  }
}

FailureOr<RankedTensorType> Importer::convertType(const ::onnx::TypeProto &type, StringRef what) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape())
    return error(fileLoc) << what << " has no static tensor type";
  SmallVector<int64_t> shape;
  for (const auto &dim : type.tensor_type().shape().dim()) {
    if (!dim.has_dim_value() || dim.dim_value() < 0)
      return error(fileLoc) << what << " has a dynamic dimension"
                            << (dim.has_dim_param() ? " '" + dim.dim_param() + "'" : "")
                            << "; export with static shapes";
    shape.push_back(dim.dim_value());
  }
  auto elementType = convertElementType(type.tensor_type().elem_type(), what);
  if (failed(elementType))
    return failure();
  return RankedTensorType::get(shape, *elementType);
}

FailureOr<DenseElementsAttr> Importer::convertTensor(const ::onnx::TensorProto &tensor,
                                                     Location loc) {
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL)
    return error(loc) << "tensor '" << tensor.name()
                      << "' uses external data, which is not supported";
  auto elementType = convertElementType(tensor.data_type(), "tensor '" + tensor.name() + "'");
  if (failed(elementType))
    return failure();
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  auto type = RankedTensorType::get(shape, *elementType);
  size_t bytes = type.getNumElements() * (elementType->getIntOrFloatBitWidth() / 8);
  if (tensor.has_raw_data()) {
    if (tensor.raw_data().size() != bytes)
      return error(loc) << "tensor '" << tensor.name() << "' holds " << tensor.raw_data().size()
                        << " bytes, its type needs " << bytes;
    return DenseElementsAttr::getFromRawBuffer(
        type, ArrayRef<char>(tensor.raw_data().data(), tensor.raw_data().size()));
  }
  if (elementType->isF32() && tensor.float_data_size() == type.getNumElements())
    return DenseElementsAttr::get(type, ArrayRef<float>(tensor.float_data().data(),
                                                        tensor.float_data_size()));
  if (elementType->isInteger(64) && tensor.int64_data_size() == type.getNumElements())
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(tensor.int64_data().data(),
                                                          tensor.int64_data_size()));
  return error(loc) << "tensor '" << tensor.name() << "' has no data of its declared size";
}

LogicalResult Importer::importParameters(ModuleOp module) {
  builder.setInsertionPointToEnd(module.getBody());
  for (const auto &init : model.graph().initializer()) {
    if (init.data_type() != ::onnx::TensorProto::FLOAT) {
      constants[init.name()] = &init;
      continue;
    }
    if (init.data_location() == ::onnx::TensorProto::EXTERNAL)
      return error(fileLoc) << "initializer '" << init.name()
                            << "' uses external data, which is not supported";
    SmallVector<int64_t> shape(init.dims().begin(), init.dims().end());
    auto type = RankedTensorType::get(shape, builder.getF32Type());
    size_t bytes = type.getNumElements() * sizeof(float);
    // Weights go straight into a resource blob: one copy, never an attribute.
    AsmResourceBlob blob;
    if (init.has_raw_data() && init.raw_data().size() == bytes) {
      blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
          ArrayRef<char>(init.raw_data().data(), bytes), alignof(float));
    } else if (init.float_data_size() == type.getNumElements()) {
      blob = HeapAsmResourceBlob::allocateAndCopyInferAlign(
          ArrayRef<float>(init.float_data().data(), init.float_data_size()));
    } else {
      return error(fileLoc) << "initializer '" << init.name()
                            << "' has no data of its declared size";
    }
    auto value = DenseResourceElementsAttr::get(type, init.name(), std::move(blob));
    auto global = ml_program::GlobalOp::create(
        builder, NameLoc::get(builder.getStringAttr(init.name()), fileLoc),
        builder.getStringAttr(init.name()), TypeAttr::get(type), builder.getUnitAttr(), value,
        builder.getStringAttr("private"));
    (void)global;
    parameters.insert(init.name());
  }
  return success();
}

LogicalResult Importer::collectNeededNodes(const std::string &loss) {
  const auto &nodes = model.graph().node();
  for (int i = 0; i < nodes.size(); ++i)
    for (const auto &output : nodes[i].output())
      producer[output] = i;
  SmallVector<std::string> worklist{loss};
  while (!worklist.empty()) {
    std::string name = worklist.pop_back_val();
    auto it = producer.find(name);
    if (it == producer.end() || !neededNodes.insert(it->second).second)
      continue;
    const auto &node = nodes[it->second];
    for (int i : dataOperands(node))
      if (i < node.input_size() && !node.input(i).empty())
        worklist.push_back(node.input(i));
  }
  return success();
}

FailureOr<Value> Importer::lookup(const std::string &name, const ::onnx::NodeProto &node) {
  if (Value v = values.lookup(name))
    return v;
  if (parameters.contains(name)) {
    auto global = ml_program::GlobalLoadOp::create(
        builder, NameLoc::get(builder.getStringAttr(name), fileLoc),
        convertType(*valueTypes.lookup(name), name).value(),
        FlatSymbolRefAttr::get(&context, name));
    return values[name] = global.getResult();
  }
  if (const ::onnx::TensorProto *tensor = constants.lookup(name)) {
    auto attr = convertTensor(*tensor, nodeLoc(node));
    if (failed(attr))
      return failure();
    return values[name] = onnx::ConstantOp::create(builder, nodeLoc(node), *attr).getResult();
  }
  return nodeError(node) << "input '" << name << "' is not produced by any imported node";
}

FailureOr<RankedTensorType> Importer::outputType(const ::onnx::NodeProto &node, int index) {
  const std::string &name = node.output(index);
  const ::onnx::TypeProto *type = valueTypes.lookup(name);
  if (!type) {
    nodeError(node) << "ONNX shape inference found no static type for output '" << name << "'";
    return failure();
  }
  auto converted = convertType(*type, "output '" + name + "' of node '" + node.name() + "'");
  return converted;
}

FailureOr<SmallVector<int64_t>> Importer::constantInts(const std::string &name,
                                                       const ::onnx::NodeProto &node) {
  const ::onnx::TensorProto *tensor = constants.lookup(name);
  if (!tensor) {
    nodeError(node) << "'" << name << "' must be a compile-time constant";
    return failure();
  }
  auto attr = convertTensor(*tensor, nodeLoc(node));
  if (failed(attr))
    return failure();
  SmallVector<int64_t> result;
  for (APInt v : attr->getValues<APInt>())
    result.push_back(v.getSExtValue());
  return result;
}

LogicalResult Importer::importNode(const ::onnx::NodeProto &node) {
  Location loc = nodeLoc(node);
  const std::string &op = node.op_type();
  if (!node.domain().empty() && node.domain() != "ai.onnx")
    return nodeError(node) << "operator domain '" << node.domain() << "' is not supported";

  auto attrInt = [&](StringRef name, int64_t fallback) {
    for (const auto &a : node.attribute())
      if (a.name() == name)
        return static_cast<int64_t>(a.i());
    return fallback;
  };
  auto attrFloat = [&](StringRef name, float fallback) {
    for (const auto &a : node.attribute())
      if (a.name() == name)
        return a.f();
    return fallback;
  };
  auto attr = [&](StringRef name) -> const ::onnx::AttributeProto * {
    for (const auto &a : node.attribute())
      if (a.name() == name)
        return &a;
    return nullptr;
  };

  if (op == "Constant") {
    const ::onnx::AttributeProto *value = attr("value");
    if (!value || !value->has_t())
      return nodeError(node) << "only the 'value' form of Constant is supported";
    auto dense = convertTensor(value->t(), loc);
    if (failed(dense))
      return failure();
    values[node.output(0)] = onnx::ConstantOp::create(builder, loc, *dense).getResult();
    return success();
  }

  SmallVector<Value> inputs;
  for (int i : dataOperands(node)) {
    if (i >= node.input_size() || node.input(i).empty()) {
      inputs.push_back(Value());
      continue;
    }
    auto v = lookup(node.input(i), node);
    if (failed(v))
      return failure();
    inputs.push_back(*v);
  }
  auto result = outputType(node, 0);
  if (failed(result))
    return failure();
  Type resultType = *result;
  Value out;

  if (op == "Identity" || op == "Dropout") {
    out = inputs[0]; // Identity carries no computation; Dropout only at ratio 0.
    if (op == "Dropout" && node.input_size() > 1 && !node.input(1).empty()) {
      auto ratio = constants.lookup(node.input(1));
      auto value = ratio ? convertTensor(*ratio, loc) : FailureOr<DenseElementsAttr>(failure());
      if (failed(value) || !value->isSplat() || !value->getSplatValue<APFloat>().isZero())
        return nodeError(node) << "only Dropout with ratio 0 is supported";
    }
  } else if (op == "Add") {
    out = onnx::AddOp::create(builder, loc, resultType, inputs[0], inputs[1]);
  } else if (op == "Sub") {
    out = onnx::SubOp::create(builder, loc, resultType, inputs[0], inputs[1]);
  } else if (op == "Mul") {
    out = onnx::MulOp::create(builder, loc, resultType, inputs[0], inputs[1]);
  } else if (op == "Div") {
    out = onnx::DivOp::create(builder, loc, resultType, inputs[0], inputs[1]);
  } else if (op == "Pow") {
    Value exponent = inputs[1];
    auto baseType = cast<RankedTensorType>(inputs[0].getType());
    auto expType = cast<RankedTensorType>(exponent.getType());
    if (expType.getElementType() != baseType.getElementType())
      exponent = onnx::CastOp::create(
          builder, loc, expType.clone(baseType.getElementType()), exponent);
    out = onnx::PowOp::create(builder, loc, resultType, inputs[0], exponent);
  } else if (op == "Neg") {
    out = onnx::NegOp::create(builder, loc, inputs[0]);
  } else if (op == "Sqrt") {
    out = onnx::SqrtOp::create(builder, loc, inputs[0]);
  } else if (op == "Relu") {
    out = onnx::ReluOp::create(builder, loc, inputs[0]);
  } else if (op == "Tanh") {
    out = onnx::TanhOp::create(builder, loc, inputs[0]);
  } else if (op == "Sigmoid") {
    out = onnx::SigmoidOp::create(builder, loc, inputs[0]);
  } else if (op == "Erf") {
    out = onnx::ErfOp::create(builder, loc, inputs[0]);
  } else if (op == "Exp") {
    out = onnx::ExpOp::create(builder, loc, inputs[0]);
  } else if (op == "Log") {
    out = onnx::LogOp::create(builder, loc, inputs[0]);
  } else if (op == "Cast") {
    out = resultType == inputs[0].getType()
              ? inputs[0]
              : onnx::CastOp::create(builder, loc, resultType, inputs[0]).getResult();
  } else if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
    out = resultType == inputs[0].getType()
              ? inputs[0]
              : onnx::ReshapeOp::create(builder, loc, resultType, inputs[0]).getResult();
  } else if (op == "Expand") {
    out = onnx::ExpandOp::create(builder, loc, resultType, inputs[0]);
  } else if (op == "Transpose") {
    SmallVector<int64_t> perm;
    if (const ::onnx::AttributeProto *p = attr("perm")) {
      perm.assign(p->ints().begin(), p->ints().end());
    } else {
      int64_t rank = cast<RankedTensorType>(inputs[0].getType()).getRank();
      for (int64_t i = rank - 1; i >= 0; --i)
        perm.push_back(i);
    }
    out = onnx::TransposeOp::create(builder, loc, resultType, inputs[0],
                                    builder.getDenseI64ArrayAttr(perm));
  } else if (op == "Gemm") {
    out = onnx::GemmOp::create(builder, loc, resultType, inputs[0], inputs[1],
                               inputs.size() > 2 ? inputs[2] : Value(),
                               builder.getF32FloatAttr(attrFloat("alpha", 1.0f)),
                               builder.getF32FloatAttr(attrFloat("beta", 1.0f)),
                               builder.getBoolAttr(attrInt("transA", 0)),
                               builder.getBoolAttr(attrInt("transB", 0)));
  } else if (op == "MatMul") {
    out = onnx::MatMulOp::create(builder, loc, resultType, inputs[0], inputs[1]);
  } else if (op == "Softmax" || op == "LogSoftmax") {
    auto axis = builder.getI64IntegerAttr(attrInt("axis", -1));
    out = op == "Softmax" ? onnx::SoftmaxOp::create(builder, loc, inputs[0], axis).getResult()
                          : onnx::LogSoftmaxOp::create(builder, loc, inputs[0], axis).getResult();
  } else if (op == "SoftmaxCrossEntropyLoss" || op == "NegativeLogLikelihoodLoss") {
    if (inputs.size() > 2 && inputs[2])
      return nodeError(node) << "class weights are not supported";
    std::string reduction = "mean";
    if (const ::onnx::AttributeProto *r = attr("reduction"))
      reduction = r->s();
    IntegerAttr ignoreIndex;
    if (const ::onnx::AttributeProto *i = attr("ignore_index"))
      ignoreIndex = builder.getI64IntegerAttr(i->i());
    auto reductionAttr = builder.getStringAttr(reduction);
    if (op == "SoftmaxCrossEntropyLoss") {
      SmallVector<Type> types{resultType};
      if (node.output_size() > 1 && !node.output(1).empty()) {
        auto logProb = outputType(node, 1);
        if (failed(logProb))
          return failure();
        types.push_back(*logProb);
      }
      auto loss = onnx::SoftmaxCrossEntropyLossOp::create(builder, loc, types, inputs[0],
                                                          inputs[1], reductionAttr, ignoreIndex);
      if (types.size() > 1)
        values[node.output(1)] = loss.getLogProb();
      out = loss.getLoss();
    } else {
      out = onnx::NegativeLogLikelihoodLossOp::create(builder, loc, resultType, inputs[0],
                                                      inputs[1], reductionAttr, ignoreIndex);
    }
  } else if (op == "ReduceSum" || op == "ReduceMean") {
    SmallVector<int64_t> axes;
    bool axesFromInput = op == "ReduceSum"; // opset 13+: ReduceSum's axes is an input
    if (axesFromInput && node.input_size() > 1 && !node.input(1).empty()) {
      auto ints = constantInts(node.input(1), node);
      if (failed(ints))
        return failure();
      axes = *ints;
    } else if (const ::onnx::AttributeProto *a = attr("axes")) {
      axes.assign(a->ints().begin(), a->ints().end());
    }
    if (axes.empty() && attrInt("noop_with_empty_axes", 0)) {
      out = inputs[0];
    } else {
      auto axesAttr = builder.getDenseI64ArrayAttr(axes);
      auto keepdims = builder.getBoolAttr(attrInt("keepdims", 1));
      out = op == "ReduceSum"
                ? onnx::ReduceSumOp::create(builder, loc, resultType, inputs[0], axesAttr, keepdims)
                      .getResult()
                : onnx::ReduceMeanOp::create(builder, loc, resultType, inputs[0], axesAttr,
                                             keepdims)
                      .getResult();
    }
  } else {
    return nodeError(node) << "unsupported operator '" << op << "'";
  }

  if (out.getType() != resultType)
    return nodeError(node) << "imported type " << out.getType()
                           << " differs from the inferred type " << resultType;
  values[node.output(0)] = out;
  return success();
}

void Importer::storeSourceModel(ModuleOp module) {
  // Keep the graph without its trainable weights so a launcher can write the
  // trained model back; weights are re-added from the plan's parameters.
  ::onnx::ModelProto stripped = model;
  auto *inits = stripped.mutable_graph()->mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(),
                              [&](const ::onnx::TensorProto &t) {
                                return parameters.contains(t.name());
                              }),
               inits->end());
  stripped.mutable_graph()->clear_value_info();
  std::string bytes = stripped.SerializeAsString();
  auto type = RankedTensorType::get({static_cast<int64_t>(bytes.size())}, builder.getI8Type());
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(bytes.data(), bytes.size()), 1);
  module->setAttr("zero.source_model",
                  DenseResourceElementsAttr::get(type, "source_model", std::move(blob)));
}

OwningOpRef<ModuleOp> Importer::run() {
  if (failed(checkOpset()))
    return nullptr;
  const ::onnx::GraphProto &graph = model.graph();
  for (const auto &info : graph.input())
    valueTypes[info.name()] = &info.type();
  for (const auto &info : graph.value_info())
    valueTypes[info.name()] = &info.type();
  for (const auto &info : graph.output())
    valueTypes[info.name()] = &info.type();
  for (const auto &init : graph.initializer())
    if (!valueTypes.count(init.name())) {
      // Initializers need not be graph inputs; synthesize their type.
      auto *type = new ::onnx::TypeProto();
      ownedTypes.emplace_back(type);
      type->mutable_tensor_type()->set_elem_type(init.data_type());
      for (int64_t d : init.dims())
        type->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
      valueTypes[init.name()] = type;
    }
  for (const auto &node : graph.node())
    if (node.op_type() == "Constant")
      for (const auto &a : node.attribute())
        if (a.name() == "value" && a.has_t())
          constants[node.output(0)] = &a.t();

  if (graph.output_size() == 0)
    return error(fileLoc) << "the graph has no outputs; its first output must be the loss",
           nullptr;
  const std::string &lossName = graph.output(0).name();

  OwningOpRef<ModuleOp> module = ModuleOp::create(fileLoc);
  if (failed(importParameters(*module)))
    return nullptr;
  storeSourceModel(*module);

  // The training inputs: graph inputs that are not initializers.
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  for (const auto &input : graph.input()) {
    if (parameters.contains(input.name()) || constants.count(input.name()))
      continue;
    auto type = convertType(input.type(), "input '" + input.name() + "'");
    if (failed(type))
      return nullptr;
    argTypes.push_back(*type);
    argNames.push_back(input.name());
  }
  auto lossType = convertType(graph.output(0).type(), "output '" + lossName + "'");
  if (failed(lossType))
    return nullptr;
  if (lossType->getRank() != 0 || !lossType->getElementType().isF32())
    return error(fileLoc) << "the first graph output '" << lossName
                          << "' must be a scalar float loss, got " << *lossType,
           nullptr;

  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, fileLoc, "main",
                                   builder.getFunctionType(argTypes, {*lossType}));
  Block *entry = func.addEntryBlock();
  for (auto [i, name] : llvm::enumerate(argNames)) {
    func.setArgAttr(i, "zero.input", builder.getStringAttr(name));
    values[name] = entry->getArgument(i);
  }
  builder.setInsertionPointToStart(entry);

  if (failed(collectNeededNodes(lossName)))
    return nullptr;
  for (int i = 0; i < graph.node_size(); ++i)
    if (neededNodes.contains(i) && failed(importNode(graph.node(i))))
      return nullptr;

  Value loss = values.lookup(lossName);
  if (!loss)
    return error(fileLoc) << "the loss '" << lossName << "' is not computed by the graph",
           nullptr;
  func::ReturnOp::create(builder, fileLoc, loss);
  if (failed(module->verify()))
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &context, const std::string &path) {
  context.loadDialect<onnx::OnnxDialect, ZeroDialect, func::FuncDialect,
                      ml_program::MLProgramDialect>();
  ::onnx::ModelProto model;
  std::string message;
  if (!loadOnnxModel(path, model, message)) {
    emitError(FileLineColLoc::get(&context, path, 0, 0)) << message;
    return nullptr;
  }
  return Importer(context, path, model).run();
}

} // namespace zero::frontend
