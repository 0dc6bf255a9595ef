//===- OnnxConstantEvaluator.cpp - compile-time int64 values --------------===//
//
// Shape subgraphs (Shape, Gather, Concat, arithmetic, Range, ...), indices
// and masks fold to int64 constants here, from initializers, Constant nodes
// and the static shapes ONNX shape inference found. Folding is best effort:
// whatever it cannot evaluate is imported as computation instead.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/GraphImporter.h"

#include "dialects/ShapeUtils.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;

namespace zero::frontend {

namespace {

/// Folding builds shapes, indices and masks, not data: a larger result is
/// left to the plan (or rejected there) instead of being built here.
constexpr int64_t kMaxFoldedElements = int64_t(1) << 24;

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

/// The elements of `t` at `start` + sum of i[d] * `strides`[d] (flat
/// offsets) for every index i of `shape`, in row-major order (Slice,
/// Transpose).
IntTensor stridedInts(const IntTensor &t, ArrayRef<int64_t> shape, int64_t start,
                      ArrayRef<int64_t> strides) {
  IntTensor result{SmallVector<int64_t>(shape), {}};
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  SmallVector<int64_t> index(shape.size(), 0);
  for (int64_t flat = 0; flat < count; ++flat) {
    int64_t offset = start;
    for (size_t d = 0; d < shape.size(); ++d)
      offset += index[d] * strides[d];
    result.values.push_back(t.values[offset]);
    for (int64_t d = shape.size() - 1; d >= 0 && ++index[d] == shape[d]; --d)
      index[d] = 0;
  }
  return result;
}

/// Row-major element strides of `shape`.
SmallVector<int64_t> rowStrides(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

} // namespace

std::optional<IntTensor> GraphImporter::evaluate(const std::string &name, int depth) {
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
    } else if (tensor->data_type() == ::onnx::TensorProto::INT32 &&
               tensor->data_location() != ::onnx::TensorProto::EXTERNAL) {
      // Axes and counts PyTorch writes as INT32 (CumSum's axis): values
      // only, never a tensor of the plan.
      IntTensor t;
      t.shape.assign(tensor->dims().begin(), tensor->dims().end());
      int64_t count = 1;
      for (int64_t d : t.shape)
        count *= d;
      const std::string &raw = tensor->raw_data();
      if (tensor->has_raw_data() && raw.size() == size_t(count) * sizeof(int32_t)) {
        for (int64_t i = 0; i < count; ++i) {
          int32_t v;
          std::memcpy(&v, raw.data() + i * sizeof(int32_t), sizeof(int32_t));
          t.values.push_back(v);
        }
        result = t;
      } else if (!tensor->has_raw_data() && tensor->int32_data_size() == count) {
        llvm::append_range(t.values, tensor->int32_data());
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

std::optional<IntTensor> GraphImporter::evaluateNode(const ::onnx::NodeProto &node, int depth) {
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
  if (op == "Identity" || op == "Cast" || op == "Unsqueeze" || op == "Squeeze" ||
      op == "Reshape") {
    auto in = input(0);
    if (!in)
      return std::nullopt;
    const ::onnx::TypeProto *type = valueTypes.lookup(node.output(0));
    if (op != "Identity" && op != "Cast") {
      if (!type || !type->tensor_type().has_shape())
        return std::nullopt;
      in->shape.clear();
      for (const auto &dim : type->tensor_type().shape().dim()) {
        if (!dim.has_dim_value())
          return std::nullopt;
        in->shape.push_back(dim.dim_value());
      }
      int64_t count = 1;
      for (int64_t d : in->shape)
        count *= d;
      if (count != static_cast<int64_t>(in->values.size()))
        return std::nullopt;
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
    // Along `axis`, of inputs of one rank that agree elsewhere (index
    // tuples as well as shapes).
    SmallVector<IntTensor> ins;
    for (int i = 0; i < node.input_size(); ++i) {
      auto in = input(i);
      if (!in || in->shape.empty() || (!ins.empty() && in->shape.size() != ins[0].shape.size()))
        return std::nullopt;
      ins.push_back(std::move(*in));
    }
    auto axisAttr = intAttr(node, "axis", 0);
    if (ins.empty() || failed(axisAttr))
      return std::nullopt;
    int64_t rank = ins[0].shape.size();
    auto axis = zero::normalizeAxis(*axisAttr, rank);
    if (!axis)
      return std::nullopt;
    IntTensor t{ins[0].shape, {}};
    t.shape[*axis] = 0;
    for (const IntTensor &in : ins) {
      for (int64_t d = 0; d < rank; ++d)
        if (d != *axis && in.shape[d] != ins[0].shape[d])
          return std::nullopt;
      t.shape[*axis] += in.shape[*axis];
    }
    int64_t outer = 1;
    for (int64_t d = 0; d < *axis; ++d)
      outer *= t.shape[d];
    for (int64_t o = 0; o < outer; ++o)
      for (const IntTensor &in : ins) {
        int64_t chunk = outer ? static_cast<int64_t>(in.values.size()) / outer : 0;
        t.values.append(in.values.begin() + o * chunk, in.values.begin() + (o + 1) * chunk);
      }
    return t;
  }
  if (op == "Expand") {
    auto in = input(0), shape = input(1);
    if (!in || !shape || shape->shape.size() != 1)
      return std::nullopt;
    auto out = zero::broadcastShapes(in->shape, shape->values);
    if (!out)
      return std::nullopt;
    IntTensor target{*out, {}};
    int64_t count = 1;
    for (int64_t d : *out)
      if (d < 0 || llvm::MulOverflow(count, d, count) || count > kMaxFoldedElements)
        return std::nullopt;
    target.values.assign(count, 0);
    return broadcastInts({&*in, &target},
                         [](ArrayRef<int64_t> v) -> std::optional<int64_t> { return v[0]; });
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
    auto value = tensorAttr(node, "value");
    if (failed(value))
      return std::nullopt;
    if (*value) {
      const ::onnx::TensorProto &t = **value;
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
  if (op == "Tile") {
    auto in = input(0), repeats = input(1);
    if (!in || !repeats || repeats->values.size() != in->shape.size())
      return std::nullopt;
    IntTensor t;
    int64_t count = 1;
    for (auto [d, r] : llvm::zip(in->shape, repeats->values)) {
      int64_t tiled;
      if (r < 0 || llvm::MulOverflow(d, r, tiled) || llvm::MulOverflow(count, tiled, count) ||
          count > kMaxFoldedElements)
        return std::nullopt;
      t.shape.push_back(tiled);
    }
    SmallVector<int64_t> index(t.shape.size(), 0);
    for (int64_t flat = 0; flat < count; ++flat) {
      int64_t offset = 0;
      for (size_t d = 0; d < t.shape.size(); ++d)
        offset = offset * in->shape[d] + index[d] % in->shape[d];
      t.values.push_back(in->values[offset]);
      for (int64_t d = t.shape.size() - 1; d >= 0 && ++index[d] == t.shape[d]; --d)
        index[d] = 0;
    }
    return t;
  }
  if (op == "Trilu") {
    auto in = input(0);
    auto upper = intAttr(node, "upper", 1);
    std::optional<IntTensor> k = IntTensor{{}, {0}};
    if (node.input_size() > 1 && !node.input(1).empty())
      k = input(1);
    if (!in || in->shape.size() < 2 || failed(upper) || !k || k->values.size() != 1)
      return std::nullopt;
    int64_t rows = in->shape.end()[-2], cols = in->shape.back();
    for (auto [flat, v] : llvm::enumerate(in->values)) {
      int64_t i = (flat / cols) % rows, j = flat % cols, offset = k->values[0];
      if (!(*upper ? j - i >= offset : j - i <= offset))
        v = 0;
    }
    return in;
  }
  // PyTorch's F.pad reverses and transposes its pads pairs this way.
  if (op == "Slice" && opset >= 10) {
    auto in = input(0), starts = input(1), ends = input(2);
    std::optional<IntTensor> axes, steps;
    if (node.input_size() > 3 && !node.input(3).empty() && !(axes = input(3)))
      return std::nullopt;
    if (node.input_size() > 4 && !node.input(4).empty() && !(steps = input(4)))
      return std::nullopt;
    if (!in || !starts || !ends || starts->values.size() != ends->values.size() ||
        (axes && axes->values.size() != starts->values.size()) ||
        (steps && steps->values.size() != starts->values.size()))
      return std::nullopt;
    int64_t rank = in->shape.size();
    SmallVector<int64_t> shape(in->shape), strides = rowStrides(in->shape), elementSteps(rank, 1);
    int64_t start = 0;
    for (size_t i = 0; i < starts->values.size(); ++i) {
      auto axis = zero::normalizeAxis(axes ? axes->values[i] : i, rank);
      int64_t step = steps ? steps->values[i] : 1;
      if (!axis || step == 0)
        return std::nullopt;
      int64_t dim = in->shape[*axis], first = starts->values[i], last = ends->values[i];
      first = first < 0 ? first + dim : first;
      last = last < 0 ? last + dim : last;
      // ONNX's clamping: [0, dim] going forward, [-1, dim - 1] going back.
      first =
          step > 0 ? std::clamp<int64_t>(first, 0, dim) : std::clamp<int64_t>(first, 0, dim - 1);
      last = step > 0 ? std::clamp<int64_t>(last, 0, dim) : std::clamp<int64_t>(last, -1, dim - 1);
      int64_t span = step > 0 ? last - first : first - last, stride = step > 0 ? step : -step;
      shape[*axis] = std::max<int64_t>(0, (span + stride - 1) / stride);
      start += first * strides[*axis];
      elementSteps[*axis] = step;
    }
    for (int64_t d = 0; d < rank; ++d)
      elementSteps[d] *= strides[d];
    return stridedInts(*in, shape, start, elementSteps);
  }
  if (op == "Transpose") {
    auto in = input(0);
    auto perm = intsAttr(node, "perm");
    if (!in || failed(perm))
      return std::nullopt;
    int64_t rank = in->shape.size();
    if (perm->empty())
      for (int64_t d = rank - 1; d >= 0; --d)
        perm->push_back(d);
    if (static_cast<int64_t>(perm->size()) != rank)
      return std::nullopt;
    SmallVector<int64_t> strides = rowStrides(in->shape), shape, permuted;
    for (int64_t p : *perm) {
      if (p < 0 || p >= rank)
        return std::nullopt;
      shape.push_back(in->shape[p]);
      permuted.push_back(strides[p]);
    }
    return stridedInts(*in, shape, 0, permuted);
  }
  // Constants are in `constants` already.
  return std::nullopt;
}

} // namespace zero::frontend
