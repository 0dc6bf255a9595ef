//===- OnnxHandlers.cpp - one builder per row of OnnxOps.def --------------===//
//
// The handler map: each node is built by its row's builder, found by
// domain, operator and opset. Ops that map one to one share the generic
// builder (importDirect); an operator's semantics that change between
// opsets get a builder per range. Builders read attributes only through the
// typed readers, which check them against the row.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/GraphImporter.h"
#include "frontends/onnx/OnnxModelLoader.h"
#include "zero/plan_ops.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/ShapeUtils.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

using namespace mlir;

namespace zero::frontend {

//===----------------------------------------------------------------------===//
// Typed attribute readers
//===----------------------------------------------------------------------===//

FailureOr<const ::onnx::AttributeProto *>
GraphImporter::attribute(const ::onnx::NodeProto &node, StringRef name,
                         ::onnx::AttributeProto::AttributeType type) {
  // The loader has checked every attribute against the node's row already;
  // this keeps a builder from reading one the row does not list.
  const SupportedOp *row = findSupportedOp(node.domain(), node.op_type(), opset);
  const OpAttribute *known = row ? row->findAttribute(name) : nullptr;
  (void)known;
  assert(known && known->type == type && "attribute read differs from its row in OnnxOps.def");
  for (const auto &a : node.attribute()) {
    if (a.name() != name)
      continue;
    if (a.type() != type)
      return nodeError(node) << attributeTypeError(node, a, type);
    return &a;
  }
  return nullptr;
}

FailureOr<int64_t> GraphImporter::intAttr(const ::onnx::NodeProto &node, StringRef name,
                                          int64_t fallback) {
  auto value = optionalIntAttr(node, name);
  if (failed(value))
    return failure();
  return value->value_or(fallback);
}

FailureOr<std::optional<int64_t>> GraphImporter::optionalIntAttr(const ::onnx::NodeProto &node,
                                                                 StringRef name) {
  auto a = attribute(node, name, ::onnx::AttributeProto::INT);
  if (failed(a))
    return failure();
  return *a ? std::optional<int64_t>((*a)->i()) : std::nullopt;
}

FailureOr<float> GraphImporter::floatAttr(const ::onnx::NodeProto &node, StringRef name,
                                          float fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::FLOAT);
  if (failed(a))
    return failure();
  return *a ? (*a)->f() : fallback;
}

FailureOr<std::string> GraphImporter::stringAttr(const ::onnx::NodeProto &node, StringRef name,
                                                 StringRef fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::STRING);
  if (failed(a))
    return failure();
  return *a ? (*a)->s() : fallback.str();
}

FailureOr<SmallVector<int64_t>> GraphImporter::intsAttr(const ::onnx::NodeProto &node,
                                                        StringRef name,
                                                        ArrayRef<int64_t> fallback) {
  auto a = attribute(node, name, ::onnx::AttributeProto::INTS);
  if (failed(a))
    return failure();
  if (!*a)
    return SmallVector<int64_t>(fallback);
  return SmallVector<int64_t>((*a)->ints().begin(), (*a)->ints().end());
}

FailureOr<SmallVector<float>> GraphImporter::floatsAttr(const ::onnx::NodeProto &node,
                                                        StringRef name) {
  auto a = attribute(node, name, ::onnx::AttributeProto::FLOATS);
  if (failed(a))
    return failure();
  if (!*a)
    return SmallVector<float>();
  return SmallVector<float>((*a)->floats().begin(), (*a)->floats().end());
}

FailureOr<SmallVector<std::string>> GraphImporter::stringsAttr(const ::onnx::NodeProto &node,
                                                               StringRef name) {
  auto a = attribute(node, name, ::onnx::AttributeProto::STRINGS);
  if (failed(a))
    return failure();
  if (!*a)
    return SmallVector<std::string>();
  return SmallVector<std::string>((*a)->strings().begin(), (*a)->strings().end());
}

FailureOr<const ::onnx::TensorProto *> GraphImporter::tensorAttr(const ::onnx::NodeProto &node,
                                                                 StringRef name) {
  auto a = attribute(node, name, ::onnx::AttributeProto::TENSOR);
  if (failed(a))
    return failure();
  return *a && (*a)->has_t() ? &(*a)->t() : nullptr;
}

namespace {

/// A builder of a whole node: it looks up its operands and binds its
/// outputs itself.
using ImportFn = LogicalResult (*)(GraphImporter &, const ::onnx::NodeProto &);

/// What most builders start from: the node's data operands (null where an
/// optional one is left out) and the type inferred for its first output.
struct Operands {
  SmallVector<Value> inputs;
  RankedTensorType result;

