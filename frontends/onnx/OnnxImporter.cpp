//===- OnnxImporter.cpp - ONNX model to the onnx dialect ------------------===//
//
// The driver: the graph's inputs and outputs become @main's signature, the
// nodes the outputs need are imported in order (OnnxHandlers.cpp), and
// values are looked up where they come from.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/GraphImporter.h"
#include "frontends/onnx/OnnxModelLoader.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/Zero/ZeroDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>

using namespace mlir;

namespace zero::frontend {

llvm::SmallVector<int> dataOperands(const ::onnx::NodeProto &node) {
  const std::string &op = node.op_type();
  if (op == "Reshape" || op == "Expand" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "ReduceSum" || op == "ReduceMean" || op == "Slice" || op == "Split" ||
      op == "Dropout" || op == "Clip" || op == "CumSum" || op == "Tile" || op == "Trilu")
    return {0};
  // Their pads, constant values, axes, roi, scales and sizes fold at import.
  if (op == "Pad" || op == "Resize" || op == "Upsample")
    return {0};
  if (op == "ConstantOfShape")
    return {};
  // The recurrent ops' sequence_lens (INT32) is checked at compile time.
  if (op == "LSTM" || op == "GRU" || op == "RNN")
    return {0, 1, 2, 3, 5, 6, 7};
  llvm::SmallVector<int> all;
  for (int i = 0; i < node.input_size(); ++i)
    all.push_back(i);
  return all;
}

bool GraphImporter::isRead(const std::string &name) const {
  for (const ::onnx::NodeProto &node : model.graph().node())
    if (llvm::is_contained(node.input(), name))
      return true;
  return llvm::any_of(model.graph().output(),
                      [&](const ::onnx::ValueInfoProto &output) { return output.name() == name; });
}

GraphImporter::GraphImporter(MLIRContext &context, const std::string &path,
                             const ::onnx::ModelProto &model, const ExternalData &external,
                             bool forwardOnly)
    : builder(&context), context(context), path(path), model(model), external(external),
      forwardOnly(forwardOnly),
      fileLoc(FileLineColLoc::get(&context, path, 0, 0)) {}

Location GraphImporter::nodeLoc(const ::onnx::NodeProto &node) {
  std::string name = node.name().empty() ? node.op_type() : node.name();
  return NameLoc::get(builder.getStringAttr(name), fileLoc);
}

InFlightDiagnostic GraphImporter::nodeError(const ::onnx::NodeProto &node) {
  return emitError(nodeLoc(node)) << describeNode(node, opset) << ": ";
}

FailureOr<Type> GraphImporter::convertElementType(int32_t dataType, StringRef what) {
  switch (dataType) {
  case ::onnx::TensorProto::FLOAT:
    return Type(builder.getF32Type());
  case ::onnx::TensorProto::INT64:
  case ::onnx::TensorProto::BOOL: // conditions and masks: 0 or 1
    return Type(builder.getI64Type());
  default:
    return emitError(fileLoc) << what << " has element type "
                              << ::onnx::TensorProto::DataType_Name(
                                     static_cast<::onnx::TensorProto::DataType>(dataType))
                              << "; only FLOAT and INT64 are supported";
  }
}

FailureOr<RankedTensorType> GraphImporter::convertType(const ::onnx::TypeProto &type,
                                                       StringRef what) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape())
    return emitError(fileLoc) << what << " has no static tensor type";
  SmallVector<int64_t> shape;
  for (const auto &dim : type.tensor_type().shape().dim()) {
    if (!dim.has_dim_value() || dim.dim_value() < 0)
      return emitError(fileLoc) << what << " has a dynamic dimension"
                                << (dim.has_dim_param() ? " '" + dim.dim_param() + "'" : "")
                                << "; export with static shapes";
    shape.push_back(dim.dim_value());
  }
  // Zero-size tensors and sizes past what a byte offset can address are
  // rejected here, before any arithmetic on them.
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d == 0)
      return emitError(fileLoc) << what << " has a zero-size dimension, which is not supported";
    if (llvm::MulOverflow(elements, d, elements) || elements > (int64_t(1) << 40))
      return emitError(fileLoc) << what << " has more than 2^40 elements";
  }
  auto elementType = convertElementType(type.tensor_type().elem_type(), what);
  if (failed(elementType))
    return failure();
  return RankedTensorType::get(shape, *elementType);
}

