//===- OnnxImporter.cpp - ONNX model to the onnx dialect ------------------===//

#include "frontends/onnx/OnnxImporter.h"
#include "frontends/onnx/OnnxModelLoader.h"
#include "frontends/onnx/SupportedOps.h"
#include "zero/plan_ops.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/ShapeUtils.h"
#include "dialects/Zero/ZeroDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/ADT/StringSet.h"

#include <algorithm>
#include <cmath>

using zero::kModelStateAttr;

using namespace mlir;

namespace zero::frontend {

namespace {

using AttrType = ::onnx::AttributeProto::AttributeType;

/// Operand positions that carry data (as opposed to shapes or axes that
/// shape inference and constant folding consume at compile time).
llvm::SmallVector<int> dataOperands(const ::onnx::NodeProto &node) {
  const std::string &op = node.op_type();
  if (op == "Reshape" || op == "Expand" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "ReduceSum" || op == "ReduceMean" || op == "Slice" || op == "Split" ||
      op == "Dropout")
    return {0};
  llvm::SmallVector<int> all;
  for (int i = 0; i < node.input_size(); ++i)
    all.push_back(i);
  return all;
}

/// Folding builds shapes, indices and masks, not data: a larger result is
/// left to the plan (or rejected there) instead of being built here.
constexpr int64_t kMaxFoldedElements = int64_t(1) << 24;

/// An int64 tensor known at compile time (shapes, indices, masks).
struct IntTensor {
  SmallVector<int64_t> shape;
  SmallVector<int64_t> values;
};

class Importer {
public:
  Importer(MLIRContext &context, const std::string &path, const ::onnx::ModelProto &model,
           bool forwardOnly)
      : context(context), builder(&context), path(path), model(model), forwardOnly(forwardOnly),
        fileLoc(FileLineColLoc::get(&context, path, 0, 0)) {}

  OwningOpRef<ModuleOp> run();

private:
  InFlightDiagnostic error(Location loc) { return emitError(loc); }
  Location nodeLoc(const ::onnx::NodeProto &node) {
    std::string name = node.name().empty() ? node.op_type() : node.name();
    return NameLoc::get(builder.getStringAttr(name), fileLoc);
  }
  InFlightDiagnostic nodeError(const ::onnx::NodeProto &node) {
    return error(nodeLoc(node)) << describeNode(node, opset) << ": ";
  }

  /// Reads attributes, each of the type its op's entry in SupportedOps
  /// lists; a mismatch is an error naming node, attribute and both types.
  /// The loader has checked every attribute against that table already;
  /// these keep the importer from reading one any other way.
  FailureOr<const ::onnx::AttributeProto *> attribute(const ::onnx::NodeProto &node,
                                                      StringRef name, AttrType type);
  FailureOr<int64_t> intAttr(const ::onnx::NodeProto &node, StringRef name, int64_t fallback);
  FailureOr<float> floatAttr(const ::onnx::NodeProto &node, StringRef name, float fallback);
  FailureOr<std::string> stringAttr(const ::onnx::NodeProto &node, StringRef name,
                                    StringRef fallback);
  FailureOr<SmallVector<int64_t>> intsAttr(const ::onnx::NodeProto &node, StringRef name,
                                           ArrayRef<int64_t> fallback = {});

  FailureOr<RankedTensorType> convertType(const ::onnx::TypeProto &type, StringRef what);
  FailureOr<Type> convertElementType(int32_t dataType, StringRef what);
  FailureOr<DenseElementsAttr> convertTensor(const ::onnx::TensorProto &tensor, Location loc);
  LogicalResult importParameters(ModuleOp module);
  LogicalResult collectNeededNodes(const std::string &loss);
  LogicalResult importNode(const ::onnx::NodeProto &node);
  LogicalResult importSplit(const ::onnx::NodeProto &node);
  LogicalResult importSlice(const ::onnx::NodeProto &node);
  LogicalResult importBatchNormalization(const ::onnx::NodeProto &node);
  /// 2-D window attributes with ONNX's defaults; fails on what zero does not
  /// model (auto_pad, storage_order).
  LogicalResult windowAttributes(const ::onnx::NodeProto &node, SmallVector<int64_t> &kernel,
                                 SmallVector<int64_t> &strides, SmallVector<int64_t> &pads,
                                 SmallVector<int64_t> &dilations);
  /// Evaluates an int64 value computed from constants and static shapes
  /// (Shape, Gather, Concat, arithmetic, Range, ...); nullopt if it is not
  /// a compile-time constant.
  std::optional<IntTensor> evaluate(const std::string &name, int depth = 0);
  std::optional<IntTensor> evaluateNode(const ::onnx::NodeProto &node, int depth);
  Value materialize(const IntTensor &tensor, Location loc);
  FailureOr<Value> lookup(const std::string &name, const ::onnx::NodeProto *node);
  FailureOr<RankedTensorType> outputType(const ::onnx::NodeProto &node, int index);
  FailureOr<SmallVector<int64_t>> constantInts(const std::string &name,
                                               const ::onnx::NodeProto &node);
  void storeSourceModel(ModuleOp module);

  MLIRContext &context;
  OpBuilder builder;
  std::string path;
  const ::onnx::ModelProto &model;
  bool forwardOnly;
  Location fileLoc;
  int64_t opset = 0;