  Value optional(size_t i) const { return i < inputs.size() ? inputs[i] : Value(); }
};

/// A builder of the node's first output from its operands, which must come
/// out with the inferred type; other outputs it binds itself.
using ResultFn = FailureOr<Value> (*)(GraphImporter &, const ::onnx::NodeProto &,
                                      const Operands &);

/// `build` as a builder of the whole node.
template <auto build>
constexpr ImportFn nodeBuilder() {
  if constexpr (std::is_same_v<decltype(build), ImportFn>) {
    return build;
  } else {
    static_assert(std::is_same_v<decltype(build), ResultFn>, "not a builder");
    return [](GraphImporter &im, const ::onnx::NodeProto &node) -> LogicalResult {
      auto inputs = im.dataInputs(node);
      if (failed(inputs))
        return failure();
      auto result = im.outputType(node, 0);
      if (failed(result))
        return failure();
      Operands in{std::move(*inputs), *result};
      auto out = build(im, node, in);
      if (failed(out))
        return failure();
      return im.setResult(node, *out, in.result);
    };
  }
}

//===----------------------------------------------------------------------===//
// The generic builders
//===----------------------------------------------------------------------===//

/// The dialect's op of the same name with the same operands; an elementwise
/// op's float attributes, defaults filled in.
FailureOr<Value> importDirect(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in) {
  OperationState state(im.nodeLoc(node), ("onnx." + node.op_type()).c_str());
  state.addOperands(in.inputs);
  state.addTypes(in.result);
  if (const plan_ops::ElementwiseOp *elementwise = plan_ops::find_elementwise(node.op_type()))
    for (const auto &attribute :
         llvm::ArrayRef(elementwise->attributes, elementwise->num_attributes)) {
      auto value = im.floatAttr(node, attribute.name, attribute.default_value);
      if (failed(value))
        return failure();
      state.addAttribute(attribute.name, im.builder.getF32FloatAttr(*value));
    }
  return im.builder.create(state)->getResult(0);
}

/// Operators zero evaluates only where their value is known at compile time,
/// which importNode has tried already.
LogicalResult importFoldOnly(GraphImporter &im, const ::onnx::NodeProto &node) {
  return im.nodeError(node) << "unsupported operator '" << node.op_type()
                            << "' on values not known at compile time (it folds only in shape "
                               "computations)";
}

//===----------------------------------------------------------------------===//
// Per-operator builders
//===----------------------------------------------------------------------===//

/// A splat of the `value` attribute's one element (FLOAT 0 without one).
FailureOr<Value> importConstantOfShape(GraphImporter &im, const ::onnx::NodeProto &node,
                                       const Operands &in) {
  auto value = im.tensorAttr(node, "value");
  if (failed(value))
    return failure();
  Location loc = im.nodeLoc(node);
  Attribute element = im.builder.getF32FloatAttr(0.0f);
  if (*value) {
    auto dense = im.convertTensor(**value, loc);
    if (failed(dense))
      return failure();
    if (dense->getNumElements() != 1)
      return im.nodeError(node) << "value must have one element";
    element = *dense->value_begin<Attribute>();
  }
  if (cast<TypedAttr>(element).getType() != in.result.getElementType())
    return im.nodeError(node) << "value's element type differs from the output's";
  return onnx::ConstantOp::create(im.builder, loc, DenseElementsAttr::get(in.result, element))
      .getResult();
}

LogicalResult importConstant(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto value = im.tensorAttr(node, "value");
  if (failed(value))
    return failure();
  if (!*value)
    return im.nodeError(node) << "only the 'value' form of Constant is supported";
  // A DOUBLE constant is read only by a Cast to FLOAT, which folds it
  // (importCast); any other reader's lookup rejects its type.
  if ((*value)->data_type() == ::onnx::TensorProto::DOUBLE)
    return success();
  Location loc = im.nodeLoc(node);
  auto dense = im.convertTensor(**value, loc);
  if (failed(dense))
    return failure();
  im.setOutput(node, 0, onnx::ConstantOp::create(im.builder, loc, *dense));
  return success();
}

FailureOr<Value> importIdentity(GraphImporter &im, const ::onnx::NodeProto &node,
                                const Operands &in) {
  return in.inputs[0]; // no computation
}

FailureOr<Value> importDropout(GraphImporter &im, const ::onnx::NodeProto &node,
                               const Operands &in) {
  Location loc = im.nodeLoc(node);
  // Dropout is the identity unless it runs in training mode with a nonzero
  // ratio, and always in an evaluation (--forward-only) plan.
  auto floatConstant = [&](int i, float fallback) -> std::optional<float> {
    if (i >= node.input_size() || node.input(i).empty())
      return fallback;
    const ::onnx::TensorProto *tensor = im.constantTensor(node.input(i));
    auto value = tensor ? im.convertTensor(*tensor, loc) : FailureOr<DenseElementsAttr>(failure());
    if (failed(value) || !value->isSplat())
      return std::nullopt;
    if (value->getElementType().isF32())
      return value->getSplatValue<APFloat>().convertToFloat();
    return static_cast<float>(value->getSplatValue<APInt>().getSExtValue());
  };
  std::optional<float> ratio = floatConstant(1, 0.5f), training = floatConstant(2, 0.0f);
  if (!ratio || !training)
    return im.nodeError(node) << "ratio and training_mode must be compile-time constants";
  const bool drops = *training != 0 && *ratio != 0 && im.importsForTraining();
  if (drops && !(*ratio > 0 && *ratio < 1))
    return im.nodeError(node) << "ratio must be in [0, 1), got " << *ratio;
  if (drops && GraphImporter::hasOutput(node, 1) && im.isRead(node.output(1)))
    return im.nodeError(node) << "the mask output of a training-mode Dropout is not supported "
                                 "(zero recomputes the mask in the backward pass)";
  if (drops)
    return onnx::DropoutOp::create(im.builder, loc, in.inputs[0].getType(),
                                   in.inputs[0], im.builder.getF32FloatAttr(*ratio),
                                   im.builder.getI64IntegerAttr(im.takeDropoutStream()))
        .getResult();
  if (GraphImporter::hasOutput(node, 1)) {
    auto maskType = im.outputType(node, 1);
    if (failed(maskType))
      return failure();
    im.setOutput(node, 1,
                 onnx::ConstantOp::create(im.builder, loc,
                                          DenseElementsAttr::get(*maskType, int64_t(1))));
  }
  return in.inputs[0];
}

FailureOr<Value> importPow(GraphImporter &im, const ::onnx::NodeProto &node, const Operands &in) {
  Location loc = im.nodeLoc(node);
  Value base = in.inputs[0], exponent = in.inputs[1];
  auto baseType = cast<RankedTensorType>(base.getType());
  auto expType = cast<RankedTensorType>(exponent.getType());
  if (expType.getElementType() != baseType.getElementType())
    exponent = onnx::CastOp::create(im.builder, loc, expType.clone(baseType.getElementType()),
                                    exponent);
  return onnx::PowOp::create(im.builder, loc, in.result, base, exponent).getResult();
}

/// Max and Min: ONNX's variadic form as a chain of the binary op, each
/// partial result of its operands' broadcast shape.
template <typename OpTy>
FailureOr<Value> importVariadic(GraphImporter &im, const ::onnx::NodeProto &node,
                                const Operands &in) {
  if (in.inputs.empty())
    return im.nodeError(node) << "needs at least one input";
  Value result = in.inputs.front();
  for (Value next : ArrayRef(in.inputs).drop_front()) {
    auto l = cast<RankedTensorType>(result.getType()), r = cast<RankedTensorType>(next.getType());
    auto shape = broadcastShapes(l.getShape(), r.getShape());
    if (!shape)
      return im.nodeError(node) << "operand shapes " << l << " and " << r << " do not broadcast";
    result = OpTy::create(im.builder, im.nodeLoc(node), l.clone(*shape), result, next);
  }
  return result;
}

constexpr ResultFn importMax = importVariadic<onnx::MaxOp>;
constexpr ResultFn importMin = importVariadic<onnx::MinOp>;

FailureOr<Value> importMod(GraphImporter &im, const ::onnx::NodeProto &node, const Operands &in) {
  auto fmod = im.intAttr(node, "fmod", 0);
  if (failed(fmod))
    return failure();
  if (*fmod != 0 && *fmod != 1)
    return im.nodeError(node) << "fmod must be 0 or 1, got " << *fmod;
  if (*fmod == 0 && !in.result.getElementType().isInteger())
    return im.nodeError(node) << "fmod must be 1 for FLOAT operands (ONNX defines fmod 0 only "
                                 "for integers)";
  return onnx::ModOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0], in.inputs[1],
                             im.builder.getI64IntegerAttr(*fmod))
      .getResult();
}

/// Clip from opset 11: the bounds are inputs, which must be compile-time
/// constants (exported models give Constant nodes or initializers); they
/// become the attributes of the earlier form, an absent one unbounded.
FailureOr<Value> importClipBoundsInputs(GraphImporter &im, const ::onnx::NodeProto &node,
                                        const Operands &in) {
  Location loc = im.nodeLoc(node);
  if (!in.result.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT tensors are supported";
  float bounds[] = {-std::numeric_limits<float>::infinity(),
                    std::numeric_limits<float>::infinity()};
  const char *names[] = {"min", "max"};
  for (int i = 1; i <= 2; ++i) {
    if (i >= node.input_size() || node.input(i).empty())
      continue;
    const ::onnx::TensorProto *tensor = im.constantTensor(node.input(i));
    if (!tensor)
      return im.nodeError(node) << "'" << names[i - 1] << "' must be a compile-time constant";
    auto value = im.convertTensor(*tensor, loc);
    if (failed(value))
      return failure();
    if (value->getNumElements() != 1 || !value->getElementType().isF32())
      return im.nodeError(node) << "'" << names[i - 1] << "' must be a FLOAT scalar";
    bounds[i - 1] = value->getSplatValue<APFloat>().convertToFloat();
  }
  return onnx::ClipOp::create(im.builder, loc, in.result, in.inputs[0],
                              im.builder.getF32FloatAttr(bounds[0]),
                              im.builder.getF32FloatAttr(bounds[1]))
      .getResult();
}

/// `OpTy` to the inferred type, or the input itself where that is its type.
template <typename OpTy>
FailureOr<Value> importTypeChange(GraphImporter &im, const ::onnx::NodeProto &node,
                                  const Operands &in) {
  Value x = in.inputs[0];
  if (in.result == x.getType())
    return x;
  return OpTy::create(im.builder, im.nodeLoc(node), in.result, x).getResult();
}

/// Cast; of a DOUBLE constant to FLOAT (what PyTorch writes for a Python
/// float, as the value of Tensor.scatter) it folds, since zero has no
/// DOUBLE tensors.
LogicalResult importCast(GraphImporter &im, const ::onnx::NodeProto &node) {
  const ::onnx::TensorProto *tensor = im.constantTensor(node.input(0));
  if (tensor && tensor->data_type() == ::onnx::TensorProto::DOUBLE &&
      tensor->data_location() != ::onnx::TensorProto::EXTERNAL) {
    auto to = im.intAttr(node, "to", 0);
    auto type = im.outputType(node, 0);
    if (failed(to) || failed(type))
      return failure();
    if (*to != ::onnx::TensorProto::FLOAT)
      return im.nodeError(node) << "a DOUBLE constant casts only to FLOAT";
    SmallVector<float> values;
    if (tensor->has_raw_data()) {
      const std::string &raw = tensor->raw_data();
      for (size_t i = 0; i + sizeof(double) <= raw.size(); i += sizeof(double)) {
        double v;
        std::memcpy(&v, raw.data() + i, sizeof(double));
        values.push_back(static_cast<float>(v));
      }
    } else {
      for (double v : tensor->double_data())
        values.push_back(static_cast<float>(v));
    }
    if (static_cast<int64_t>(values.size()) != type->getNumElements())
      return im.nodeError(node) << "the constant has no data of its declared size";
    im.setOutput(node, 0,
                 onnx::ConstantOp::create(im.builder, im.nodeLoc(node),
                                          DenseElementsAttr::get(*type, ArrayRef<float>(values))));
    return success();
  }
  return nodeBuilder<importTypeChange<onnx::CastOp>>()(im, node);
}
/// Reshape, Flatten, Squeeze and Unsqueeze: the shape inference found.
constexpr ResultFn importReshape = importTypeChange<onnx::ReshapeOp>;

FailureOr<Value> importTranspose(GraphImporter &im, const ::onnx::NodeProto &node,
                                 const Operands &in) {
  // Without perm the dimensions are reversed.
  SmallVector<int64_t> reversed;
  for (int64_t i = cast<RankedTensorType>(in.inputs[0].getType()).getRank() - 1; i >= 0; --i)
    reversed.push_back(i);
  auto perm = im.intsAttr(node, "perm", reversed);
  if (failed(perm))
    return failure();
  return onnx::TransposeOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0],
                                   im.builder.getDenseI64ArrayAttr(*perm))
      .getResult();
}