std::optional<StringRef> GraphImporter::rawData(const ::onnx::TensorProto &tensor) const {
  if (tensor.data_location() == ::onnx::TensorProto::EXTERNAL) {
    // The loader loaded every external tensor it did not map into the model.
    const ExternalData::Bytes *bytes = external.find(tensor.name());
    return bytes ? std::optional<StringRef>(StringRef(bytes->data, bytes->size)) : std::nullopt;
  }
  if (tensor.has_raw_data())
    return StringRef(tensor.raw_data());
  return std::nullopt;
}

FailureOr<DenseElementsAttr> GraphImporter::convertTensor(const ::onnx::TensorProto &tensor,
                                                          Location loc) {
  auto elementType = convertElementType(tensor.data_type(), "tensor '" + tensor.name() + "'");
  if (failed(elementType))
    return failure();
  SmallVector<int64_t> shape(tensor.dims().begin(), tensor.dims().end());
  auto type = RankedTensorType::get(shape, *elementType);
  if (tensor.data_type() == ::onnx::TensorProto::BOOL) {
    SmallVector<int64_t> values;
    if (tensor.has_raw_data())
      for (char c : tensor.raw_data())
        values.push_back(c != 0);
    else
      for (int32_t v : tensor.int32_data())
        values.push_back(v != 0);
    if (static_cast<int64_t>(values.size()) != type.getNumElements())
      return emitError(loc) << "tensor '" << tensor.name()
                            << "' has no data of its declared size";
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(values));
  }
  size_t bytes = type.getNumElements() * (elementType->getIntOrFloatBitWidth() / 8);
  if (std::optional<StringRef> raw = rawData(tensor)) {
    if (raw->size() != bytes)
      return emitError(loc) << "tensor '" << tensor.name() << "' holds " << raw->size()
                            << " bytes, its type needs " << bytes;
    return DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(raw->data(), raw->size()));
  }
  if (elementType->isF32() && tensor.float_data_size() == type.getNumElements())
    return DenseElementsAttr::get(type, ArrayRef<float>(tensor.float_data().data(),
                                                        tensor.float_data_size()));
  if (elementType->isInteger(64) && tensor.int64_data_size() == type.getNumElements())
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(tensor.int64_data().data(),
                                                          tensor.int64_data_size()));
  return emitError(loc) << "tensor '" << tensor.name() << "' has no data of its declared size";
}

void GraphImporter::collectNeededNodes(const std::string &output) {
  const auto &nodes = model.graph().node();
  SmallVector<std::string> worklist{output};
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
}

FailureOr<Value> GraphImporter::lookup(const std::string &name, const ::onnx::NodeProto *node) {
  Location loc = node ? nodeLoc(*node) : fileLoc;
  if (Value v = values.lookup(name))
    return v;
  if (auto it = parameters.find(name); it != parameters.end()) {
    auto global = ml_program::GlobalLoadOp::create(
        builder, NameLoc::get(builder.getStringAttr(name), fileLoc), it->second,
        FlatSymbolRefAttr::get(&context, name));
    return values[name] = global.getResult();
  }
  if (const ::onnx::TensorProto *tensor = constants.lookup(name)) {
    auto attr = convertTensor(*tensor, loc);
    if (failed(attr))
      return failure();
    return values[name] = onnx::ConstantOp::create(builder, loc, *attr).getResult();
  }
  if (std::optional<IntTensor> tensor = evaluate(name))
    return values[name] = materialize(*tensor, loc);
  if (!node)
    return emitError(fileLoc) << "graph output '" << name << "' is not computed by the graph";
  return nodeError(*node) << "input '" << name << "' is not produced by any imported node";
}