  llvm::StringMap<Value> values;
  llvm::StringMap<const ::onnx::TypeProto *> valueTypes;
  llvm::StringMap<const ::onnx::TensorProto *> constants; // initializers and Constant nodes
  llvm::StringMap<int> producer;                          // value name -> node index
  llvm::StringMap<RankedTensorType> parameters;
  llvm::DenseSet<int> neededNodes;
  llvm::StringMap<IntTensor> evaluated;
  std::vector<std::unique_ptr<::onnx::TypeProto>> ownedTypes;
};

FailureOr<const ::onnx::AttributeProto *>
Importer::attribute(const ::onnx::NodeProto &node, StringRef name, AttrType type) {
  const SupportedOp *op = findSupportedOp(node.op_type());
  const OpAttribute *known = op ? op->findAttribute(name) : nullptr;
  (void)known;
  assert(known && known->type == type && "attribute read differs from SupportedOps' table");
  for (const auto &a : node.attribute()) {
    if (a.name() != name)
      continue;
    if (a.type() != type)
      return nodeError(node) << attributeTypeError(node, a, type);
    return &a;
  }
  return nullptr;
}

FailureOr<int64_t> Importer::intAttr(const ::onnx::NodeProto &node, StringRef name,
                                     int64_t fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::INT);
  if (failed(a))
    return failure();
  return *a ? static_cast<int64_t>((*a)->i()) : fallback;
}

FailureOr<float> Importer::floatAttr(const ::onnx::NodeProto &node, StringRef name,
                                     float fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::FLOAT);
  if (failed(a))
    return failure();
  return *a ? (*a)->f() : fallback;
}

FailureOr<std::string> Importer::stringAttr(const ::onnx::NodeProto &node, StringRef name,
                                            StringRef fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::STRING);
  if (failed(a))
    return failure();
  return *a ? (*a)->s() : fallback.str();
}

FailureOr<SmallVector<int64_t>> Importer::intsAttr(const ::onnx::NodeProto &node,
                                                   StringRef name, ArrayRef<int64_t> fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::INTS);
  if (failed(a))
    return failure();
  if (!*a)
    return SmallVector<int64_t>(fallback);
  return SmallVector<int64_t>((*a)->ints().begin(), (*a)->ints().end());
}

