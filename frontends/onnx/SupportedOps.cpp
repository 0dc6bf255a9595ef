//===- SupportedOps.cpp ---------------------------------------------------===//

#include "frontends/onnx/SupportedOps.h"

#include <algorithm>

#include "zero/plan_ops.h"

namespace zero::frontend {

namespace {

using Attr = ::onnx::AttributeProto;
constexpr auto kInt = Attr::INT, kFloat = Attr::FLOAT, kString = Attr::STRING,
               kInts = Attr::INTS, kTensor = Attr::TENSOR;

// Attributes whose semantics zero reaches through ONNX shape inference (the
// inferred output type) are honoured as much as those the importer reads;
// ones it honours only for some values (stash_type, spatial, storage_order)
// are checked there. An attribute listed here is also accepted only where
// the model's opset defines it (see OnnxModelLoader.cpp).
const std::vector<SupportedOp> &table() {
  static const std::vector<OpAttribute> window = {{"auto_pad", kString},
                                                  {"kernel_shape", kInts, 1},
                                                  {"pads", kInts, 0},
                                                  {"strides", kInts, 1}};
  auto with = [](std::vector<OpAttribute> a, std::vector<OpAttribute> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  static const std::vector<SupportedOp> ops = [&] {
    std::vector<SupportedOp> ops = {
        {"MatMul", OpKind::Direct, {}},
        {"Where", OpKind::Direct, {}},
        {"Expand", OpKind::Direct, {}},
        {"Pow", OpKind::Custom, {}},
        {"Identity", OpKind::Custom, {}},
        {"Softmax", OpKind::Custom, {{"axis", kInt}}},
        {"LogSoftmax", OpKind::Custom, {{"axis", kInt}}},
        {"SoftmaxCrossEntropyLoss", OpKind::Custom,
         {{"reduction", kString}, {"ignore_index", kInt}}},
        {"NegativeLogLikelihoodLoss", OpKind::Custom,
         {{"reduction", kString}, {"ignore_index", kInt}}},
        {"ReduceSum", OpKind::Custom,
         {{"axes", kInts}, {"keepdims", kInt}, {"noop_with_empty_axes", kInt}}},
        {"ReduceMean", OpKind::Custom, {{"axes", kInts}, {"keepdims", kInt}}},
        {"Gemm", OpKind::Custom,
         {{"alpha", kFloat}, {"beta", kFloat}, {"transA", kInt}, {"transB", kInt}}},
        {"Transpose", OpKind::Custom, {{"perm", kInts}}},
        {"Reshape", OpKind::Custom, {{"allowzero", kInt}}},
        {"Flatten", OpKind::Custom, {{"axis", kInt}}},
        {"Squeeze", OpKind::Custom, {{"axes", kInts}}},
        {"Unsqueeze", OpKind::Custom, {{"axes", kInts}}},
        {"Gather", OpKind::Custom, {{"axis", kInt}}},
        {"Slice", OpKind::Custom, {{"starts", kInts}, {"ends", kInts}, {"axes", kInts}}},
        {"Split", OpKind::Custom, {{"axis", kInt}, {"split", kInts}}},
        {"Concat", OpKind::Custom, {{"axis", kInt}}},
        {"LayerNormalization", OpKind::Custom,
         {{"axis", kInt}, {"epsilon", kFloat}, {"stash_type", kInt}}},
        {"Conv", OpKind::Custom, with(window, {{"dilations", kInts, 1}, {"group", kInt, 1}})},
        {"MaxPool", OpKind::Custom,
         with(window, {{"ceil_mode", kInt}, {"dilations", kInts, 1}, {"storage_order", kInt}})},
        {"AveragePool", OpKind::Custom,
         with(window, {{"ceil_mode", kInt}, {"count_include_pad", kInt}})},
        {"GlobalAveragePool", OpKind::Custom, {}},
        {"BatchNormalization", OpKind::Custom,
         {{"epsilon", kFloat}, {"momentum", kFloat}, {"spatial", kInt}, {"training_mode", kInt}}},
        {"Cast", OpKind::Custom, {{"to", kInt}}},
        // The ratio attribute (before opset 12) belongs to inference-only
        // Dropout, the identity; the seed does not matter at ratio 0.
        {"Dropout", OpKind::Custom, {{"ratio", kFloat}, {"seed", kInt}}},
        {"Constant", OpKind::Custom, {{"value", kTensor}}},
        {"Shape", OpKind::FoldOnly, {{"start", kInt}, {"end", kInt}}},
        {"ConstantOfShape", OpKind::FoldOnly, {{"value", kTensor}}},
        {"Range", OpKind::FoldOnly, {}},
    };
    // The elementwise ops (zero/elementwise_ops.h) import one to one, except
    // those handled above.
    for (const plan_ops::ElementwiseOp &op : plan_ops::kElementwiseOps)
      if (std::none_of(ops.begin(), ops.end(),
                       [&](const SupportedOp &s) { return s.name == op.name; }))
        ops.push_back({op.name, OpKind::Direct, [&] {
                         std::vector<OpAttribute> attributes;
                         for (size_t i = 0; i < op.num_attributes; ++i)
                           attributes.push_back({op.attributes[i].name, kFloat});
                         return attributes;
                       }()});
    return ops;
  }();
  return ops;
}

} // namespace

const OpAttribute *SupportedOp::findAttribute(std::string_view attribute) const {
  auto it = std::find_if(attributes.begin(), attributes.end(),
                         [&](const OpAttribute &a) { return a.name == attribute; });
  return it == attributes.end() ? nullptr : &*it;
}

const SupportedOp *findSupportedOp(std::string_view opType) {
  const auto &ops = table();
  auto it = std::find_if(ops.begin(), ops.end(),
                         [&](const SupportedOp &op) { return op.name == opType; });
  return it == ops.end() ? nullptr : &*it;
}

} // namespace zero::frontend