FailureOr<SmallVector<Value>> GraphImporter::dataInputs(const ::onnx::NodeProto &node) {
  SmallVector<Value> inputs;
  for (int i : dataOperands(node)) {
    if (i >= node.input_size() || node.input(i).empty()) {
      inputs.push_back(Value());
      continue;
    }
    auto v = lookup(node.input(i), &node);
    if (failed(v))
      return failure();
    inputs.push_back(*v);
  }
  return inputs;
}

namespace {

/// Whether ONNX inference found a tensor type with every dimension known.
bool isStatic(const ::onnx::TypeProto *type) {
  return type && type->has_tensor_type() && type->tensor_type().has_shape() &&
         llvm::all_of(
             type->tensor_type().shape().dim(),
             [](const ::onnx::TensorShapeProto_Dimension &d) { return d.has_dim_value(); });
}

} // namespace

const ::onnx::TypeProto *GraphImporter::reinferOutputType(const ::onnx::NodeProto &node,
                                                          int index) {
  std::vector<NodeInput> inputs(node.input_size());
  std::vector<std::unique_ptr<::onnx::TypeProto>> types;
  std::vector<std::unique_ptr<::onnx::TensorProto>> data;
  auto staticType = [&](int32_t elementType, ArrayRef<int64_t> shape) {
    auto type = std::make_unique<::onnx::TypeProto>();
    type->mutable_tensor_type()->set_elem_type(elementType);
    auto *dims = type->mutable_tensor_type()->mutable_shape();
    for (int64_t d : shape)
      dims->add_dim()->set_dim_value(d);
    types.push_back(std::move(type));
    return types.back().get();
  };
  for (int i = 0; i < node.input_size(); ++i) {
    const std::string &name = node.input(i);
    if (name.empty())
      continue;
    const ::onnx::TypeProto *onnxType = valueTypes.lookup(name);
    if (const ::onnx::TensorProto *constant = constants.lookup(name)) {
      inputs[i] = {onnxType, constant};
      continue;
    }
    std::optional<IntTensor> ints = evaluate(name);
    std::optional<SmallVector<float>> floats = ints ? std::nullopt : knownFloats(name);
    if (ints || floats) {
      auto tensor = std::make_unique<::onnx::TensorProto>();
      SmallVector<int64_t> shape =
          ints ? ints->shape : SmallVector<int64_t>{static_cast<int64_t>(floats->size())};
      for (int64_t d : shape)
        tensor->add_dims(d);
      tensor->set_data_type(ints ? ::onnx::TensorProto::INT64 : ::onnx::TensorProto::FLOAT);
      if (ints)
        tensor->mutable_int64_data()->Add(ints->values.begin(), ints->values.end());
      else
        tensor->mutable_float_data()->Add(floats->begin(), floats->end());
      inputs[i] = {staticType(tensor->data_type(), shape), tensor.get()};
      data.push_back(std::move(tensor));
      continue;
    }
    RankedTensorType type;
    if (Value v = values.lookup(name))
      type = dyn_cast<RankedTensorType>(v.getType());
    else if (auto it = parameters.find(name); it != parameters.end())
      type = it->second;
    if (!type || !type.hasStaticShape())
      return nullptr;
    int32_t elementType = onnxType && onnxType->has_tensor_type()
                              ? onnxType->tensor_type().elem_type()
                              : (type.getElementType().isF32() ? ::onnx::TensorProto::FLOAT
                                                               : ::onnx::TensorProto::INT64);
    inputs[i] = {staticType(elementType, type.getShape()), nullptr};
  }
  std::vector<::onnx::TypeProto> outputs = inferNodeTypes(node, opset, inputs);
  if (index >= static_cast<int>(outputs.size()) || !isStatic(&outputs[index]))
    return nullptr;
  ownedTypes.push_back(std::make_unique<::onnx::TypeProto>(std::move(outputs[index])));
  return valueTypes[node.output(index)] = ownedTypes.back().get();
}