FailureOr<Type> Importer::convertElementType(int32_t dataType, StringRef what) {
  switch (dataType) {
  case ::onnx::TensorProto::FLOAT:
    return Type(builder.getF32Type());
  case ::onnx::TensorProto::INT64:
  case ::onnx::TensorProto::BOOL: // conditions and masks: 0 or 1
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
  // Zero-size tensors and sizes past what a byte offset can address are
  // rejected here, before any arithmetic on them.
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d == 0)
      return error(fileLoc) << what << " has a zero-size dimension, which is not supported";
    if (llvm::MulOverflow(elements, d, elements) || elements > (int64_t(1) << 40))
      return error(fileLoc) << what << " has more than 2^40 elements";
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
  if (tensor.data_type() == ::onnx::TensorProto::BOOL) {
    SmallVector<int64_t> values;
    if (tensor.has_raw_data())
      for (char c : tensor.raw_data())
        values.push_back(c != 0);
    else
      for (int32_t v : tensor.int32_data())
        values.push_back(v != 0);
    if (static_cast<int64_t>(values.size()) != type.getNumElements())
      return error(loc) << "tensor '" << tensor.name() << "' has no data of its declared size";
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(values));
  }
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
  // A loss's class weights are data, not weights (PyTorch's loss `weight` is
  // a buffer): such initializers become constants, kept in the exported model.
  llvm::StringSet<> classWeights, otherUses;
  for (const auto &node : model.graph().node()) {
    bool loss = node.op_type() == "SoftmaxCrossEntropyLoss" ||
                node.op_type() == "NegativeLogLikelihoodLoss";
    for (int i = 0; i < node.input_size(); ++i)
      (loss && i == 2 ? classWeights : otherUses).insert(node.input(i));
  }
  for (const auto &init : model.graph().initializer()) {
    if (init.data_type() != ::onnx::TensorProto::FLOAT) {
      constants[init.name()] = &init;
      continue;
    }
    if (classWeights.contains(init.name())) {
      if (otherUses.contains(init.name()))
        return error(fileLoc) << "initializer '" << init.name()
                              << "' is a loss's class weights and also used by other nodes, "
                                 "which is not supported";
      constants[init.name()] = &init;
      continue;
    }
    if (init.data_location() == ::onnx::TensorProto::EXTERNAL)
      return error(fileLoc) << "initializer '" << init.name()
                            << "' uses external data, which is not supported";
    SmallVector<int64_t> shape(init.dims().begin(), init.dims().end());
    if (llvm::is_contained(shape, 0))
      return error(fileLoc) << "initializer '" << init.name()
                            << "' has a zero-size dimension, which is not supported";
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
    // BatchNormalization's running statistics are model state, not weights.
    bool isState = llvm::any_of(model.graph().node(), [&](const ::onnx::NodeProto &node) {
      return node.op_type() == "BatchNormalization" && node.input_size() == 5 &&
             (node.input(3) == init.name() || node.input(4) == init.name());
    });
    if (isState)
      global->setAttr(kModelStateAttr, builder.getUnitAttr());
    parameters[init.name()] = type;
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

FailureOr<Value> Importer::lookup(const std::string &name, const ::onnx::NodeProto *node) {
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
    return error(fileLoc) << "graph output '" << name << "' is not computed by the graph";
  return nodeError(*node) << "input '" << name << "' is not produced by any imported node";
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
  std::optional<IntTensor> tensor = evaluate(name);
  if (!tensor) {
    nodeError(node) << "'" << name << "' must be a compile-time constant";
    return failure();
  }
  return tensor->values;
}

Value Importer::materialize(const IntTensor &tensor, Location loc) {
  auto type = RankedTensorType::get(tensor.shape, builder.getI64Type());
  return onnx::ConstantOp::create(builder, loc,
                                  DenseElementsAttr::get(type, ArrayRef<int64_t>(tensor.values)));
}

std::optional<IntTensor> Importer::evaluate(const std::string &name, int depth) {
  if (auto it = evaluated.find(name); it != evaluated.end())
    return it->second;
  std::optional<IntTensor> result;
  if (const ::onnx::TensorProto *tensor = constants.lookup(name)) {
    if (tensor->data_type() == ::onnx::TensorProto::INT64 ||
        tensor->data_type() == ::onnx::TensorProto::BOOL) {
      auto attr = convertTensor(*tensor, fileLoc);
      if (succeeded(attr)) {
        IntTensor t;
        t.shape.assign(tensor->dims().begin(), tensor->dims().end());
        for (APInt v : attr->getValues<APInt>())
          t.values.push_back(v.getSExtValue());
        result = t;
      }
    }
  } else if (auto it = producer.find(name); it != producer.end() && depth < 64) {
    const ::onnx::NodeProto &node = model.graph().node(it->second);
    if (node.output(0) == name)
      result = evaluateNode(node, depth + 1);
  }
  if (result)
    evaluated[name] = *result;
  return result;
}

/// Applies `fn` elementwise over `operands` broadcast with numpy rules.
std::optional<IntTensor>
broadcastInts(ArrayRef<const IntTensor *> operands,
              llvm::function_ref<std::optional<int64_t>(ArrayRef<int64_t>)> fn) {
  SmallVector<int64_t> shape;
  for (const IntTensor *t : operands) {
    auto joined = zero::broadcastShapes(shape, t->shape);
    if (!joined)
      return std::nullopt;
    shape = *joined;
  }
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  IntTensor result{shape, {}};
  SmallVector<int64_t> index(shape.size(), 0), args(operands.size());
  for (int64_t flat = 0; flat < count; ++flat) {
    for (auto [k, t] : llvm::enumerate(operands)) {
      // The operand's element at `index`, its dimensions right-aligned.
      int64_t offset = 0, lead = shape.size() - t->shape.size();
      for (size_t d = 0; d < t->shape.size(); ++d)
        offset = offset * t->shape[d] + (t->shape[d] == 1 ? 0 : index[lead + d]);
      args[k] = t->values[offset];
    }
    std::optional<int64_t> value = fn(args);
    if (!value)
      return std::nullopt;
    result.values.push_back(*value);
    for (int64_t d = shape.size() - 1; d >= 0 && ++index[d] == shape[d]; --d)
      index[d] = 0;
  }
  return result;
}

std::optional<IntTensor> Importer::evaluateNode(const ::onnx::NodeProto &node, int depth) {
  const std::string &op = node.op_type();
  auto input = [&](int i) -> std::optional<IntTensor> {
    if (i >= node.input_size() || node.input(i).empty())
      return std::nullopt;
    return evaluate(node.input(i), depth);
  };

  if (op == "Shape") {
    const ::onnx::TypeProto *type = valueTypes.lookup(node.input(0));
    if (!type || !type->has_tensor_type() || !type->tensor_type().has_shape())
      return std::nullopt;
    IntTensor t;
    for (const auto &dim : type->tensor_type().shape().dim()) {
      if (!dim.has_dim_value())
        return std::nullopt;
      t.values.push_back(dim.dim_value());
    }
    int64_t rank = t.values.size();
    auto startAttr = intAttr(node, "start", 0), endAttr = intAttr(node, "end", rank);
    if (failed(startAttr) || failed(endAttr))
      return std::nullopt;
    int64_t start = *startAttr, end = *endAttr;
    start = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
    end = std::clamp<int64_t>(end < 0 ? end + rank : end, start, rank);
    t.values = SmallVector<int64_t>(t.values.begin() + start, t.values.begin() + end);
    t.shape = {static_cast<int64_t>(t.values.size())};
    return t;
  }
  if (op == "Constant" || op == "Identity" || op == "Cast" || op == "Unsqueeze" ||
      op == "Squeeze" || op == "Reshape") {
    if (op == "Constant")
      return std::nullopt; // Constants are in `constants` already.
    auto in = input(0);
    if (!in)
      return std::nullopt;
    const ::onnx::TypeProto *type = valueTypes.lookup(node.output(0));
    if (op != "Identity" && op != "Cast") {
      if (!type || !type->tensor_type().has_shape())
        return std::nullopt;
      in->shape.clear();
      for (const auto &dim : type->tensor_type().shape().dim())
        in->shape.push_back(dim.dim_value());
    }
    return in;
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Equal") {
    auto a = input(0), b = input(1);
    if (!a || !b)
      return std::nullopt;
    return broadcastInts({&*a, &*b}, [&](ArrayRef<int64_t> v) -> std::optional<int64_t> {
      int64_t x = v[0], y = v[1];
      if (op == "Div" && y == 0)
        return std::nullopt;
      // ONNX integer Div truncates toward zero, as C++ does.
      return op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y
                         : op == "Div" ? x / y : int64_t(x == y);
    });
  }
  if (op == "Gather") {
    auto data = input(0), indices = input(1);
    auto axis = intAttr(node, "axis", 0);
    if (!data || !indices || data->shape.size() != 1 || failed(axis) || *axis != 0)
      return std::nullopt;
    IntTensor t{indices->shape, {}};
    int64_t n = data->values.size();
    for (int64_t i : indices->values) {
      if (i < -n || i >= n)
        return std::nullopt;
      t.values.push_back(data->values[i < 0 ? i + n : i]);
    }
    return t;
  }
  if (op == "Concat") {
    IntTensor t;
    for (int i = 0; i < node.input_size(); ++i) {
      auto in = input(i);
      if (!in || in->shape.size() != 1)
        return std::nullopt;
      llvm::append_range(t.values, in->values);
    }
    t.shape = {static_cast<int64_t>(t.values.size())};
    return t;
  }
  if (op == "Range") {
    auto start = input(0), limit = input(1), delta = input(2);
    if (!start || !limit || !delta || start->values.size() != 1 ||
        limit->values.size() != 1 || delta->values.size() != 1 || delta->values[0] == 0)
      return std::nullopt;
    int64_t from = start->values[0], to = limit->values[0], step = delta->values[0];
    // Computed in double so that no bound overflows; shape ranges are small.
    double count = std::ceil((static_cast<double>(to) - from) / step);
    if (count > kMaxFoldedElements)
      return std::nullopt;
    IntTensor t;
    for (int64_t i = 0; i < count; ++i)
      t.values.push_back(from + i * step);
    t.shape = {static_cast<int64_t>(t.values.size())};
    return t;
  }
  if (op == "Where") {
    auto c = input(0), x = input(1), y = input(2);
    if (!c || !x || !y)
      return std::nullopt;
    return broadcastInts({&*c, &*x, &*y}, [](ArrayRef<int64_t> v) -> std::optional<int64_t> {
      return v[0] ? v[1] : v[2];
    });
  }
  if (op == "ConstantOfShape") {
    auto shape = input(0);
    if (!shape)
      return std::nullopt;
    int64_t fill = 0;
    auto value = attribute(node, "value", ::onnx::AttributeProto::TENSOR);
    if (failed(value))
      return std::nullopt;
    if (*value) {
      const ::onnx::TensorProto &t = (*value)->t();
      if (t.data_type() != ::onnx::TensorProto::INT64 && t.data_type() != ::onnx::TensorProto::BOOL)
        return std::nullopt;
      auto attr = convertTensor(t, fileLoc);
      if (failed(attr) || attr->getNumElements() != 1)
        return std::nullopt;
      fill = (*attr->getValues<APInt>().begin()).getSExtValue();
    }
    IntTensor t{shape->values, {}};
    int64_t count = 1;
    for (int64_t d : shape->values)
      if (d < 0 || llvm::MulOverflow(count, d, count) || count > kMaxFoldedElements)
        return std::nullopt;
    t.values.assign(count, fill);
    return t;
  }
  return std::nullopt;
}

LogicalResult Importer::importNode(const ::onnx::NodeProto &node) {
  Location loc = nodeLoc(node);
  const std::string &op = node.op_type();
  // The loader admits only the table's operators; this guards the importer.
  const SupportedOp *info = findSupportedOp(op);
  if (!info || (!node.domain().empty() && node.domain() != "ai.onnx"))
    return nodeError(node) << "unsupported operator '" << op << "'";

  if (op == "Constant") {
    auto value = attribute(node, "value", ::onnx::AttributeProto::TENSOR);
    if (failed(value))
      return failure();
    if (!*value || !(*value)->has_t())
      return nodeError(node) << "only the 'value' form of Constant is supported";
    auto dense = convertTensor((*value)->t(), loc);
    if (failed(dense))
      return failure();
    values[node.output(0)] = onnx::ConstantOp::create(builder, loc, *dense).getResult();
    return success();
  }

  // Shape subgraphs and constant masks fold to constants here.
  const ::onnx::TypeProto *firstType = valueTypes.lookup(node.output(0));
  bool intResult = !firstType || firstType->tensor_type().elem_type() == ::onnx::TensorProto::INT64 ||
                   firstType->tensor_type().elem_type() == ::onnx::TensorProto::BOOL;
  if (intResult && node.output_size() == 1)
    if (std::optional<IntTensor> tensor = evaluate(node.output(0))) {
      values[node.output(0)] = materialize(*tensor, loc);
      return success();
    }
  if (op == "Split")
    return importSplit(node);
  if (op == "BatchNormalization")
    return importBatchNormalization(node);
  if (op == "Slice")
    return importSlice(node);

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
  auto result = outputType(node, 0);
  if (failed(result))
    return failure();
  Type resultType = *result;
  Value out;

  if (info->kind == OpKind::Direct) {
    OperationState state(loc, ("onnx." + op).c_str());
    state.addOperands(inputs);
    state.addTypes(resultType);
    // An elementwise op's float attributes, defaults filled in.
    if (const plan_ops::ElementwiseOp *elementwise = plan_ops::find_elementwise(op))
      for (const auto &attribute : llvm::ArrayRef(elementwise->attributes, elementwise->num_attributes)) {
        auto value = floatAttr(node, attribute.name, attribute.default_value);
        if (failed(value))
          return failure();
        state.addAttribute(attribute.name, builder.getF32FloatAttr(*value));
      }
    out = builder.create(state)->getResult(0);
  } else if (op == "Identity") {
    out = inputs[0]; // no computation
  } else if (op == "Dropout") {
    // Dropout is the identity unless it runs in training mode with a
    // nonzero ratio, which a deterministic plan does not model.
    auto floatConstant = [&](int i, float fallback) -> std::optional<float> {
      if (i >= node.input_size() || node.input(i).empty())
        return fallback;
      const ::onnx::TensorProto *tensor = constants.lookup(node.input(i));
      auto value = tensor ? convertTensor(*tensor, loc) : FailureOr<DenseElementsAttr>(failure());
      if (failed(value) || !value->isSplat())
        return std::nullopt;
      if (value->getElementType().isF32())
        return value->getSplatValue<APFloat>().convertToFloat();
      return static_cast<float>(value->getSplatValue<APInt>().getSExtValue());
    };
    std::optional<float> ratio = floatConstant(1, 0.5f), training = floatConstant(2, 0.0f);
    if (!ratio || !training)
      return nodeError(node) << "ratio and training_mode must be compile-time constants";
    if (*training != 0 && *ratio != 0)
      return nodeError(node) << "Dropout in training mode is supported with ratio 0 only, got "
                             << *ratio;
    out = inputs[0];
    if (node.output_size() > 1 && !node.output(1).empty()) {
      auto maskType = outputType(node, 1);
      if (failed(maskType))
        return failure();
      values[node.output(1)] = onnx::ConstantOp::create(
          builder, loc, DenseElementsAttr::get(*maskType, int64_t(1)));
    }
  } else if (op == "Pow") {
    Value exponent = inputs[1];
    auto baseType = cast<RankedTensorType>(inputs[0].getType());
    auto expType = cast<RankedTensorType>(exponent.getType());
    if (expType.getElementType() != baseType.getElementType())
      exponent = onnx::CastOp::create(
          builder, loc, expType.clone(baseType.getElementType()), exponent);
    out = onnx::PowOp::create(builder, loc, resultType, inputs[0], exponent);
  } else if (op == "Cast") {
    out = resultType == inputs[0].getType()
              ? inputs[0]
              : onnx::CastOp::create(builder, loc, resultType, inputs[0]).getResult();
  } else if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
    out = resultType == inputs[0].getType()
              ? inputs[0]
              : onnx::ReshapeOp::create(builder, loc, resultType, inputs[0]).getResult();
  } else if (op == "Transpose") {
    // Without perm the dimensions are reversed.
    SmallVector<int64_t> reversed;
    for (int64_t i = cast<RankedTensorType>(inputs[0].getType()).getRank() - 1; i >= 0; --i)
      reversed.push_back(i);
    auto perm = intsAttr(node, "perm", reversed);
    if (failed(perm))
      return failure();
    out = onnx::TransposeOp::create(builder, loc, resultType, inputs[0],
                                    builder.getDenseI64ArrayAttr(*perm));
  } else if (op == "Gemm") {
    auto alpha = floatAttr(node, "alpha", 1.0f), beta = floatAttr(node, "beta", 1.0f);
    auto transA = intAttr(node, "transA", 0), transB = intAttr(node, "transB", 0);
    if (failed(alpha) || failed(beta) || failed(transA) || failed(transB))
      return failure();
    out = onnx::GemmOp::create(builder, loc, resultType, inputs[0], inputs[1],
                               inputs.size() > 2 ? inputs[2] : Value(),
                               builder.getF32FloatAttr(*alpha), builder.getF32FloatAttr(*beta),
                               builder.getBoolAttr(*transA), builder.getBoolAttr(*transB));
  } else if (op == "Gather" || op == "Concat") {
    auto axis = intAttr(node, "axis", 0);
    if (failed(axis))
      return failure();
    out = op == "Gather" ? onnx::GatherOp::create(builder, loc, resultType, inputs[0], inputs[1],
                                                  builder.getI64IntegerAttr(*axis))
                               .getResult()
                         : onnx::ConcatOp::create(builder, loc, resultType, inputs,
                                                  builder.getI64IntegerAttr(*axis))
                               .getResult();
  } else if (op == "LayerNormalization") {
    auto in = cast<RankedTensorType>(resultType);
    auto axisAttr = intAttr(node, "axis", -1);
    auto epsilon = floatAttr(node, "epsilon", 1e-5f);
    auto stashType = intAttr(node, "stash_type", 1);
    if (failed(axisAttr) || failed(epsilon) || failed(stashType))
      return failure();
    // stash_type 1 computes the statistics in float, as zero always does.
    if (*stashType != 1)
      return nodeError(node) << "stash_type " << *stashType
                             << " is not supported; zero computes the statistics in FLOAT "
                                "(stash_type 1)";
    int64_t axis = *axisAttr;
    if (axis < -in.getRank() || axis >= in.getRank())
      return nodeError(node) << "axis " << axis << " is out of range";
    if (axis < 0)
      axis += in.getRank();
    SmallVector<int64_t> stats(in.getShape().take_front(axis));
    stats.append(in.getRank() - axis, 1);
    auto statsType = in.clone(stats);
    auto norm = onnx::LayerNormalizationOp::create(
        builder, loc, TypeRange{resultType, statsType, statsType}, inputs[0], inputs[1],
        inputs.size() > 2 ? inputs[2] : Value(), builder.getI64IntegerAttr(axis),
        builder.getF32FloatAttr(*epsilon));
    for (int i = 1; i < node.output_size() && i < 3; ++i)
      if (!node.output(i).empty())
        values[node.output(i)] = norm->getResult(i);
    out = norm.getResult();
  } else if (op == "Conv") {
    SmallVector<int64_t> kernel, strides, pads, dilations;
    if (failed(windowAttributes(node, kernel, strides, pads, dilations)))
      return failure();
    auto group = intAttr(node, "group", 1);
    if (failed(group))
      return failure();
    out = onnx::ConvOp::create(builder, loc, resultType, inputs[0], inputs[1],
                               inputs.size() > 2 ? inputs[2] : Value(),
                               builder.getDenseI64ArrayAttr(strides),
                               builder.getDenseI64ArrayAttr(pads),
                               builder.getDenseI64ArrayAttr(dilations),
                               builder.getI64IntegerAttr(*group));
  } else if (op == "MaxPool" || op == "AveragePool") {
    SmallVector<int64_t> kernel, strides, pads, dilations;
    if (failed(windowAttributes(node, kernel, strides, pads, dilations)))
      return failure();
    if (llvm::any_of(dilations, [](int64_t d) { return d != 1; }))
      return nodeError(node) << "dilated pooling is not supported";
    auto ceilModeAttr = intAttr(node, "ceil_mode", 0);
    auto countIncludePad =
        op == "AveragePool" ? intAttr(node, "count_include_pad", 0) : FailureOr<int64_t>(0);
    if (failed(ceilModeAttr) || failed(countIncludePad))
      return failure();
    bool ceilMode = *ceilModeAttr != 0;
    if (ceilMode) {
      // ONNX before opset 19 (and its shape inference here) keeps a last
      // window that starts in the end padding; PyTorch and opset 19 drop it.
      auto in = cast<RankedTensorType>(inputs[0].getType());
      auto out = cast<RankedTensorType>(resultType);
      for (int i = 0; i < 2; ++i) {
        int64_t size = windowOutputSize(in.getDimSize(2 + i), pads[i], pads[i + 2], kernel[i],
                                        strides[i], true);
        if (size >= 0 && out.getDimSize(2 + i) != size)
          return nodeError(node) << "ceil_mode: ONNX infers a last window that starts in the end "
                                    "padding; zero drops it, as PyTorch and opset 19 do";
      }
    }
    if (op == "MaxPool") {
      if (node.output_size() > 1 && !node.output(1).empty())
        return nodeError(node) << "the Indices output is not supported";
      auto argmaxType = cast<RankedTensorType>(resultType).clone(builder.getI64Type());
      out = onnx::MaxPoolOp::create(builder, loc, TypeRange{resultType, argmaxType}, inputs[0],
                                    builder.getDenseI64ArrayAttr(kernel),
                                    builder.getDenseI64ArrayAttr(strides),
                                    builder.getDenseI64ArrayAttr(pads), builder.getBoolAttr(ceilMode))
                .getResult();
    } else {
      out = onnx::AveragePoolOp::create(builder, loc, resultType, inputs[0],
                                        builder.getDenseI64ArrayAttr(kernel),
                                        builder.getDenseI64ArrayAttr(strides),
                                        builder.getDenseI64ArrayAttr(pads),
                                        builder.getBoolAttr(*countIncludePad),
                                        builder.getBoolAttr(ceilMode));
    }
  } else if (op == "GlobalAveragePool") {
    int64_t rank = cast<RankedTensorType>(inputs[0].getType()).getRank();
    out = onnx::ReduceMeanOp::create(
        builder, loc, resultType, inputs[0],
        builder.getDenseI64ArrayAttr(llvm::to_vector(llvm::seq<int64_t>(2, rank))),
        builder.getBoolAttr(true));
  } else if (op == "Softmax" || op == "LogSoftmax") {
    // Before opset 13 the input is coerced to 2-D at `axis` (default 1) and
    // normalized over everything from there on.
    auto type = cast<RankedTensorType>(inputs[0].getType());
    auto axisValue = intAttr(node, "axis", opset < 13 ? 1 : -1);
    if (failed(axisValue))
      return failure();
    int64_t axis = *axisValue;
    if (axis < -type.getRank() || axis >= std::max<int64_t>(type.getRank(), 1))
      return nodeError(node) << "axis " << axis << " is out of range";
    if (axis < 0)
      axis += type.getRank();
    Value x = inputs[0];
    bool coerce = opset < 13 && axis != type.getRank() - 1;
    if (coerce) {
      int64_t outer = 1;
      for (int64_t d : type.getShape().take_front(axis))
        outer *= d;
      x = onnx::ReshapeOp::create(builder, loc,
                                  type.clone({outer, type.getNumElements() / outer}), x);
    }
    auto axisAttr = builder.getI64IntegerAttr(coerce ? 1 : axis);
    out = op == "Softmax" ? onnx::SoftmaxOp::create(builder, loc, x, axisAttr).getResult()
                          : onnx::LogSoftmaxOp::create(builder, loc, x, axisAttr).getResult();
    if (coerce)
      out = onnx::ReshapeOp::create(builder, loc, type, out);
  } else if (op == "SoftmaxCrossEntropyLoss" || op == "NegativeLogLikelihoodLoss") {
    Value weights = inputs.size() > 2 ? inputs[2] : Value();
    auto reduction = stringAttr(node, "reduction", "mean");
    auto ignore = attribute(node, "ignore_index", ::onnx::AttributeProto::INT);
    if (failed(reduction) || failed(ignore))
      return failure();
    IntegerAttr ignoreIndex; // none unless given
    if (*ignore)
      ignoreIndex = builder.getI64IntegerAttr((*ignore)->i());
    auto reductionAttr = builder.getStringAttr(*reduction);
    if (op == "SoftmaxCrossEntropyLoss") {
      SmallVector<Type> types{resultType};
      if (node.output_size() > 1 && !node.output(1).empty()) {
        auto logProb = outputType(node, 1);
        if (failed(logProb))
          return failure();
        types.push_back(*logProb);
      }
      auto loss = onnx::SoftmaxCrossEntropyLossOp::create(
          builder, loc, types, inputs[0], inputs[1], weights, reductionAttr, ignoreIndex);
      if (types.size() > 1)
        values[node.output(1)] = loss.getLogProb();
      out = loss.getLoss();
    } else {
      out = onnx::NegativeLogLikelihoodLossOp::create(builder, loc, resultType, inputs[0],
                                                      inputs[1], weights, reductionAttr,
                                                      ignoreIndex);
    }
  } else if (op == "ReduceSum" || op == "ReduceMean") {
    // No axes (an attribute before ReduceSum-13, an input since) reduce
    // every axis, or none with noop_with_empty_axes (ReduceSum-13).
    bool axesFromInput = op == "ReduceSum" && opset >= 13;
    auto axes = intsAttr(node, "axes");
    auto keepdimsAttr = intAttr(node, "keepdims", 1);
    auto noop =
        op == "ReduceSum" ? intAttr(node, "noop_with_empty_axes", 0) : FailureOr<int64_t>(0);
    if (failed(axes) || failed(keepdimsAttr) || failed(noop))
      return failure();
    if (axesFromInput && node.input_size() > 1 && !node.input(1).empty()) {
      auto ints = constantInts(node.input(1), node);
      if (failed(ints))
        return failure();
      axes = *ints;
    }
    if (axes->empty() && *noop) {
      out = inputs[0];
    } else {
      auto axesAttr = builder.getDenseI64ArrayAttr(*axes);
      auto keepdims = builder.getBoolAttr(*keepdimsAttr);
      out = op == "ReduceSum"
                ? onnx::ReduceSumOp::create(builder, loc, resultType, inputs[0], axesAttr, keepdims)
                      .getResult()
                : onnx::ReduceMeanOp::create(builder, loc, resultType, inputs[0], axesAttr,
                                             keepdims)
                      .getResult();
    }
  } else if (info->kind == OpKind::FoldOnly) {
    return nodeError(node) << "unsupported operator '" << op
                           << "' on values not known at compile time (it folds only in shape "
                              "computations)";
  } else {
    return nodeError(node) << "unsupported operator '" << op << "'";
  }

  if (out.getType() != resultType)
    return nodeError(node) << "imported type " << out.getType()
                           << " differs from the inferred type " << resultType;
  values[node.output(0)] = out;
  return success();
}

