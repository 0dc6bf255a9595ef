//===- SupportedOps.cpp ---------------------------------------------------===//

#include "frontends/onnx/SupportedOps.h"

#include <algorithm>

#include "zero/plan_ops.h"

namespace zero::frontend {

namespace {

const std::vector<SupportedOp> &table() {
  using Attr = ::onnx::AttributeProto;
  constexpr auto kInt = Attr::INT, kFloat = Attr::FLOAT, kString = Attr::STRING, kInts = Attr::INTS,
                 kFloats = Attr::FLOATS, kStrings = Attr::STRINGS, kTensor = Attr::TENSOR;
  static const std::vector<SupportedOp> ops = [&] {
    std::vector<SupportedOp> ops = {
#define ZERO_ONNX_OP(DOMAIN, OP, SINCE, UNTIL, BUILDER, ...)                                   \
  {DOMAIN, OP, SINCE, UNTIL, #BUILDER, {__VA_ARGS__}},
#include "frontends/onnx/OnnxOps.def"
    };
    // The elementwise ops (zero/elementwise_ops.h) import one to one, except
    // those with rows of their own.
    for (const plan_ops::ElementwiseOp &op : plan_ops::kElementwiseOps)
      if (std::none_of(ops.begin(), ops.end(),
                       [&](const SupportedOp &s) { return s.name == op.name; }))
        ops.push_back({"", op.name, kMinOpset, kMaxOpset, "Direct", [&] {
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

bool isDefaultDomain(std::string_view domain) { return domain.empty() || domain == "ai.onnx"; }

const SupportedOp *findSupportedOp(std::string_view domain, std::string_view opType,
                                   int64_t opset) {
  if (isDefaultDomain(domain))
    domain = "";
  const auto &ops = table();
  auto it = std::find_if(ops.begin(), ops.end(), [&](const SupportedOp &op) {
    return op.domain == domain && op.name == opType && op.sinceVersion <= opset &&
           opset <= op.untilVersion;
  });
  return it == ops.end() ? nullptr : &*it;
}

std::string unsupportedOpMessage(const ::onnx::NodeProto &node, int64_t opset) {
  std::string_view domain = node.domain();
  if (isDefaultDomain(domain))
    domain = "";
  std::string opsets;
  for (const SupportedOp &op : table())
    if (op.domain == domain && op.name == node.op_type())
      opsets += (opsets.empty() ? "" : ", ") + std::to_string(op.sinceVersion) +
                (op.sinceVersion == op.untilVersion ? "" : " to " + std::to_string(op.untilVersion));
  std::string where = "operator '" + node.op_type() + "' of domain '" +
                      (domain.empty() ? "ai.onnx" : std::string(domain)) + "'";
  if (opsets.empty())
    return "unsupported " + (domain.empty() ? "operator '" + node.op_type() + "'" : where);
  return "no handler for " + where + " at opset " + std::to_string(opset) +
         "; zero imports it at opsets " + opsets;
}

} // namespace zero::frontend