std::optional<SmallVector<float>> GraphImporter::knownFloats(const std::string &name) {
  if (const ::onnx::TensorProto *tensor = constants.lookup(name)) {
    if (tensor->data_type() != ::onnx::TensorProto::FLOAT)
      return std::nullopt;
    auto value = convertTensor(*tensor, fileLoc);
    if (failed(value))
      return std::nullopt;
    SmallVector<float> values;
    for (const APFloat &f : value->getValues<APFloat>())
      values.push_back(f.convertToFloat());
    return values;
  }
  auto it = producer.find(name);
  if (it == producer.end() || model.graph().node(it->second).op_type() != "Concat")
    return std::nullopt;
  SmallVector<float> values;
  for (const std::string &part : model.graph().node(it->second).input()) {
    std::optional<SmallVector<float>> partValues = knownFloats(part);
    if (!partValues)
      return std::nullopt;
    values.append(*partValues);
  }
  return values;
}

FailureOr<RankedTensorType> GraphImporter::outputType(const ::onnx::NodeProto &node,
                                                      int index) {
  const std::string &name = node.output(index);
  const ::onnx::TypeProto *type = valueTypes.lookup(name);
  if (!isStatic(type))
    if (const ::onnx::TypeProto *reinferred = reinferOutputType(node, index))
      type = reinferred;
  if (!type) {
    nodeError(node) << "ONNX shape inference found no static type for output '" << name << "'";
    return failure();
  }
  return convertType(*type, "output '" + name + "' of node '" + node.name() + "'");
}

bool GraphImporter::hasOutput(const ::onnx::NodeProto &node, int index) {
  return index < node.output_size() && !node.output(index).empty();
}

void GraphImporter::setOutput(const ::onnx::NodeProto &node, int index, Value value) {
  if (hasOutput(node, index))
    values[node.output(index)] = value;
}

LogicalResult GraphImporter::setResult(const ::onnx::NodeProto &node, Value value,
                                       Type inferred) {
  if (value.getType() != inferred)
    return nodeError(node) << "imported type " << value.getType()
                           << " differs from the inferred type " << inferred;
  values[node.output(0)] = value;
  return success();
}

FailureOr<SmallVector<int64_t>> GraphImporter::constantInts(const std::string &name,
                                                            const ::onnx::NodeProto &node) {
  std::optional<IntTensor> tensor = evaluate(name);
  if (!tensor) {
    nodeError(node) << "'" << name << "' must be a compile-time constant";
    return failure();
  }
  return tensor->values;
}

std::optional<SmallVector<int64_t>> GraphImporter::knownInts(const std::string &name) {
  std::optional<IntTensor> tensor = evaluate(name);
  if (!tensor)
    return std::nullopt;
  return tensor->values;
}

Value GraphImporter::materialize(const IntTensor &tensor, Location loc) {
  auto type = RankedTensorType::get(tensor.shape, builder.getI64Type());
  return onnx::ConstantOp::create(builder, loc,
                                  DenseElementsAttr::get(type, ArrayRef<int64_t>(tensor.values)));
}

void GraphImporter::storeSourceModel(ModuleOp module) {
  // Keep the graph without its trainable weights so a launcher can write the
  // trained model back; weights are re-added from the plan's parameters.
  ::onnx::ModelProto stripped = model;
  auto *inits = stripped.mutable_graph()->mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(),
                              [&](const ::onnx::TensorProto &t) {
                                return parameters.contains(t.name());
                              }),
               inits->end());
  // The stored model stands alone: the constants left mapped move into it.
  for (::onnx::TensorProto &init : *inits) {
    if (init.data_location() != ::onnx::TensorProto::EXTERNAL)
      continue;
    std::optional<StringRef> raw = rawData(init);
    init.set_raw_data(raw ? raw->str() : std::string());
    init.clear_external_data();
    init.clear_data_location();
  }
  stripped.mutable_graph()->clear_value_info();
  std::string bytes = stripped.SerializeAsString();
  auto type = RankedTensorType::get({static_cast<int64_t>(bytes.size())}, builder.getI8Type());
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(bytes.data(), bytes.size()), 1);
  module->setAttr("zero.source_model",
                  DenseResourceElementsAttr::get(type, "source_model", std::move(blob)));
}