FailureOr<Value> importGemm(GraphImporter &im, const ::onnx::NodeProto &node,
                            const Operands &in) {
  auto alpha = im.floatAttr(node, "alpha", 1.0f), beta = im.floatAttr(node, "beta", 1.0f);
  auto transA = im.intAttr(node, "transA", 0), transB = im.intAttr(node, "transB", 0);
  if (failed(alpha) || failed(beta) || failed(transA) || failed(transB))
    return failure();
  OpBuilder &b = im.builder;
  return onnx::GemmOp::create(b, im.nodeLoc(node), in.result, in.inputs[0], in.inputs[1],
                              in.optional(2), b.getF32FloatAttr(*alpha), b.getF32FloatAttr(*beta),
                              b.getBoolAttr(*transA), b.getBoolAttr(*transB))
      .getResult();
}

FailureOr<Value> importGather(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in) {
  auto axis = im.intAttr(node, "axis", 0);
  if (failed(axis))
    return failure();
  return onnx::GatherOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0],
                                in.inputs[1], im.builder.getI64IntegerAttr(*axis))
      .getResult();
}

//===----------------------------------------------------------------------===//
// Indexing by index tensors: GatherElements, ScatterElements, GatherND,
// ScatterND, TopK
//===----------------------------------------------------------------------===//

/// INT64 indices; where they are a compile-time constant, each must lie in
/// [-size, size) of the dimension it indexes (`size(flat)`, flat its
/// position in the indices), else the import fails naming the first that
/// does not (`where(flat)` says where it is); at run time a kernel checks them.
LogicalResult checkIndices(GraphImporter &im, const ::onnx::NodeProto &node, Value indices,
                           llvm::function_ref<int64_t(int64_t)> size,
                           llvm::function_ref<std::string(int64_t)> where) {
  auto type = cast<RankedTensorType>(indices.getType());
  if (!type.getElementType().isInteger(64))
    return im.nodeError(node) << "indices must be INT64";
  auto constant = indices.getDefiningOp<onnx::ConstantOp>();
  auto values = constant ? dyn_cast<DenseIntElementsAttr>(constant.getValue()) : nullptr;
  if (!values)
    return success();
  int64_t flat = 0;
  for (const APInt &v : values.getValues<APInt>()) {
    int64_t i = v.getSExtValue(), n = size(flat);
    if (i < -n || i >= n)
      return im.nodeError(node) << "index " << i << " at " << where(flat) << " is out of range ["
                                << -n << ", " << n << ")";
    ++flat;
  }
  return success();
}

/// The position of element `flat` of a tensor of `shape`, as "[i, j, ...]".
std::string positionOf(ArrayRef<int64_t> shape, int64_t flat) {
  SmallVector<int64_t> at(shape.size());
  for (int64_t d = shape.size() - 1; d >= 0; --d) {
    at[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "indices[";
  for (auto [k, i] : llvm::enumerate(at))
    s += (k ? ", " : "") + std::to_string(i);
  return s + "]";
}

/// GatherElements' and ScatterElements' axis, normalized, with the constant
/// indices checked along it.
FailureOr<int64_t> elementsAxis(GraphImporter &im, const ::onnx::NodeProto &node, Value data,
                                Value indices) {
  auto axisAttr = im.intAttr(node, "axis", 0);
  if (failed(axisAttr))
    return failure();
  auto dataType = cast<RankedTensorType>(data.getType());
  auto axis = normalizeAxis(*axisAttr, dataType.getRank());
  if (!axis)
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range";
  auto shape = cast<RankedTensorType>(indices.getType()).getShape();
  if (shape.size() != size_t(dataType.getRank()))
    return im.nodeError(node) << "indices must have data's rank";
  if (failed(checkIndices(
          im, node, indices, [&](int64_t) { return dataType.getDimSize(*axis); },
          [&](int64_t flat) { return positionOf(shape, flat); })))
    return failure();
  return *axis;
}

FailureOr<Value> importGatherElements(GraphImporter &im, const ::onnx::NodeProto &node,
                                      const Operands &in) {
  auto axis = elementsAxis(im, node, in.inputs[0], in.inputs[1]);
  if (failed(axis))
    return failure();
  return onnx::GatherElementsOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0],
                                        in.inputs[1], im.builder.getI64IntegerAttr(*axis))
      .getResult();
}

/// ScatterElements' and ScatterND's reduction: "none" (also where the
/// opset has no such attribute), "add" or "mul".
FailureOr<std::string> scatterReduction(GraphImporter &im, const ::onnx::NodeProto &node) {
  const SupportedOp *row = findSupportedOp(node.domain(), node.op_type(), im.opset);
  if (!row || !row->findAttribute("reduction"))
    return std::string("none");
  auto reduction = im.stringAttr(node, "reduction", "none");
  if (failed(reduction))
    return failure();
  if (*reduction != "none" && *reduction != "add" && *reduction != "mul")
    return im.nodeError(node) << "reduction '" << *reduction
                              << "' is not supported (only none, add and mul)";
  return reduction;
}

/// ScatterElements, and Scatter (its name before opset 11).
FailureOr<Value> importScatterElements(GraphImporter &im, const ::onnx::NodeProto &node,
                                       const Operands &in) {
  auto axis = elementsAxis(im, node, in.inputs[0], in.inputs[1]);
  auto reduction = scatterReduction(im, node);
  if (failed(axis) || failed(reduction))
    return failure();
  OpBuilder &b = im.builder;
  return onnx::ScatterElementsOp::create(b, im.nodeLoc(node), in.result, in.inputs[0], in.inputs[1],
                                         in.inputs[2], b.getI64IntegerAttr(*axis),
                                         b.getStringAttr(*reduction))
      .getResult();
}

/// GatherND's and ScatterND's constant index tuples, each index checked
/// against the dimension of data it indexes.
LogicalResult checkTuples(GraphImporter &im, const ::onnx::NodeProto &node, Value data,
                          Value indices) {
  auto dataType = cast<RankedTensorType>(data.getType());
  auto shape = cast<RankedTensorType>(indices.getType()).getShape();
  if (shape.empty() || shape.back() < 1 || shape.back() > dataType.getRank())
    return im.nodeError(node) << "the last dimension of indices must be in [1, rank of data]";
  int64_t k = shape.back();
  return checkIndices(
      im, node, indices, [&](int64_t flat) { return dataType.getDimSize(flat % k); },
      [&](int64_t flat) {
        return positionOf(shape, flat) + " (dimension " + std::to_string(flat % k) + " of data)";
      });
}

FailureOr<Value> importGatherND(GraphImporter &im, const ::onnx::NodeProto &node,
                                const Operands &in) {
  auto batchDims = im.intAttr(node, "batch_dims", 0);
  if (failed(batchDims))
    return failure();
  if (*batchDims != 0)
    return im.nodeError(node) << "batch_dims " << *batchDims << " is not supported (only 0)";
  if (failed(checkTuples(im, node, in.inputs[0], in.inputs[1])))
    return failure();
  return onnx::GatherNDOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0],
                                  in.inputs[1])
      .getResult();
}