LogicalResult Importer::windowAttributes(const ::onnx::NodeProto &node,
                                         SmallVector<int64_t> &kernel,
                                         SmallVector<int64_t> &strides,
                                         SmallVector<int64_t> &pads,
                                         SmallVector<int64_t> &dilations) {
  auto type = valueTypes.lookup(node.input(0));
  if (!type || !type->tensor_type().has_shape())
    return nodeError(node) << "the input has no static shape";
  if (type->tensor_type().shape().dim_size() != 4)
    return nodeError(node) << "only 2-D (NCHW) windows are supported";
  const ::onnx::TypeProto *weight =
      node.op_type() == "Conv" ? valueTypes.lookup(node.input(1)) : nullptr;
  // Conv's kernel_shape defaults to the weights' spatial dimensions.
  SmallVector<int64_t> weightKernel;
  if (weight && weight->tensor_type().shape().dim_size() == 4)
    weightKernel = {weight->tensor_type().shape().dim(2).dim_value(),
                    weight->tensor_type().shape().dim(3).dim_value()};
  auto autoPadAttr = stringAttr(node, "auto_pad", "NOTSET");
  auto kernelAttr = intsAttr(node, "kernel_shape", weightKernel);
  auto stridesAttr = intsAttr(node, "strides", {1, 1});
  auto padsAttr = intsAttr(node, "pads", {0, 0, 0, 0});
  // AveragePool has dilations only from opset 19.
  auto dilationsAttr = node.op_type() == "AveragePool"
                           ? FailureOr<SmallVector<int64_t>>(SmallVector<int64_t>{1, 1})
                           : intsAttr(node, "dilations", {1, 1});
  // storage_order lays out MaxPool's Indices output, which zero does not have.
  auto storageOrder =
      node.op_type() == "MaxPool" ? intAttr(node, "storage_order", 0) : FailureOr<int64_t>(0);
  if (failed(autoPadAttr) || failed(kernelAttr) || failed(stridesAttr) || failed(padsAttr) ||
      failed(dilationsAttr) || failed(storageOrder))
    return failure();
  if (*storageOrder != 0)
    return nodeError(node) << "attribute storage_order is not supported";
  std::string autoPad = *autoPadAttr;
  kernel = *kernelAttr;
  strides = *stridesAttr;
  pads = *padsAttr;
  dilations = *dilationsAttr;
  if (kernel.size() != 2 || strides.size() != 2 || pads.size() != 4 || dilations.size() != 2)
    return nodeError(node) << "expected 2-D kernel_shape, strides, dilations and 4 pads";
  if (autoPad == "VALID") {
    pads.assign(4, 0);
  } else if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    // Output size ceil(in / stride); the odd padding element goes at the
    // end (SAME_UPPER) or the beginning (SAME_LOWER).
    for (int i = 0; i < 2; ++i) {
      int64_t in = type->tensor_type().shape().dim(2 + i).dim_value();
      int64_t out = (in + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(
          (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in, 0);
      int64_t small = total / 2, large = total - small;
      pads[i] = autoPad == "SAME_UPPER" ? small : large;
      pads[i + 2] = autoPad == "SAME_UPPER" ? large : small;
    }
  } else if (autoPad != "NOTSET") {
    return nodeError(node) << "auto_pad " << autoPad << " is not supported";
  }
  return success();
}

LogicalResult Importer::importBatchNormalization(const ::onnx::NodeProto &node) {
  Location loc = nodeLoc(node);
  auto spatial = intAttr(node, "spatial", 1);
  auto epsilon = floatAttr(node, "epsilon", 1e-5f), momentum = floatAttr(node, "momentum", 0.9f);
  auto trainingMode = intAttr(node, "training_mode", opset < 14 && node.output_size() > 1);
  if (failed(spatial) || failed(epsilon) || failed(momentum) || failed(trainingMode))
    return failure();
  if (*spatial == 0)
    return nodeError(node) << "per-element statistics (spatial = 0) are not supported";
  SmallVector<Value> in;
  for (int i = 0; i < 5; ++i) {
    if (i >= node.input_size() || node.input(i).empty())
      return nodeError(node) << "expects 5 inputs";
    auto v = lookup(node.input(i), &node);
    if (failed(v))
      return failure();
    in.push_back(*v);
  }
  // Before opset 14, a node with the running statistics' outputs trains.
  bool training = *trainingMode != 0;
  auto type = outputType(node, 0);
  if (failed(type))
    return failure();
  auto x = in[0];
  if (!training) {
    // Inference: y = (x - mean) / sqrt(var + eps) * scale + bias, with the
    // per-channel vectors reshaped to broadcast along dimension 1.
    SmallVector<int64_t> channelShape(type->getRank(), 1);
    channelShape[1] = type->getDimSize(1);
    auto channelType = type->clone(channelShape);
    auto channel = [&](Value v) -> Value {
      return onnx::ReshapeOp::create(builder, loc, channelType, v);
    };
    auto scalarType = RankedTensorType::get({}, builder.getF32Type());
    Value eps =
        onnx::ConstantOp::create(builder, loc, DenseElementsAttr::get(scalarType, *epsilon));
    Value std = onnx::SqrtOp::create(
        builder, loc, onnx::AddOp::create(builder, loc, channelType, channel(in[4]), eps));
    Value y = onnx::SubOp::create(builder, loc, *type, x, channel(in[3]));
    y = onnx::DivOp::create(builder, loc, *type, y, std);
    y = onnx::MulOp::create(builder, loc, *type, y, channel(in[1]));
    values[node.output(0)] = onnx::AddOp::create(builder, loc, *type, y, channel(in[2]));
    return success();
  }
  // Training: batch statistics, and the running statistics written back to
  // their globals. ONNX's momentum weighs the old value, PyTorch's the new.
  auto statsType = cast<RankedTensorType>(in[3].getType());
  auto norm = onnx::BatchNormalizationOp::create(
      builder, loc, TypeRange{*type, statsType, statsType, statsType, statsType}, in[0], in[1],
      in[2], in[3], in[4], builder.getF32FloatAttr(*epsilon),
      builder.getF32FloatAttr(1.0f - *momentum));
  for (int i : {3, 4}) {
    auto load = in[i].getDefiningOp<ml_program::GlobalLoadOp>();
    if (!load)
      return nodeError(node) << "running statistics must be initializers";
    ml_program::GlobalStoreOp::create(builder, loc, load.getGlobalAttr(), norm->getResult(i));
  }
  values[node.output(0)] = norm.getResult();
  return success();
}

LogicalResult Importer::importSplit(const ::onnx::NodeProto &node) {
  Location loc = nodeLoc(node);
  auto input = lookup(node.input(0), &node);
  if (failed(input))
    return failure();
  auto type = cast<RankedTensorType>(input->getType());
  auto axisAttr = intAttr(node, "axis", 0);
  if (failed(axisAttr))
    return failure();
  int64_t axis = *axisAttr;
  if (axis < -type.getRank() || axis >= type.getRank())
    return nodeError(node) << "axis " << axis << " is out of range";
  if (axis < 0)
    axis += type.getRank();
  SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1);
  for (int i = 0; i < node.output_size(); ++i) {
    auto resultType = outputType(node, i);
    if (failed(resultType))
      return failure();
    if (!node.output(i).empty())
      values[node.output(i)] =
          onnx::SliceOp::create(builder, loc, *resultType, *input,
                                builder.getDenseI64ArrayAttr(starts),
                                builder.getDenseI64ArrayAttr(steps));
    starts[axis] += resultType->getDimSize(axis);
  }
  return success();
}