OwningOpRef<ModuleOp> GraphImporter::run() {
  opset = onnxOpset(model); // the loader checked it is supported
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
      type->mutable_tensor_type()->mutable_shape(); // a scalar has a shape too
      for (int64_t d : init.dims())
        type->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
      valueTypes[init.name()] = type;
    }
  for (const auto &node : graph.node()) {
    if (node.op_type() != "Constant")
      continue;
    auto value = tensorAttr(node, "value");
    if (failed(value))
      return nullptr;
    if (*value)
      constants[node.output(0)] = *value;
  }
  for (int i = 0; i < graph.node_size(); ++i)
    for (const auto &output : graph.node(i).output())
      if (!output.empty()) // a left-out optional output
        producer[output] = i;

  if (graph.output_size() == 0) // the loader rejects these; the loss is output 0
    return emitError(fileLoc) << "the graph has no outputs; its first output must be the loss",
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
  // Training returns the loss; a forward-only import returns every output.
  SmallVector<std::string> outputNames{lossName};
  if (forwardOnly)
    for (const auto &output : llvm::drop_begin(graph.output()))
      outputNames.push_back(output.name());
  SmallVector<Type> resultTypes;
  for (const auto &output : graph.output()) {
    if (resultTypes.size() == outputNames.size())
      break;
    auto type = convertType(output.type(), "output '" + output.name() + "'");
    if (failed(type))
      return nullptr;
    resultTypes.push_back(*type);
  }
  auto lossType = cast<RankedTensorType>(resultTypes[0]);
  if (!forwardOnly && (lossType.getRank() != 0 || !lossType.getElementType().isF32()))
    return emitError(fileLoc) << "the first graph output '" << lossName
                              << "' must be a scalar float loss, got " << resultTypes[0],
           nullptr;

  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, fileLoc, "main",
                                   builder.getFunctionType(argTypes, resultTypes));
  Block *entry = func.addEntryBlock();
  for (auto [i, name] : llvm::enumerate(argNames)) {
    func.setArgAttr(i, "zero.input", builder.getStringAttr(name));
    values[name] = entry->getArgument(i);
  }
  for (auto [i, name] : llvm::enumerate(outputNames))
    func.setResultAttr(i, "zero.output", builder.getStringAttr(name));
  builder.setInsertionPointToStart(entry);

  for (const std::string &name : outputNames)
    collectNeededNodes(name);
  for (int i = 0; i < graph.node_size(); ++i)
    if (neededNodes.contains(i) && failed(importNode(graph.node(i))))
      return nullptr;

  SmallVector<Value> results;
  for (const std::string &name : outputNames) {
    auto value = lookup(name, nullptr); // an output may be an input or initializer
    if (failed(value))
      return nullptr;
    results.push_back(*value);
  }
  func::ReturnOp::create(builder, fileLoc, results);
  if (failed(module->verify()))
    return nullptr;
  return module;
}

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &context, const std::string &path,
                                      bool forwardOnly) {
  context.loadDialect<onnx::OnnxDialect, ZeroDialect, func::FuncDialect,
                      ml_program::MLProgramDialect>();
  ::onnx::ModelProto model;
  ExternalData external;
  std::string message;
  if (!loadOnnxModel(path, model, external, message)) {
    emitError(FileLineColLoc::get(&context, path, 0, 0)) << message;
    return nullptr;
  }
  return GraphImporter(context, path, model, external, forwardOnly).run();
}

} // namespace zero::frontend