FailureOr<Value> importScatterND(GraphImporter &im, const ::onnx::NodeProto &node,
                                 const Operands &in) {
  auto reduction = scatterReduction(im, node);
  if (failed(reduction) || failed(checkTuples(im, node, in.inputs[0], in.inputs[1])))
    return failure();
  return onnx::ScatterNDOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs[0],
                                   in.inputs[1], in.inputs[2], im.builder.getStringAttr(*reduction))
      .getResult();
}

/// Whether ONNX gives value `name` a static shape (inferred or declared).
bool hasStaticShape(GraphImporter &im, const std::string &name) {
  const ::onnx::TypeProto *type = im.valueType(name);
  if (!type || !type->tensor_type().has_shape())
    return false;
  return llvm::all_of(type->tensor_type().shape().dim(),
                      [](const auto &dim) { return dim.has_dim_value(); });
}

/// TopK from opset 10 (K an input): K folds into the result types; a K not
/// known at compile time is kept as an operand where the outputs' declared
/// shapes fix it, and checked at run time.
LogicalResult importTopK(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto axisAttr = im.intAttr(node, "axis", -1);
  auto largest = im.intAttr(node, "largest", 1);
  auto sorted = im.intAttr(node, "sorted", 1);
  if (failed(axisAttr) || failed(largest) || failed(sorted))
    return failure();
  if (node.input_size() < 2 || node.input(1).empty())
    return im.nodeError(node) << "expects a K input";
  auto x = im.lookup(node.input(0), &node);
  if (failed(x))
    return failure();
  auto type = cast<RankedTensorType>(x->getType());
  if (!type.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT inputs are supported";
  auto axis = normalizeAxis(*axisAttr, type.getRank());
  if (!axis)
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range";
  // K folds where it is known at compile time (a constant, a shape
  // computation); else it is the value the graph computes, and an output's
  // static shape (declared) gives it.
  int64_t n = type.getDimSize(*axis), k;
  std::optional<SmallVector<int64_t>> ks = im.knownInts(node.input(1));
  Value kOperand;
  if (ks) {
    if (ks->size() != 1)
      return im.nodeError(node) << "K must have one value";
    k = (*ks)[0];
  } else {
    int fixed = hasStaticShape(im, node.output(0))                                        ? 0
                : GraphImporter::hasOutput(node, 1) && hasStaticShape(im, node.output(1)) ? 1
                                                                                          : -1;
    if (fixed < 0)
      return im.nodeError(node) << "K must be a compile-time constant (or fixed by the outputs' "
                                   "declared shapes)";
    auto fixedType = im.outputType(node, fixed);
    auto kValue = im.lookup(node.input(1), &node);
    if (failed(fixedType) || failed(kValue))
      return failure();
    auto kType = cast<RankedTensorType>(kValue->getType());
    if (kType.getNumElements() != 1 || !kType.getElementType().isInteger(64))
      return im.nodeError(node) << "K must be one INT64 value";
    if (fixedType->getRank() != type.getRank())
      return im.nodeError(node) << "the outputs must have the input's rank";
    k = fixedType->getDimSize(*axis);
    kOperand = *kValue;
  }
  if (k < 1 || k > n)
    return im.nodeError(node) << "K = " << k << " must be in [1, " << n << "]";
  SmallVector<int64_t> shape(type.getShape());
  shape[*axis] = k;
  OpBuilder &b = im.builder;
  auto topk = onnx::TopKOp::create(
      b, im.nodeLoc(node), TypeRange{type.clone(shape), type.clone(shape).clone(b.getI64Type())},
      *x, kOperand, b.getI64IntegerAttr(*axis), b.getBoolAttr(*largest != 0),
      b.getBoolAttr(*sorted != 0));
  for (int i = 0; i < 2; ++i) {
    if (!GraphImporter::hasOutput(node, i))
      continue;
    // ONNX leaves a type it could not infer open; where it has one, it
    // must be the one built.
    auto inferred =
        hasStaticShape(im, node.output(i))
            ? im.outputType(node, i)
            : FailureOr<RankedTensorType>(cast<RankedTensorType>(topk->getResult(i).getType()));
    if (failed(inferred))
      return failure();
    if (*inferred != topk->getResult(i).getType())
      return im.nodeError(node) << "imported type " << topk->getResult(i).getType()
                                << " differs from the inferred type " << *inferred;
    im.setOutput(node, i, topk->getResult(i));
  }
  return success();
}

FailureOr<Value> importConcat(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in) {
  auto axis = im.intAttr(node, "axis", 0);
  if (failed(axis))
    return failure();
  return onnx::ConcatOp::create(im.builder, im.nodeLoc(node), in.result, in.inputs,
                                im.builder.getI64IntegerAttr(*axis))
      .getResult();
}

LogicalResult importSplit(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto input = im.lookup(node.input(0), &node);
  if (failed(input))
    return failure();
  auto type = cast<RankedTensorType>(input->getType());
  auto axisAttr = im.intAttr(node, "axis", 0);
  if (failed(axisAttr))
    return failure();
  if (*axisAttr < -type.getRank() || *axisAttr >= type.getRank())
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range";
  int64_t axis = *axisAttr < 0 ? *axisAttr + type.getRank() : *axisAttr;
  // Each output's size along the axis is the type shape inference found.
  SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1);
  for (int i = 0; i < node.output_size(); ++i) {
    auto resultType = im.outputType(node, i);
    if (failed(resultType))
      return failure();
    if (GraphImporter::hasOutput(node, i))
      im.setOutput(node, i,
                   onnx::SliceOp::create(im.builder, im.nodeLoc(node), *resultType, *input,
                                         im.builder.getDenseI64ArrayAttr(starts),
                                         im.builder.getDenseI64ArrayAttr(steps)));
    starts[axis] += resultType->getDimSize(axis);
  }
  return success();
}

LogicalResult importSlice(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto input = im.lookup(node.input(0), &node);
  if (failed(input))
    return failure();
  auto in = cast<RankedTensorType>(input->getType());
  auto ints = [&](int i) -> FailureOr<SmallVector<int64_t>> {
    if (i >= node.input_size() || node.input(i).empty())
      return SmallVector<int64_t>();
    return im.constantInts(node.input(i), node);
  };
  auto starts = ints(1), ends = ints(2), axes = ints(3), steps = ints(4);
  if (failed(starts) || failed(ends) || failed(axes) || failed(steps))
    return failure();
  if (ends->size() != starts->size())
    return im.nodeError(node) << "starts and ends differ in length";
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
      return im.nodeError(node) << "only in-range axes and positive steps are supported";
    int64_t dim = in.getDimSize(axis), start = (*starts)[i], end = (*ends)[i];
    start = std::clamp<int64_t>(start < 0 ? start + dim : start, 0, dim);
    end = std::clamp<int64_t>(end < 0 ? end + dim : end, 0, dim);
    fullStarts[axis] = start;
    fullSteps[axis] = step;
    shape[axis] = end > start ? (end - start + step - 1) / step : 0;
  }
  im.setOutput(node, 0,
               onnx::SliceOp::create(im.builder, im.nodeLoc(node), in.clone(shape), *input,
                                     im.builder.getDenseI64ArrayAttr(fullStarts),
                                     im.builder.getDenseI64ArrayAttr(fullSteps)));
  return success();
}

/// Softmax and LogSoftmax over `axis`; `coerceTo2D` (before opset 13)
/// flattens the input to 2-D at `axis` (default 1) and normalizes over
/// everything from there on.
FailureOr<Value> buildSoftmax(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in, bool coerceTo2D) {
  Location loc = im.nodeLoc(node);
  Value x = in.inputs[0];
  auto type = cast<RankedTensorType>(x.getType());
  auto axisAttr = im.intAttr(node, "axis", coerceTo2D ? 1 : -1);
  if (failed(axisAttr))
    return failure();
  int64_t axis = *axisAttr, rank = type.getRank();
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    return im.nodeError(node) << "axis " << axis << " is out of range";
  if (axis < 0)
    axis += rank;
  bool coerce = coerceTo2D && axis != rank - 1;
  if (coerce) {
    int64_t outer = 1;
    for (int64_t d : type.getShape().take_front(axis))
      outer *= d;
    x = onnx::ReshapeOp::create(im.builder, loc,
                                type.clone({outer, type.getNumElements() / outer}), x);
  }
  auto normalized = im.builder.getI64IntegerAttr(coerce ? 1 : axis);
  Value out = node.op_type() == "Softmax"
                  ? onnx::SoftmaxOp::create(im.builder, loc, x, normalized).getResult()
                  : onnx::LogSoftmaxOp::create(im.builder, loc, x, normalized).getResult();
  if (coerce)
    out = onnx::ReshapeOp::create(im.builder, loc, type, out);
  return out;
}

