//===- OnnxResampling.cpp - Pad, Resize and Upsample, composed at import --===//
//
// None of the three has a kernel: each becomes, per axis it changes, ops zero
// differentiates already, so their gradients follow from those ops' rules.
// Along one axis every output index reads a fixed number of input indices
// with weights known at compile time (its taps):
//
//  - Pad: constant mode is a Slice (negative pads crop) and a Concat with
//    constant slabs of the value, so the gradient is the slice of dy;
//    reflect and edge are one Gather with constant indices, whose gradient
//    adds dy into the source positions.
//  - Resize and Upsample: nearest mode is one Gather; linear (two taps) and
//    cubic (four) the sum of one Gather per tap, each multiplied by its
//    weights; the gradient scatter-adds dy times the weights, the adjoint of
//    the interpolation (PyTorch's upsample backward).
//
// Axes the node leaves alone get no op. The coordinates follow ONNX's
// reference implementation (onnx/backend/test/case/node/resize.py), in double
// precision at compile time.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/GraphImporter.h"

#include "dialects/Onnx/OnnxDialect.h"
#include "dialects/ShapeUtils.h"

#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <array>
#include <cmath>

using namespace mlir;

namespace zero::frontend {

namespace {

/// The node's input `index`, unless it is absent or left out ("").
const std::string *optionalInput(const ::onnx::NodeProto &node, int index) {
  return index < node.input_size() && !node.input(index).empty() ? &node.input(index) : nullptr;
}

/// The FLOAT values of the node's input `index` (`what` in diagnostics),
/// which must be known at compile time.
FailureOr<SmallVector<double>> constantFloats(GraphImporter &im, const ::onnx::NodeProto &node,
                                              int index, StringRef what) {
  std::optional<SmallVector<float>> values = im.knownFloats(node.input(index));
  if (values)
    return SmallVector<double>(values->begin(), values->end());
  if (im.constantTensor(node.input(index)))
    return im.nodeError(node) << "'" << what << "' must be FLOAT";
  return im.nodeError(node) << "'" << what << "' must be a compile-time constant";
}

/// A constant of `type` holding `value` everywhere.
Value splat(OpBuilder &b, Location loc, RankedTensorType type, double value) {
  Type element = type.getElementType();
  Attribute attr = element.isF32() ? Attribute(b.getF32FloatAttr(static_cast<float>(value)))
                                   : Attribute(b.getI64IntegerAttr(static_cast<int64_t>(value)));
  return onnx::ConstantOp::create(b, loc, DenseElementsAttr::get(type, attr));
}

/// `x` with `size` elements along `axis`, element i being x's element
/// `indices[i]` along it.
Value gatherAlong(OpBuilder &b, Location loc, Value x, int64_t axis, ArrayRef<int64_t> indices) {
  auto type = cast<RankedTensorType>(x.getType());
  auto indexType = RankedTensorType::get({static_cast<int64_t>(indices.size())}, b.getI64Type());
  Value constant = onnx::ConstantOp::create(b, loc, DenseElementsAttr::get(indexType, indices));
  SmallVector<int64_t> shape(type.getShape());
  shape[axis] = indices.size();
  return onnx::GatherOp::create(b, loc, type.clone(shape), x, constant, b.getI64IntegerAttr(axis));
}

/// `x` with a slab of `size` elements of `value` concatenated along `axis`
/// before (`before`) or after it. The slab is one element expanded, so the
/// plan holds one element, not the slab.
Value concatSlab(OpBuilder &b, Location loc, Value x, int64_t axis, int64_t size, double value,
                 bool before) {
  auto type = cast<RankedTensorType>(x.getType());
  SmallVector<int64_t> slabShape(type.getShape()), shape(type.getShape());
  slabShape[axis] = size;
  shape[axis] += size;
  Value element = splat(b, loc, type.clone(SmallVector<int64_t>(type.getRank(), 1)), value);
  Value slab = onnx::ExpandOp::create(b, loc, type.clone(slabShape), element);
  SmallVector<Value> parts = before ? SmallVector<Value>{slab, x} : SmallVector<Value>{x, slab};
  return onnx::ConcatOp::create(b, loc, type.clone(shape), parts, b.getI64IntegerAttr(axis));
}

//===----------------------------------------------------------------------===//
// Pad
//===----------------------------------------------------------------------===//

enum class PadMode { Constant, Reflect, Edge };

/// The index into [0, size) that position `i` (any integer) of the padded
/// axis reads: numpy's reflect (mirrored without repeating the border,
/// repeatedly for pads longer than the axis) and edge (clamped).
int64_t padSource(PadMode mode, int64_t i, int64_t size) {
  if (mode == PadMode::Edge || size == 1)
    return std::clamp<int64_t>(i, 0, size - 1);
  int64_t period = 2 * (size - 1);
  int64_t m = ((i % period) + period) % period;
  return m < size ? m : period - m;
}

/// The node's output: `x` padded by `pads` ([begin of each axis..., end of
/// each axis...] for the axes `axes`), negative pads cropping first.
LogicalResult buildPad(GraphImporter &im, const ::onnx::NodeProto &node, Value x,
                       StringRef modeName, ArrayRef<int64_t> pads,
                       std::optional<ArrayRef<int64_t>> axes, double value) {
  int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
  std::optional<PadMode> mode = llvm::StringSwitch<std::optional<PadMode>>(modeName)
                                    .Case("constant", PadMode::Constant)
                                    .Case("reflect", PadMode::Reflect)
                                    .Case("edge", PadMode::Edge)
                                    .Default(std::nullopt);
  if (!mode)
    return im.nodeError(node) << "mode '" << modeName
                              << "' is not supported (constant, reflect or edge)";
  SmallVector<int64_t> axisList;
  for (int64_t i = 0; i < (axes ? static_cast<int64_t>(axes->size()) : rank); ++i) {
    std::optional<int64_t> axis = normalizeAxis(axes ? (*axes)[i] : i, rank);
    if (!axis || llvm::is_contained(axisList, *axis))
      return im.nodeError(node) << "axes must be distinct and in [-rank, rank)";
    axisList.push_back(*axis);
  }
  if (pads.size() != 2 * axisList.size())
    return im.nodeError(node) << "pads has " << pads.size() << " values for " << axisList.size()
                              << " axes; it needs two per axis";
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  for (auto [i, axis] : llvm::enumerate(axisList)) {
    int64_t begin = pads[i], end = pads[i + axisList.size()];
    if (begin == 0 && end == 0)
      continue;
    auto xType = cast<RankedTensorType>(x.getType());
    int64_t size = xType.getDimSize(axis);
    // The part of the axis that the negative pads leave.
    int64_t kept = size - std::max<int64_t>(-begin, 0) - std::max<int64_t>(-end, 0);
    if (kept < 0 || (kept == 0 && *mode != PadMode::Constant && begin + end + size > 0))
      return im.nodeError(node) << "pads " << begin << " and " << end << " of axis " << axis
                                << " (size " << size << ") leave nothing to pad from";
    if (*mode == PadMode::Constant) {
      if (begin < 0 || end < 0) {
        SmallVector<int64_t> starts(rank, 0), steps(rank, 1), shape(xType.getShape());
        starts[axis] = std::max<int64_t>(-begin, 0);
        shape[axis] = kept;
        x = onnx::SliceOp::create(b, loc, xType.clone(shape), x, b.getDenseI64ArrayAttr(starts),
                                  b.getDenseI64ArrayAttr(steps));
      }
      if (begin > 0)
        x = concatSlab(b, loc, x, axis, begin, value, /*before=*/true);
      if (end > 0)
        x = concatSlab(b, loc, x, axis, end, value, /*before=*/false);
      continue;
    }
    int64_t first = std::max<int64_t>(-begin, 0), lead = std::max<int64_t>(begin, 0);
    SmallVector<int64_t> indices;
    for (int64_t o = 0; o < size + begin + end; ++o)
      indices.push_back(first + padSource(*mode, o - lead, kept));
    x = gatherAlong(b, loc, x, axis, indices);
  }
  im.setOutput(node, 0, x);
  return success();
}

/// Pad's element types.
LogicalResult checkPadElement(GraphImporter &im, const ::onnx::NodeProto &node, Value x) {
  Type element = cast<RankedTensorType>(x.getType()).getElementType();
  if (element.isF32() || element.isInteger(64))
    return success();
  return im.nodeError(node) << "only FLOAT and INT64 tensors are supported";
}

} // namespace

/// Pad before opset 11: pads and value are attributes.
LogicalResult importPadAttributes(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto mode = im.stringAttr(node, "mode", "constant");
  auto pads = im.intsAttr(node, "pads");
  auto value = im.floatAttr(node, "value", 0.0f);
  auto input = im.lookup(node.input(0), &node);
  if (failed(mode) || failed(pads) || failed(value) || failed(input) ||
      failed(checkPadElement(im, node, *input)))
    return failure();
  return buildPad(im, node, *input, *mode, *pads, std::nullopt, *value);
}

/// Pad from opset 11: pads, the constant value and (from 18) axes are
/// inputs, which must be compile-time constants.
LogicalResult importPad(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto mode = im.stringAttr(node, "mode", "constant");
  auto input = im.lookup(node.input(0), &node);
  if (failed(mode) || failed(input) || failed(checkPadElement(im, node, *input)))
    return failure();
  if (!optionalInput(node, 1))
    return im.nodeError(node) << "expects a pads input";
  auto pads = im.constantInts(node.input(1), node);
  if (failed(pads))
    return failure();
  std::optional<SmallVector<int64_t>> axes;
  if (optionalInput(node, 3)) {
    auto ints = im.constantInts(node.input(3), node);
    if (failed(ints))
      return failure();
    axes = std::move(*ints);
  }
  Type element = cast<RankedTensorType>(input->getType()).getElementType();
  double value = 0;
  if (optionalInput(node, 2)) {
    SmallVector<double> values;
    if (element.isF32()) {
      auto floats = constantFloats(im, node, 2, "constant_value");
      if (failed(floats))
        return failure();
      values = std::move(*floats);
    } else {
      auto ints = im.constantInts(node.input(2), node);
      if (failed(ints))
        return failure();
      values.assign(ints->begin(), ints->end());
    }
    if (values.size() != 1)
      return im.nodeError(node) << "'constant_value' must be one value";
    value = values[0];
  }
  return buildPad(im, node, *input, *mode, *pads,
                  axes ? std::optional<ArrayRef<int64_t>>(*axes) : std::nullopt, value);
}

namespace {

//===----------------------------------------------------------------------===//
// Resize and Upsample
//===----------------------------------------------------------------------===//

/// What ONNX's Resize attributes say, with Upsample's meaning where it is
/// Upsample (or Resize at opset 10).
struct ResizeMode {
  std::string mode = "nearest";
  std::string coordinates = "half_pixel";
  std::string nearest = "round_prefer_floor";
  double cubicA = -0.75;
  bool excludeOutside = false;
  double extrapolation = 0.0;
};

/// One input index an output index reads, and its weight.
struct Tap {
  int64_t index;
  double weight;
};

/// The input coordinate of output index `o` along an axis of `size`
/// elements resized by `scale` (`roi` its [start, end] for
/// tf_crop_and_resize); nullopt where it falls outside the input
/// (tf_crop_and_resize's extrapolation).
std::optional<double> sourceCoordinate(const ResizeMode &m, int64_t o, int64_t size, double scale,
                                       double roiStart, double roiEnd) {
  double x = o, width = scale * size; // ONNX's output width, fractional for scales
  const std::string &c = m.coordinates;
  if (c == "align_corners")
    return width == 1 ? 0.0 : x * (size - 1) / (width - 1);
  if (c == "asymmetric")
    return x / scale;
  if (c == "pytorch_half_pixel")
    return width == 1 ? -0.5 : (x + 0.5) / scale - 0.5;
  if (c == "tf_half_pixel_for_nn")
    return (x + 0.5) / scale;
  if (c == "tf_crop_and_resize") {
    double span = (roiEnd - roiStart) * (size - 1);
    double source = roiStart * (size - 1) + (width == 1 ? span / 2 : x * span / (width - 1));
    if (source < 0 || source > size - 1)
      return std::nullopt;
    return source;
  }
  return (x + 0.5) / scale - 0.5; // half_pixel
}

/// Cubic convolution weights of the four neighbours at floor - 1 .. floor + 2
/// of a coordinate whose fractional part is `r` (Keys, with coefficient a).
std::array<double, 4> cubicWeights(double r, double a) {
  auto near = [&](double t) { return ((a + 2) * t - (a + 3)) * t * t + 1; };      // |t| <= 1
  auto far = [&](double t) { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; }; // 1 < |t| < 2
  return {far(r + 1), near(r), near(1 - r), far(2 - r)};
}

/// The taps of each output index along one axis; index `size` stands for
/// the extrapolation value.
SmallVector<SmallVector<Tap, 4>> resizeTaps(const ResizeMode &m, int64_t size, int64_t outSize,
                                            double scale, double roiStart, double roiEnd) {
  SmallVector<SmallVector<Tap, 4>> taps(outSize);
  auto clampIndex = [&](int64_t i) { return std::clamp<int64_t>(i, 0, size - 1); };
  size_t count = m.mode == "nearest" ? 1 : m.mode == "linear" ? 2 : 4;
  for (int64_t o = 0; o < outSize; ++o) {
    std::optional<double> x = sourceCoordinate(m, o, size, scale, roiStart, roiEnd);
    if (!x) {
      // All taps of one output read the same number of indices.
      taps[o].assign(count, {size, 0.0});
      taps[o].front().weight = 1.0;
      continue;
    }
    double lower = std::floor(*x), r = *x - lower;
    int64_t base = static_cast<int64_t>(lower);
    if (m.mode == "nearest") {
      bool up = r != 0 && (m.nearest == "ceil" || (m.nearest == "round_prefer_ceil" && r >= 0.5) ||
                           (m.nearest == "round_prefer_floor" && r > 0.5));
      taps[o].push_back({clampIndex(base + up), 1.0});
    } else if (m.mode == "linear") {
      taps[o].push_back({clampIndex(base), 1 - r});
      taps[o].push_back({clampIndex(base + 1), r});
    } else {
      std::array<double, 4> w = cubicWeights(r, m.cubicA);
      double total = 0;
      for (int k = 0; k < 4; ++k) {
        int64_t i = base - 1 + k;
        if (m.excludeOutside && (i < 0 || i >= size))
          w[k] = 0;
        total += w[k];
      }
      for (int k = 0; k < 4; ++k)
        taps[o].push_back({clampIndex(base - 1 + k), m.excludeOutside ? w[k] / total : w[k]});
    }
  }
  return taps;
}

/// `x` resized along `axis` by its taps: one Gather for single taps of
/// weight 1, else the sum of each tap's Gather times its weights.
Value resizeAxis(OpBuilder &b, Location loc, Value x, int64_t axis,
                 ArrayRef<SmallVector<Tap, 4>> taps) {
  auto type = cast<RankedTensorType>(x.getType());
  size_t count = taps.front().size();
  Value sum;
  for (size_t t = 0; t < count; ++t) {
    SmallVector<int64_t> indices;
    SmallVector<float> weights;
    for (const auto &outputTaps : taps) {
      indices.push_back(outputTaps[t].index);
      weights.push_back(static_cast<float>(outputTaps[t].weight));
    }
    if (llvm::all_of(weights, [](float w) { return w == 0; }))
      continue;
    Value part = gatherAlong(b, loc, x, axis, indices);
    if (!llvm::all_of(weights, [](float w) { return w == 1; })) {
      // Weights [out, 1, ...]: broadcast over the axes after `axis`.
      SmallVector<int64_t> shape(type.getRank() - axis, 1);
      shape[0] = taps.size();
      auto weightType = RankedTensorType::get(shape, b.getF32Type());
      Value w = onnx::ConstantOp::create(
          b, loc, DenseElementsAttr::get(weightType, ArrayRef<float>(weights)));
      part = onnx::MulOp::create(b, loc, part.getType(), part, w);
    }
    sum = sum ? onnx::AddOp::create(b, loc, part.getType(), sum, part).getResult() : part;
  }
  return sum;
}

/// Whether the taps read each output index's own input index whole.
bool isIdentity(ArrayRef<SmallVector<Tap, 4>> taps, int64_t size) {
  if (static_cast<int64_t>(taps.size()) != size)
    return false;
  for (auto [o, outputTaps] : llvm::enumerate(taps)) {
    double own = 0;
    for (const Tap &tap : outputTaps)
      if (tap.weight != 0 && tap.index != static_cast<int64_t>(o))
        return false;
      else if (tap.index == static_cast<int64_t>(o))
        own += tap.weight;
    if (own != 1)
      return false;
  }
  return true;
}

/// The node's output: its input resized to `sizes` or by `scales` (one of
/// the two given, one value per axis).
LogicalResult buildResize(GraphImporter &im, const ::onnx::NodeProto &node, const ResizeMode &m,
                          std::optional<ArrayRef<int64_t>> sizes, ArrayRef<double> scales,
                          ArrayRef<double> roi) {
  auto input = im.lookup(node.input(0), &node);
  if (failed(input))
    return failure();
  Value x = *input;
  auto type = cast<RankedTensorType>(x.getType());
  int64_t rank = type.getRank();
  if (!type.getElementType().isF32())
    return im.nodeError(node) << "only FLOAT tensors are supported";
  if (m.mode != "nearest" && m.mode != "linear" && m.mode != "cubic")
    return im.nodeError(node) << "mode '" << m.mode << "' is not supported";
  static const char *kCoordinates[] = {"half_pixel", "pytorch_half_pixel",   "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  if (!llvm::is_contained(kCoordinates, StringRef(m.coordinates)))
    return im.nodeError(node) << "coordinate_transformation_mode '" << m.coordinates
                              << "' is not supported";
  static const char *kNearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  if (!llvm::is_contained(kNearest, StringRef(m.nearest)))
    return im.nodeError(node) << "nearest_mode '" << m.nearest << "' is not supported";
  size_t given = sizes ? sizes->size() : scales.size();
  if (static_cast<int64_t>(given) != rank)
    return im.nodeError(node) << (sizes ? "sizes" : "scales") << " has " << given
                              << " values for rank " << rank;
  bool crop = m.coordinates == "tf_crop_and_resize";
  if (crop && static_cast<int64_t>(roi.size()) != 2 * rank)
    return im.nodeError(node) << "tf_crop_and_resize needs a constant roi of 2 * rank values";
  OpBuilder &b = im.builder;
  Location loc = im.nodeLoc(node);
  for (int64_t axis = 0; axis < rank; ++axis) {
    int64_t size = type.getDimSize(axis);
    double start = crop ? roi[axis] : 0, end = crop ? roi[axis + rank] : 1;
    double scale;
    int64_t outSize;
    if (sizes) {
      outSize = (*sizes)[axis];
      scale = static_cast<double>(outSize) / size;
    } else {
      scale = scales[axis];
      outSize = static_cast<int64_t>(std::floor(size * (end - start) * scale));
    }
    if (size < 1 || outSize < 1 || !(scale > 0))
      return im.nodeError(node) << "axis " << axis << " of size " << size
                                << " cannot be resized to " << outSize;
    auto taps = resizeTaps(m, size, outSize, scale, start, end);
    if (isIdentity(taps, size))
      continue;
    if (llvm::any_of(taps, [&](const auto &t) { return t.front().index == size; }))
      x = concatSlab(b, loc, x, axis, 1, m.extrapolation, /*before=*/false);
    x = resizeAxis(b, loc, x, axis, taps);
  }
  im.setOutput(node, 0, x);
  return success();
}

/// Upsample and Resize at opset 10: scales only, asymmetric coordinates,
/// nearest rounding down (torch's nearest).
LogicalResult buildUpsample(GraphImporter &im, const ::onnx::NodeProto &node,
                            ArrayRef<double> scales) {
  auto mode = im.stringAttr(node, "mode", "nearest");
  if (failed(mode))
    return failure();
  ResizeMode m;
  m.mode = *mode == "bilinear" ? "linear" : *mode;
  if (m.mode == "cubic")
    return im.nodeError(node) << "mode 'cubic' is not supported";
  m.coordinates = "asymmetric";
  m.nearest = "floor";
  return buildResize(im, node, m, std::nullopt, scales, {});
}

} // namespace

/// Upsample before opset 9: the scales are an attribute.
LogicalResult importUpsampleScalesAttribute(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto scales = im.floatsAttr(node, "scales");
  if (failed(scales))
    return failure();
  return buildUpsample(im, node, SmallVector<double>(scales->begin(), scales->end()));
}

/// Upsample at opset 9 and Resize at opset 10: the scales are an input.
LogicalResult importUpsampleScalesInput(GraphImporter &im, const ::onnx::NodeProto &node) {
  if (!optionalInput(node, 1))
    return im.nodeError(node) << "expects a scales input";
  auto scales = constantFloats(im, node, 1, "scales");
  if (failed(scales))
    return failure();
  return buildUpsample(im, node, *scales);
}

/// Resize from opset 11: roi, scales and sizes are inputs, which must be
/// compile-time constants; one of scales and sizes is given.
LogicalResult importResize(GraphImporter &im, const ::onnx::NodeProto &node) {
  auto mode = im.stringAttr(node, "mode", "nearest");
  auto coordinates = im.stringAttr(node, "coordinate_transformation_mode", "half_pixel");
  auto nearest = im.stringAttr(node, "nearest_mode", "round_prefer_floor");
  auto cubicA = im.floatAttr(node, "cubic_coeff_a", -0.75f);
  auto excludeOutside = im.intAttr(node, "exclude_outside", 0);
  auto extrapolation = im.floatAttr(node, "extrapolation_value", 0.0f);
  if (failed(mode) || failed(coordinates) || failed(nearest) || failed(cubicA) ||
      failed(excludeOutside) || failed(extrapolation))
    return failure();
  ResizeMode m{*mode, *coordinates, *nearest, *cubicA, *excludeOutside != 0, *extrapolation};
  SmallVector<double> roi, scales;
  std::optional<SmallVector<int64_t>> sizes;
  if (m.coordinates == "tf_crop_and_resize" && optionalInput(node, 1)) {
    auto values = constantFloats(im, node, 1, "roi");
    if (failed(values))
      return failure();
    roi = std::move(*values);
  }
  if (optionalInput(node, 2)) {
    auto values = constantFloats(im, node, 2, "scales");
    if (failed(values))
      return failure();
    scales = std::move(*values);
  }
  if (optionalInput(node, 3)) {
    auto ints = im.constantInts(node.input(3), node);
    if (failed(ints))
      return failure();
    sizes = std::move(*ints);
  }
  // Opsets 11 and 12 require a scales input, empty where sizes are given.
  if (sizes.has_value() == !scales.empty())
    return im.nodeError(node) << "expects exactly one of scales and sizes";
  return buildResize(im, node, m, sizes ? std::optional<ArrayRef<int64_t>>(*sizes) : std::nullopt,
                     scales, roi);
}

} // namespace zero::frontend