LogicalResult Importer::importSlice(const ::onnx::NodeProto &node) {
  if (opset < 10)
    return nodeError(node) << "Slice with attribute bounds (before opset 10) is not supported";
  auto input = lookup(node.input(0), &node);
  if (failed(input))
    return failure();
  auto in = cast<RankedTensorType>(input->getType());
  auto ints = [&](int i) -> FailureOr<SmallVector<int64_t>> {
    if (i >= node.input_size() || node.input(i).empty())
      return SmallVector<int64_t>();
    return constantInts(node.input(i), node);
  };
  auto starts = ints(1), ends = ints(2), axes = ints(3), steps = ints(4);
  if (failed(starts) || failed(ends) || failed(axes) || failed(steps))
    return failure();
  if (ends->size() != starts->size())
    return nodeError(node) << "starts and ends differ in length";
  // Sizes come from the folded bounds, so a Slice whose bounds ONNX shape
  // inference could not follow still gets its static type.
  SmallVector<int64_t> fullStarts(in.getRank(), 0), fullSteps(in.getRank(), 1);
  SmallVector<int64_t> shape(in.getShape());
  for (size_t i = 0; i < starts->size(); ++i) {
    int64_t axis = axes->empty() ? i : (*axes)[i];
    if (axis < 0)
      axis += in.getRank();
    int64_t step = steps->empty() ? 1 : (*steps)[i];
    if (axis < 0 || axis >= in.getRank() || step < 1)
      return nodeError(node) << "only in-range axes and positive steps are supported";
    int64_t dim = in.getDimSize(axis), start = (*starts)[i], end = (*ends)[i];
    start = std::clamp<int64_t>(start < 0 ? start + dim : start, 0, dim);
    end = std::clamp<int64_t>(end < 0 ? end + dim : end, 0, dim);
    fullStarts[axis] = start;
    fullSteps[axis] = step;
    shape[axis] = end > start ? (end - start + step - 1) / step : 0;
  }
  values[node.output(0)] = onnx::SliceOp::create(
      builder, nodeLoc(node), in.clone(shape), *input, builder.getDenseI64ArrayAttr(fullStarts),
      builder.getDenseI64ArrayAttr(fullSteps));
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
    auto value = attribute(node, "value", ::onnx::AttributeProto::TENSOR);
    if (failed(value))
      return nullptr;
    if (*value && (*value)->has_t())
      constants[node.output(0)] = &(*value)->t();
  }

  if (graph.output_size() == 0) // the loader rejects these; the loss is output 0
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
    return error(fileLoc) << "the first graph output '" << lossName
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
    if (failed(collectNeededNodes(name)))
      return nullptr;
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

} // namespace

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &context, const std::string &path,
                                      bool forwardOnly) {
  context.loadDialect<onnx::OnnxDialect, ZeroDialect, func::FuncDialect,
                      ml_program::MLProgramDialect>();
  ::onnx::ModelProto model;
  std::string message;
  if (!loadOnnxModel(path, model, message)) {
    emitError(FileLineColLoc::get(&context, path, 0, 0)) << message;
    return nullptr;
  }
  return Importer(context, path, model, forwardOnly).run();
}

} // namespace zero::frontend