FailureOr<Value> importCoercedSoftmax(GraphImporter &im, const ::onnx::NodeProto &node,
                                      const Operands &in) {
  return buildSoftmax(im, node, in, /*coerceTo2D=*/true);
}

FailureOr<Value> importSoftmax(GraphImporter &im, const ::onnx::NodeProto &node,
                               const Operands &in) {
  return buildSoftmax(im, node, in, /*coerceTo2D=*/false);
}

/// SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss.
FailureOr<Value> importLoss(GraphImporter &im, const ::onnx::NodeProto &node,
                            const Operands &in) {
  auto reduction = im.stringAttr(node, "reduction", "mean");
  auto ignore = im.optionalIntAttr(node, "ignore_index");
  if (failed(reduction) || failed(ignore))
    return failure();
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  IntegerAttr ignoreIndex = *ignore ? b.getI64IntegerAttr(**ignore) : IntegerAttr(); // none unless given
  auto reductionAttr = b.getStringAttr(*reduction);
  Value weights = in.optional(2);
  if (node.op_type() == "NegativeLogLikelihoodLoss")
    return onnx::NegativeLogLikelihoodLossOp::create(b, loc, in.result, in.inputs[0],
                                                     in.inputs[1], weights, reductionAttr,
                                                     ignoreIndex)
        .getResult();
  SmallVector<Type> types{in.result};
  if (GraphImporter::hasOutput(node, 1)) {
    auto logProb = im.outputType(node, 1);
    if (failed(logProb))
      return failure();
    types.push_back(*logProb);
  }
  auto loss = onnx::SoftmaxCrossEntropyLossOp::create(b, loc, types, in.inputs[0], in.inputs[1],
                                                      weights, reductionAttr, ignoreIndex);
  if (types.size() > 1)
    im.setOutput(node, 1, loss.getLogProb());
  return loss.getLoss();
}

/// The reductions with a dialect op of their name (ReduceSum, ReduceMean,
/// ReduceMax, ReduceMin, ReduceProd, ReduceL2) over `axes` (none: every
/// axis, or none at all with `noopWithEmptyAxes`).
FailureOr<Value> buildReduce(GraphImporter &im, const ::onnx::NodeProto &node,
                             const Operands &in, ArrayRef<int64_t> axes, bool noopWithEmptyAxes) {
  auto keepdims = im.intAttr(node, "keepdims", 1);
  if (failed(keepdims))
    return failure();
  if (axes.empty() && noopWithEmptyAxes)
    return in.inputs[0];
  if (!in.result.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT tensors are supported";
  OpBuilder &b = im.builder;
  OperationState state(im.nodeLoc(node), ("onnx." + node.op_type()).c_str());
  state.addOperands(in.inputs[0]);
  state.addTypes(in.result);
  state.addAttribute("axes", b.getDenseI64ArrayAttr(axes));
  state.addAttribute("keepdims", b.getBoolAttr(*keepdims));
  return b.create(state)->getResult(0);
}

/// Axes as an attribute: ReduceMean, ReduceMax, ReduceMin, ReduceProd,
/// ReduceL2, and ReduceSum before opset 13.
FailureOr<Value> importReduce(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in) {
  auto axes = im.intsAttr(node, "axes");
  if (failed(axes))
    return failure();
  return buildReduce(im, node, in, *axes, /*noopWithEmptyAxes=*/false);
}

/// log(sum(exp(x))) as m + log(sum(exp(x - m))), m the maximum: exact for
/// large inputs, and its gradient is softmax(x) (the maximum's part cancels).
FailureOr<Value> importReduceLogSumExp(GraphImporter &im, const ::onnx::NodeProto &node,
                                       const Operands &in) {
  auto axes = im.intsAttr(node, "axes");
  auto keepdims = im.intAttr(node, "keepdims", 1);
  if (failed(axes) || failed(keepdims))
    return failure();
  Value x = in.inputs[0];
  auto type = cast<RankedTensorType>(x.getType());
  if (!type.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT tensors are supported";
  SmallVector<bool> reduced(type.getRank(), axes->empty());
  for (int64_t axis : *axes) {
    auto normalized = normalizeAxis(axis, type.getRank());
    if (!normalized)
      return im.nodeError(node) << "axis " << axis << " is out of range";
    reduced[*normalized] = true;
  }
  SmallVector<int64_t> kept;
  for (int64_t i = 0; i < type.getRank(); ++i)
    kept.push_back(reduced[i] ? 1 : type.getDimSize(i));
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  auto axesAttr = b.getDenseI64ArrayAttr(*axes);
  auto keptType = type.clone(kept);
  Value max = onnx::ReduceMaxOp::create(b, loc, keptType, x, axesAttr, b.getBoolAttr(true));
  Value shifted = onnx::SubOp::create(b, loc, type, x, max);
  Value sum = onnx::ReduceSumOp::create(b, loc, in.result, onnx::ExpOp::create(b, loc, shifted),
                                        axesAttr, b.getBoolAttr(*keepdims));
  if (keptType != in.result)
    max = onnx::ReshapeOp::create(b, loc, in.result, max);
  return onnx::AddOp::create(b, loc, in.result, onnx::LogOp::create(b, loc, sum), max).getResult();
}

/// ArgMax and ArgMin.
FailureOr<Value> importArgReduce(GraphImporter &im, const ::onnx::NodeProto &node,
                                 const Operands &in) {
  auto axis = im.intAttr(node, "axis", 0);
  auto keepdims = im.intAttr(node, "keepdims", 1);
  auto last = im.intAttr(node, "select_last_index", 0);
  if (failed(axis) || failed(keepdims) || failed(last))
    return failure();
  auto type = cast<RankedTensorType>(in.inputs[0].getType());
  if (!type.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT inputs are supported";
  if (!normalizeAxis(*axis, type.getRank()))
    return im.nodeError(node) << "axis " << *axis << " is out of range";
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  auto create = [&](auto tag) {
    return decltype(tag)::create(b, loc, in.result, in.inputs[0], b.getI64IntegerAttr(*axis),
                                 b.getBoolAttr(*keepdims), b.getBoolAttr(*last))
        .getResult();
  };
  return node.op_type() == "ArgMax" ? create(onnx::ArgMaxOp()) : create(onnx::ArgMinOp());
}

FailureOr<Value> importCumSum(GraphImporter &im, const ::onnx::NodeProto &node,
                              const Operands &in) {
  auto exclusive = im.intAttr(node, "exclusive", 0);
  auto reverse = im.intAttr(node, "reverse", 0);
  if (failed(exclusive) || failed(reverse))
    return failure();
  if (node.input_size() < 2 || node.input(1).empty())
    return im.nodeError(node) << "expects an axis input";
  auto axis = im.constantInts(node.input(1), node);
  if (failed(axis))
    return failure();
  int64_t rank = cast<RankedTensorType>(in.inputs[0].getType()).getRank();
  if (axis->size() != 1 || !normalizeAxis((*axis)[0], rank))
    return im.nodeError(node) << "the axis must be one value in [-rank, rank)";
  OpBuilder &b = im.builder;
  return onnx::CumSumOp::create(b, im.nodeLoc(node), in.result, in.inputs[0],
                                b.getI64IntegerAttr((*axis)[0]), b.getBoolAttr(*exclusive),
                                b.getBoolAttr(*reverse))
      .getResult();
}

/// Tile as a broadcast: each repeated dimension d (r copies) becomes
/// [1, d] expanded to [r, d], runs of unrepeated ones one dimension; the
/// gradient sums the copies (Expand's).
FailureOr<Value> importTile(GraphImporter &im, const ::onnx::NodeProto &node, const Operands &in) {
  if (node.input_size() < 2 || node.input(1).empty())
    return im.nodeError(node) << "expects a repeats input";
  auto repeats = im.constantInts(node.input(1), node);
  if (failed(repeats))
    return failure();
  Value x = in.inputs[0];
  auto type = cast<RankedTensorType>(x.getType());
  if (static_cast<int64_t>(repeats->size()) != type.getRank())
    return im.nodeError(node) << "repeats has " << repeats->size() << " values for rank "
                              << type.getRank();
  SmallVector<int64_t> source, expanded;
  bool merge = false; // the last dimension is a run of unrepeated ones
  for (auto [d, r] : llvm::zip(type.getShape(), *repeats)) {
    if (r < 1)
      return im.nodeError(node) << "repeats must be positive, got " << r;
    if (r == 1 && merge) {
      source.back() *= d;
      expanded.back() *= d;
      continue;
    }
    if (r != 1) {
      source.push_back(1);
      expanded.push_back(r);
    }
    source.push_back(d);
    expanded.push_back(d);
    merge = r == 1;
  }
  constexpr size_t kMaxRank = 8; // the runtime's
  if (expanded.size() > kMaxRank)
    return im.nodeError(node) << "tiling needs " << expanded.size()
                              << " dimensions; at most 8 are supported";
  if (llvm::equal(*repeats, SmallVector<int64_t>(repeats->size(), 1)))
    return x;
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  Value v = onnx::ReshapeOp::create(b, loc, type.clone(source), x);
  v = onnx::ExpandOp::create(b, loc, type.clone(expanded), v);
  return onnx::ReshapeOp::create(b, loc, in.result, v).getResult();
}

/// Whether Trilu keeps element [i, j] (diagonal offset k).
bool triluKeeps(bool upper, int64_t k, int64_t i, int64_t j) {
  return upper ? j - i >= k : j - i <= k;
}

/// Trilu as Where(mask, x, 0), the mask over the last two dimensions a
/// constant; the gradient passes through the same mask (Where's).
FailureOr<Value> importTrilu(GraphImporter &im, const ::onnx::NodeProto &node, const Operands &in) {
  auto upper = im.intAttr(node, "upper", 1);
  if (failed(upper))
    return failure();
  int64_t k = 0;
  if (node.input_size() > 1 && !node.input(1).empty()) {
    auto ints = im.constantInts(node.input(1), node);
    if (failed(ints))
      return failure();
    if (ints->size() != 1)
      return im.nodeError(node) << "k must be one value";
    k = (*ints)[0];
  }
  Value x = in.inputs[0];
  auto type = cast<RankedTensorType>(x.getType());
  if (type.getRank() < 2)
    return im.nodeError(node) << "the input must have rank 2 or more";
  int64_t rows = type.getShape().end()[-2], cols = type.getShape().back();
  SmallVector<int64_t> mask;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      mask.push_back(triluKeeps(*upper != 0, k, i, j));
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  auto maskType = RankedTensorType::get({rows, cols}, b.getI64Type());
  Value maskValue =
      onnx::ConstantOp::create(b, loc, DenseElementsAttr::get(maskType, ArrayRef<int64_t>(mask)));
  auto scalar = RankedTensorType::get({}, type.getElementType());
  Value zero = onnx::ConstantOp::create(b, loc,
                                        type.getElementType().isF32()
                                            ? DenseElementsAttr::get(scalar, 0.0f)
                                            : DenseElementsAttr::get(scalar, int64_t(0)));
  return onnx::WhereOp::create(b, loc, in.result, maskValue, x, zero).getResult();
}

/// ReduceSum from opset 13: axes as an optional constant input.
FailureOr<Value> importReduceSumAxesInput(GraphImporter &im, const ::onnx::NodeProto &node,
                                          const Operands &in) {
  auto noop = im.intAttr(node, "noop_with_empty_axes", 0);
  if (failed(noop))
    return failure();
  SmallVector<int64_t> axes;
  if (node.input_size() > 1 && !node.input(1).empty()) {
    auto ints = im.constantInts(node.input(1), node);
    if (failed(ints))
      return failure();
    axes = *ints;
  }
  return buildReduce(im, node, in, axes, *noop != 0);
}

FailureOr<Value> importLayerNormalization(GraphImporter &im, const ::onnx::NodeProto &node,
                                          const Operands &in) {
  auto axisAttr = im.intAttr(node, "axis", -1);
  auto epsilon = im.floatAttr(node, "epsilon", 1e-5f);
  auto stashType = im.intAttr(node, "stash_type", 1);
  if (failed(axisAttr) || failed(epsilon) || failed(stashType))
    return failure();
  // stash_type 1 computes the statistics in float, as zero always does.
  if (*stashType != 1)
    return im.nodeError(node) << "stash_type " << *stashType
                              << " is not supported; zero computes the statistics in FLOAT "
                                 "(stash_type 1)";
  RankedTensorType type = in.result;
  if (*axisAttr < -type.getRank() || *axisAttr >= type.getRank())
    return im.nodeError(node) << "axis " << *axisAttr << " is out of range";
  int64_t axis = *axisAttr < 0 ? *axisAttr + type.getRank() : *axisAttr;
  SmallVector<int64_t> stats(type.getShape().take_front(axis));
  stats.append(type.getRank() - axis, 1);
  auto statsType = type.clone(stats);
  OpBuilder &b = im.builder;
  auto norm = onnx::LayerNormalizationOp::create(
      b, im.nodeLoc(node), TypeRange{type, statsType, statsType}, in.inputs[0], in.inputs[1],
      in.optional(2), b.getI64IntegerAttr(axis), b.getF32FloatAttr(*epsilon));
  for (int i = 1; i < 3; ++i)
    im.setOutput(node, i, norm->getResult(i));
  return norm.getResult();
}

/// Whether `v` is a constant whose every element is `element`.
bool isConstantFill(Value v, float element) {
  DenseElementsAttr value;
  return matchPattern(v, m_Constant(&value)) && value.getElementType().isF32() &&
         llvm::all_of(value.getValues<float>(), [&](float x) { return x == element; });
}

/// InstanceNormalization of [N, C, D1, ...] as LayerNormalization of its
/// [N, C, D1·...] view over the last axis, with a unit scale, then the
/// per-channel scale and bias as broadcast Mul and Add ([C, 1]): the
/// gradients are LayerNormalization's (dinput alone, the unit scale being a
/// constant) and those of Mul and Add. A unit scale and zero bias are left
/// out (PyTorch's GroupNorm export passes them).
FailureOr<Value> importInstanceNormalization(GraphImporter &im, const ::onnx::NodeProto &node,
                                             const Operands &in) {
  auto epsilon = im.floatAttr(node, "epsilon", 1e-5f);
  if (failed(epsilon))
    return failure();
  RankedTensorType type = in.result;
  if (type.getRank() < 3)
    return im.nodeError(node) << "the input must be [N, C, D1, ...], got rank "
                              << type.getRank();
  const int64_t channels = type.getDimSize(1);
  for (int i = 1; i < 3; ++i)
    if (cast<RankedTensorType>(in.inputs[i].getType()).getShape() != ArrayRef<int64_t>{channels})
      return im.nodeError(node) << (i == 1 ? "scale" : "B") << " must have the input's "
                                << channels << " channels";
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  const int64_t spatial = ShapedType::getNumElements(type.getShape().drop_front(2));
  auto flatType = type.clone({type.getDimSize(0), channels, spatial});
  Value x = in.inputs[0];
  if (type != flatType)
    x = onnx::ReshapeOp::create(b, loc, flatType, x);
  auto unitType = RankedTensorType::get({spatial}, b.getF32Type());
  Value unitScale = onnx::ConstantOp::create(b, loc, DenseElementsAttr::get(unitType, 1.0f));
  auto statsType = flatType.clone({type.getDimSize(0), channels, 1});
  Value y = onnx::LayerNormalizationOp::create(b, loc, TypeRange{flatType, statsType, statsType}, x,
                                               unitScale, Value(), b.getI64IntegerAttr(2),
                                               b.getF32FloatAttr(*epsilon))
                .getResult();
  auto perChannel = RankedTensorType::get({channels, 1}, b.getF32Type());
  if (!isConstantFill(in.inputs[1], 1.0f))
    y = onnx::MulOp::create(b, loc, flatType, y,
                            onnx::ReshapeOp::create(b, loc, perChannel, in.inputs[1]));
  if (!isConstantFill(in.inputs[2], 0.0f))
    y = onnx::AddOp::create(b, loc, flatType, y,
                            onnx::ReshapeOp::create(b, loc, perChannel, in.inputs[2]));
  return type == flatType ? y : onnx::ReshapeOp::create(b, loc, type, y).getResult();
}

/// Sliding windows over 1 to 3 spatial dimensions (Conv, ConvTranspose and
/// the pools) with ONNX's defaults.
struct Window {
  SmallVector<int64_t> kernel, strides, pads, dilations;
  std::string autoPad;
  SmallVector<int64_t> inputSpatial;
  int64_t rank() const { return static_cast<int64_t>(kernel.size()); }
};

/// Reads the window attributes, with VALID padding resolved (SAME_* is each
/// op's: resolveSamePads, importConvTranspose); fails on what zero does not
/// model (other auto_pad values, storage_order).
FailureOr<Window> windowAttributes(GraphImporter &im, const ::onnx::NodeProto &node) {
  const ::onnx::TypeProto *type = im.valueType(node.input(0));
  if (!type || !type->tensor_type().has_shape())
    return im.nodeError(node) << "the input has no static shape";
  const auto &shape = type->tensor_type().shape();
  const int64_t rank = shape.dim_size() - 2;
  if (rank < 1 || rank > 3)
    return im.nodeError(node) << "only 1-D to 3-D (NCL, NCHW, NCDHW) windows are supported";
  const bool conv = node.op_type() == "Conv" || node.op_type() == "ConvTranspose";
  const ::onnx::TypeProto *weight = conv ? im.valueType(node.input(1)) : nullptr;
  // A convolution's kernel_shape defaults to the weights' spatial dimensions.
  SmallVector<int64_t> weightKernel;
  if (weight && weight->tensor_type().shape().dim_size() == rank + 2)
    for (int64_t i = 0; i < rank; ++i)
      weightKernel.push_back(weight->tensor_type().shape().dim(2 + i).dim_value());
  SmallVector<int64_t> ones(rank, 1), zeros(2 * rank, 0);
  auto autoPadAttr = im.stringAttr(node, "auto_pad", "NOTSET");
  auto kernelAttr = im.intsAttr(node, "kernel_shape", weightKernel);
  auto stridesAttr = im.intsAttr(node, "strides", ones);
  auto padsAttr = im.intsAttr(node, "pads", zeros);
  // AveragePool has dilations only from opset 19.
  auto dilationsAttr = node.op_type() == "AveragePool" ? FailureOr<SmallVector<int64_t>>(ones)
                                                       : im.intsAttr(node, "dilations", ones);
  // storage_order lays out MaxPool's Indices output, which zero does not have.
  auto storageOrder = node.op_type() == "MaxPool" ? im.intAttr(node, "storage_order", 0)
                                                  : FailureOr<int64_t>(0);
  if (failed(autoPadAttr) || failed(kernelAttr) || failed(stridesAttr) || failed(padsAttr) ||
      failed(dilationsAttr) || failed(storageOrder))
    return failure();
  if (*storageOrder != 0)
    return im.nodeError(node) << "attribute storage_order is not supported";
  Window w{*kernelAttr, *stridesAttr, *padsAttr, *dilationsAttr, *autoPadAttr, {}};
  for (int64_t i = 0; i < rank; ++i)
    w.inputSpatial.push_back(shape.dim(2 + i).dim_value());
  if (w.rank() != rank || static_cast<int64_t>(w.strides.size()) != rank ||
      static_cast<int64_t>(w.pads.size()) != 2 * rank ||
      static_cast<int64_t>(w.dilations.size()) != rank)
    return im.nodeError(node) << "expected " << rank
                              << "-D kernel_shape, strides and dilations and " << 2 * rank
                              << " pads for a " << rank << "-D input";
  if (w.autoPad == "VALID")
    w.pads.assign(2 * rank, 0);
  else if (w.autoPad != "NOTSET" && w.autoPad != "SAME_UPPER" && w.autoPad != "SAME_LOWER")
    return im.nodeError(node) << "auto_pad " << w.autoPad << " is not supported";
  return w;
}

/// Splits each axis' `total` padding over its begin and end: the odd
/// element goes at the end with SAME_UPPER, at the beginning otherwise.
void splitPadding(Window &w, int64_t axis, int64_t total) {
  int64_t small = total / 2, large = total - small;
  w.pads[axis] = w.autoPad == "SAME_UPPER" ? small : large;
  w.pads[axis + w.rank()] = w.autoPad == "SAME_UPPER" ? large : small;
}

/// Conv and the pools: SAME_* pads for an output of ceil(in / stride).
void resolveSamePads(Window &w) {
  if (w.autoPad != "SAME_UPPER" && w.autoPad != "SAME_LOWER")
    return;
  for (int64_t i = 0; i < w.rank(); ++i) {
    int64_t in = w.inputSpatial[i];
    int64_t out = (in + w.strides[i] - 1) / w.strides[i];
    splitPadding(w, i,
                 std::max<int64_t>(
                     (out - 1) * w.strides[i] + w.dilations[i] * (w.kernel[i] - 1) + 1 - in, 0));
  }
}

FailureOr<Value> importConv(GraphImporter &im, const ::onnx::NodeProto &node,
                            const Operands &in) {
  auto window = windowAttributes(im, node);
  if (failed(window))
    return failure();
  resolveSamePads(*window);
  auto group = im.intAttr(node, "group", 1);
  if (failed(group))
    return failure();
  OpBuilder &b = im.builder;
  return onnx::ConvOp::create(b, im.nodeLoc(node), in.result, in.inputs[0], in.inputs[1],
                              in.optional(2), b.getDenseI64ArrayAttr(window->strides),
                              b.getDenseI64ArrayAttr(window->pads),
                              b.getDenseI64ArrayAttr(window->dilations),
                              b.getI64IntegerAttr(*group))
      .getResult();
}

/// MaxPool and AveragePool.
FailureOr<Value> importPool(GraphImporter &im, const ::onnx::NodeProto &node,
                            const Operands &in) {
  auto window = windowAttributes(im, node);
  if (failed(window))
    return failure();
  resolveSamePads(*window);
  bool average = node.op_type() == "AveragePool";
  auto ceilModeAttr = im.intAttr(node, "ceil_mode", 0);
  auto countIncludePad =
      average ? im.intAttr(node, "count_include_pad", 0) : FailureOr<int64_t>(0);
  if (failed(ceilModeAttr) || failed(countIncludePad))
    return failure();
  const Window &w = *window;
  ArrayRef<int64_t> kernel = w.kernel, strides = w.strides, pads = w.pads, dilations = w.dilations;
  bool ceilMode = *ceilModeAttr != 0;
  if (ceilMode) {
    // ONNX before opset 19 (and its shape inference here) keeps a last
    // window that starts in the end padding; PyTorch and opset 19 drop it.
    for (int64_t i = 0; i < w.rank(); ++i) {
      int64_t size = windowOutputSize(w.inputSpatial[i], pads[i], pads[i + w.rank()],
                                      dilations[i] * (kernel[i] - 1) + 1, strides[i], true);
      if (size >= 0 && in.result.getDimSize(2 + i) != size)
        return im.nodeError(node)
               << "ceil_mode: ONNX infers a last window that starts in the end "
                  "padding; zero drops it, as PyTorch and opset 19 do";
    }
  }
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  if (average)
    return onnx::AveragePoolOp::create(b, loc, in.result, in.inputs[0],
                                       b.getDenseI64ArrayAttr(kernel),
                                       b.getDenseI64ArrayAttr(strides),
                                       b.getDenseI64ArrayAttr(pads),
                                       b.getBoolAttr(*countIncludePad), b.getBoolAttr(ceilMode))
        .getResult();
  if (GraphImporter::hasOutput(node, 1))
    return im.nodeError(node) << "the Indices output is not supported";
  auto argmaxType = RankedTensorType::get(in.result.getShape(), b.getI64Type());
  // Undilated windows leave the attribute out, so their plans stay as before.
  bool dilated = llvm::any_of(dilations, [](int64_t d) { return d != 1; });
  return onnx::MaxPoolOp::create(b, loc, TypeRange{in.result, argmaxType}, in.inputs[0],
                                 b.getDenseI64ArrayAttr(kernel), b.getDenseI64ArrayAttr(strides),
                                 b.getDenseI64ArrayAttr(pads), b.getBoolAttr(ceilMode),
                                 dilated ? b.getDenseI64ArrayAttr(dilations) : DenseI64ArrayAttr())
      .getResult();
}

/// ConvTranspose as the adjoint of a Conv from its output to its input,
/// whose padding comes from pads, auto_pad or output_shape; the positions
/// output_padding (or an output_shape past the windows' reach) adds at the
/// end are those no window of that Conv reads. A bias is added after.
FailureOr<Value> importConvTranspose(GraphImporter &im, const ::onnx::NodeProto &node,
                                     const Operands &in) {
  auto window = windowAttributes(im, node);
  if (failed(window))
    return failure();
  Window &w = *window;
  const int64_t rank = w.rank();
  auto group = im.intAttr(node, "group", 1);
  auto outputPadding = im.intsAttr(node, "output_padding", SmallVector<int64_t>(rank, 0));
  auto outputShape = im.intsAttr(node, "output_shape", {});
  if (failed(group) || failed(outputPadding) || failed(outputShape))
    return failure();
  if (static_cast<int64_t>(outputPadding->size()) != rank ||
      (!outputShape->empty() && static_cast<int64_t>(outputShape->size()) != rank))
    return im.nodeError(node) << "output_padding and output_shape need " << rank
                              << " entries for a " << rank << "-D input";
  for (int64_t i = 0; i < rank; ++i) {
    // The size the windows reach without padding.
    int64_t covered =
        w.strides[i] * (w.inputSpatial[i] - 1) + w.dilations[i] * (w.kernel[i] - 1) + 1;
    int64_t extra = (*outputPadding)[i];
    if (!outputShape->empty() || w.autoPad == "SAME_UPPER" || w.autoPad == "SAME_LOWER") {
      int64_t out = outputShape->empty() ? w.inputSpatial[i] * w.strides[i] : (*outputShape)[i];
      int64_t total = covered + extra - out;
      // An output larger than the windows reach ends in unread positions.
      if (total < 0)
        extra = -total, total = 0;
      else
        extra = 0;
      splitPadding(w, i, total);
    }
    if (extra < 0 || extra >= w.strides[i])
      return im.nodeError(node) << "output padding " << extra << " of spatial axis " << i
                                << " must be in [0, stride " << w.strides[i]
                                << "): zero computes ConvTranspose as a Conv's adjoint";
  }
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  Value y = onnx::ConvTransposeOp::create(
      b, loc, in.result, in.inputs[0], in.inputs[1], b.getDenseI64ArrayAttr(w.strides),
      b.getDenseI64ArrayAttr(w.pads), b.getDenseI64ArrayAttr(w.dilations),
      b.getI64IntegerAttr(*group));
  Value bias = in.optional(2);
  if (!bias)
    return y;
  // b [M] broadcast as [M, 1, ...] over the spatial axes.
  SmallVector<int64_t> biasShape{in.result.getDimSize(1)};
  biasShape.append(rank, 1);
  auto biasType = cast<RankedTensorType>(bias.getType());
  Value column = onnx::ReshapeOp::create(b, loc, biasType.clone(biasShape), bias);
  return onnx::AddOp::create(b, loc, in.result, y, column).getResult();
}

FailureOr<Value> importGlobalAveragePool(GraphImporter &im, const ::onnx::NodeProto &node,
                                         const Operands &in) {
  int64_t rank = cast<RankedTensorType>(in.inputs[0].getType()).getRank();
  OpBuilder &b = im.builder;
  return onnx::ReduceMeanOp::create(
             b, im.nodeLoc(node), in.result, in.inputs[0],
             b.getDenseI64ArrayAttr(llvm::to_vector(llvm::seq<int64_t>(2, rank))),
             b.getBoolAttr(true))
      .getResult();
}

/// BatchNormalization; `training` normalizes with the batch statistics and
/// writes the running ones back to their globals.
LogicalResult buildBatchNormalization(GraphImporter &im, const ::onnx::NodeProto &node,
                                      bool training) {
  Location loc = im.nodeLoc(node);
  auto epsilon = im.floatAttr(node, "epsilon", 1e-5f);
  auto momentum = im.floatAttr(node, "momentum", 0.9f);
  if (failed(epsilon) || failed(momentum))
    return failure();
  SmallVector<Value> in;
  for (int i = 0; i < 5; ++i) {
    if (i >= node.input_size() || node.input(i).empty())
      return im.nodeError(node) << "expects 5 inputs";
    auto v = im.lookup(node.input(i), &node);
    if (failed(v))
      return failure();
    in.push_back(*v);
  }
  auto type = im.outputType(node, 0);
  if (failed(type))
    return failure();
  OpBuilder &b = im.builder;
  if (!training) {
    im.setOutput(node, 0,
                 onnx::buildBatchNormalizationInference(b, loc, *type, in[0], in[1], in[2], in[3],
                                                        in[4], *epsilon));
    return success();
  }
  // Training: batch statistics, and the running statistics written back to
  // their globals. ONNX's momentum weighs the old value, PyTorch's the new.
  auto statsType = cast<RankedTensorType>(in[3].getType());
  auto norm = onnx::BatchNormalizationOp::create(
      b, loc, TypeRange{*type, statsType, statsType, statsType, statsType}, in[0], in[1], in[2],
      in[3], in[4], b.getF32FloatAttr(*epsilon), b.getF32FloatAttr(1.0f - *momentum));
  for (int i : {3, 4}) {
    auto load = in[i].getDefiningOp<ml_program::GlobalLoadOp>();
    if (!load)
      return im.nodeError(node) << "running statistics must be initializers";
    ml_program::GlobalStoreOp::create(b, loc, load.getGlobalAttr(), norm->getResult(i));
  }
  im.setOutput(node, 0, norm.getResult());
  return success();
}

/// Before opset 14: a node with the running statistics' outputs trains.
LogicalResult importBatchNormalization(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto spatial = im.intAttr(node, "spatial", 1);
  if (failed(spatial))
    return failure();
  if (*spatial == 0)
    return im.nodeError(node) << "per-element statistics (spatial = 0) are not supported";
  return buildBatchNormalization(im, node, /*training=*/node.output_size() > 1);
}

LogicalResult importBatchNormalizationTrainingMode(GraphImporter &im,
                                                   const ::onnx::NodeProto &node) {
  auto trainingMode = im.intAttr(node, "training_mode", 0);
  if (failed(trainingMode))
    return failure();
  return buildBatchNormalization(im, node, /*training=*/*trainingMode != 0);
}

/// The builder a row names.
ImportFn builderFor(const SupportedOp &row) {
  return llvm::StringSwitch<ImportFn>(llvm::StringRef(row.builder.data(), row.builder.size()))
#define ZERO_ONNX_OP(DOMAIN, OP, SINCE, UNTIL, BUILDER, ...)                                   \
  .Case(#BUILDER, nodeBuilder<import##BUILDER>())
#include "frontends/onnx/OnnxOps.def"
      .Case("Direct", nodeBuilder<importDirect>()) // the elementwise rows
      .Default(nullptr);
}

} // namespace

LogicalResult GraphImporter::importNode(const ::onnx::NodeProto &node) {
  // The loader admits only the table's operators at their opsets; this
  // guards the importer.
  const SupportedOp *row = findSupportedOp(node.domain(), node.op_type(), opset);
  ImportFn build = row ? builderFor(*row) : nullptr;
  if (!build)
    return nodeError(node) << unsupportedOpMessage(node, opset);
  // Shape subgraphs and constant masks fold to constants here, whatever
  // their operator.
  const ::onnx::TypeProto *firstType = valueTypes.lookup(node.output(0));
  bool intResult = !firstType ||
                   firstType->tensor_type().elem_type() == ::onnx::TensorProto::INT64 ||
                   firstType->tensor_type().elem_type() == ::onnx::TensorProto::BOOL;
  if (intResult && node.output_size() == 1)
    if (std::optional<IntTensor> tensor = evaluate(node.output(0))) {
      values[node.output(0)] = materialize(*tensor, nodeLoc(node));
      return success();
    }
  return build(*this, node);
}

} // namespace zero::frontend
