// One descriptor per plan opcode: operand and result counts, and the
// attribute table with every field's name, kind and whether it may be left
// out. The compiler's plan verifier and serializer and the runtime's
// load-time checks all read these, so the three cannot disagree; the
// FlatBuffers schema (schema/plan.fbs) stays the ABI.
#ifndef ZERO_PLAN_OPS_H
#define ZERO_PLAN_OPS_H

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>

#include "zero/elementwise_ops.h"
#include "zero/plan_generated.h"

namespace zero::plan_ops {

// How a field is spelled in the plan dialect (MLIR attribute) and stored in
// the FlatBuffer.
enum class AttrKind : uint8_t {
  Bool,       // BoolAttr; bool
  I64,        // IntegerAttr; long
  U32,        // IntegerAttr in [0, 2^32); uint
  F32,        // FloatAttr; float
  I64s,       // DenseI64ArrayAttr; [long]
  Reduction,  // StringAttr "sum" | "mean" | "none"; Reduction
  Schedule,   // StringAttr "constant" | "linear" | "cosine"; LrSchedule
};

enum class Presence : uint8_t {
  Required,  // the verifier rejects an instruction without it
  Default,   // absent means the schema's default value
  Optional,  // absent means "none"; `flag` records whether it was given
};

struct AttrField {
  const char* name;
  AttrKind kind;
  uint16_t offset;  // vtable offset of the field (the generated VT_ constant)
  Presence presence = Presence::Required;
  uint16_t flag = 0;  // Optional: vtable offset of the bool that says it is set
};

struct AttrTable {
  plan::Attrs type;
  const AttrField* fields;
  size_t num_fields;
};

struct OpDescriptor {
  plan::Opcode opcode;
  uint16_t min_in, max_in, min_out, max_out;
  plan::Attrs attrs;  // NONE: the instruction carries no attributes
  // Bit i: field i of `attrs` means nothing to this opcode (a gradient that
  // shares its forward op's table); it must be absent.
  uint8_t unused_fields = 0;

  bool uses(size_t field) const { return !(unused_fields >> field & 1); }
};

// One row per field or opcode reads as a table:
// clang-format off
namespace detail {
using plan::Attrs;
using plan::Opcode;
using K = AttrKind;
using P = Presence;

inline constexpr AttrField kGemm[] = {{"trans_a", K::Bool, plan::GemmAttrs::VT_TRANS_A},
                                      {"trans_b", K::Bool, plan::GemmAttrs::VT_TRANS_B},
                                      {"alpha", K::F32, plan::GemmAttrs::VT_ALPHA},
                                      {"beta", K::F32, plan::GemmAttrs::VT_BETA}};
inline constexpr AttrField kAxis[] = {{"axis", K::I64, plan::AxisAttrs::VT_AXIS}};
inline constexpr AttrField kLoss[] = {
    {"reduction", K::Reduction, plan::LossAttrs::VT_REDUCTION},
    {"ignore_index", K::I64, plan::LossAttrs::VT_IGNORE_INDEX, P::Optional, plan::LossAttrs::VT_HAS_IGNORE_INDEX}};
inline constexpr AttrField kReduce[] = {{"axes", K::I64s, plan::ReduceAttrs::VT_AXES},
                                        {"keepdims", K::Bool, plan::ReduceAttrs::VT_KEEPDIMS}};
inline constexpr AttrField kPerm[] = {{"perm", K::I64s, plan::PermAttrs::VT_PERM}};
inline constexpr AttrField kFill[] = {{"value", K::F32, plan::FillAttrs::VT_VALUE}};
// has_scheduled_lr and has_grad_scale say which optional inputs follow.
inline constexpr AttrField kSgd[] = {
    {"lr", K::F32, plan::SgdAttrs::VT_LR},
    {"momentum", K::F32, plan::SgdAttrs::VT_MOMENTUM},
    {"weight_decay", K::F32, plan::SgdAttrs::VT_WEIGHT_DECAY},
    {"has_scheduled_lr", K::Bool, plan::SgdAttrs::VT_HAS_SCHEDULED_LR, P::Default},
    {"has_grad_scale", K::Bool, plan::SgdAttrs::VT_HAS_GRAD_SCALE, P::Default}};
inline constexpr AttrField kAdamW[] = {
    {"lr", K::F32, plan::AdamWAttrs::VT_LR},
    {"beta1", K::F32, plan::AdamWAttrs::VT_BETA1},
    {"beta2", K::F32, plan::AdamWAttrs::VT_BETA2},
    {"eps", K::F32, plan::AdamWAttrs::VT_EPS},
    {"weight_decay", K::F32, plan::AdamWAttrs::VT_WEIGHT_DECAY},
    {"has_scheduled_lr", K::Bool, plan::AdamWAttrs::VT_HAS_SCHEDULED_LR, P::Default},
    {"has_grad_scale", K::Bool, plan::AdamWAttrs::VT_HAS_GRAD_SCALE, P::Default}};
inline constexpr AttrField kSchedule[] = {
    {"schedule", K::Schedule, plan::ScheduleAttrs::VT_SCHEDULE},
    {"lr", K::F32, plan::ScheduleAttrs::VT_LR},
    {"warmup_steps", K::I64, plan::ScheduleAttrs::VT_WARMUP_STEPS},
    {"total_steps", K::I64, plan::ScheduleAttrs::VT_TOTAL_STEPS},
    {"min_lr_ratio", K::F32, plan::ScheduleAttrs::VT_MIN_LR_RATIO}};
inline constexpr AttrField kClip[] = {{"max_norm", K::F32, plan::ClipAttrs::VT_MAX_NORM}};
inline constexpr AttrField kDropout[] = {{"ratio", K::F32, plan::DropoutAttrs::VT_RATIO},
                                         {"stream", K::I64, plan::DropoutAttrs::VT_STREAM},
                                         {"micro_step", K::I64, plan::DropoutAttrs::VT_MICRO_STEP, P::Default}};
// All-gathers reduce nothing; slot and group are set only by the overlap
// and bucketing passes (0: synchronous, ungrouped).
inline constexpr AttrField kCollective[] = {
    {"reduction", K::Reduction, plan::CollectiveAttrs::VT_REDUCTION, P::Default},
    {"slot", K::U32, plan::CollectiveAttrs::VT_SLOT, P::Default},
    {"group", K::U32, plan::CollectiveAttrs::VT_GROUP, P::Default}};
inline constexpr AttrField kWait[] = {{"slot", K::U32, plan::WaitAttrs::VT_SLOT}};
inline constexpr AttrField kSlice[] = {{"starts", K::I64s, plan::SliceAttrs::VT_STARTS},
                                       {"steps", K::I64s, plan::SliceAttrs::VT_STEPS}};
inline constexpr AttrField kLayerNorm[] = {{"axis", K::I64, plan::LayerNormAttrs::VT_AXIS},
                                           {"epsilon", K::F32, plan::LayerNormAttrs::VT_EPSILON}};
inline constexpr AttrField kConv[] = {{"strides", K::I64s, plan::ConvAttrs::VT_STRIDES},
                                      {"pads", K::I64s, plan::ConvAttrs::VT_PADS},
                                      {"dilations", K::I64s, plan::ConvAttrs::VT_DILATIONS},
                                      {"group", K::I64, plan::ConvAttrs::VT_GROUP}};
inline constexpr AttrField kPool[] = {
    {"kernel_shape", K::I64s, plan::PoolAttrs::VT_KERNEL_SHAPE},
    {"strides", K::I64s, plan::PoolAttrs::VT_STRIDES},
    {"pads", K::I64s, plan::PoolAttrs::VT_PADS},
    {"count_include_pad", K::Bool, plan::PoolAttrs::VT_COUNT_INCLUDE_PAD, P::Default},
    {"ceil_mode", K::Bool, plan::PoolAttrs::VT_CEIL_MODE, P::Default},
    {"dilations", K::I64s, plan::PoolAttrs::VT_DILATIONS, P::Default}};
inline constexpr AttrField kElementwise[] = {{"alpha", K::F32, plan::ElementwiseAttrs::VT_ALPHA},
                                             {"beta", K::F32, plan::ElementwiseAttrs::VT_BETA},
                                             {"gamma", K::F32, plan::ElementwiseAttrs::VT_GAMMA},
                                             {"min", K::F32, plan::ElementwiseAttrs::VT_MIN},
                                             {"max", K::F32, plan::ElementwiseAttrs::VT_MAX}};
inline constexpr AttrField kArgReduce[] = {
    {"axis", K::I64, plan::ArgReduceAttrs::VT_AXIS},
    {"select_last_index", K::Bool, plan::ArgReduceAttrs::VT_SELECT_LAST_INDEX, P::Default}};
inline constexpr AttrField kCumSum[] = {{"axis", K::I64, plan::CumSumAttrs::VT_AXIS},
                                        {"exclusive", K::Bool, plan::CumSumAttrs::VT_EXCLUSIVE, P::Default},
                                        {"reverse", K::Bool, plan::CumSumAttrs::VT_REVERSE, P::Default}};
inline constexpr AttrField kTopK[] = {{"axis", K::I64, plan::TopKAttrs::VT_AXIS},
                                      {"largest", K::Bool, plan::TopKAttrs::VT_LARGEST, P::Default}};

constexpr bool same_name(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}
// The ElementwiseAttrs fields an elementwise op does not list: its
// unused_fields.
template <class Op>
constexpr uint8_t unused_elementwise_fields() {
  uint8_t unused = 0;
  for (size_t i = 0; i < std::size(kElementwise); ++i) {
    bool listed = false;
    for (const elementwise::Attribute& a : Op::kAttributes) listed = listed || same_name(a.name, kElementwise[i].name);
    if (!listed) unused = uint8_t(unused | 1u << i);
  }
  return unused;
}
inline constexpr AttrField kBatchNorm[] = {{"epsilon", K::F32, plan::BatchNormAttrs::VT_EPSILON},
                                           {"momentum", K::F32, plan::BatchNormAttrs::VT_MOMENTUM}};

template <size_t N>
constexpr AttrTable table(Attrs type, const AttrField (&fields)[N]) {
  return {type, fields, N};
}

inline constexpr AttrTable kAttrTables[] = {
    table(Attrs::GemmAttrs, kGemm),         table(Attrs::AxisAttrs, kAxis),
    table(Attrs::LossAttrs, kLoss),         table(Attrs::ReduceAttrs, kReduce),
    table(Attrs::PermAttrs, kPerm),         table(Attrs::FillAttrs, kFill),
    table(Attrs::SgdAttrs, kSgd),           table(Attrs::AdamWAttrs, kAdamW),
    table(Attrs::CollectiveAttrs, kCollective), table(Attrs::SliceAttrs, kSlice),
    table(Attrs::LayerNormAttrs, kLayerNorm), table(Attrs::ConvAttrs, kConv),
    table(Attrs::PoolAttrs, kPool),         table(Attrs::BatchNormAttrs, kBatchNorm),
    table(Attrs::WaitAttrs, kWait),         table(Attrs::ElementwiseAttrs, kElementwise),
    table(Attrs::ScheduleAttrs, kSchedule), table(Attrs::ClipAttrs, kClip),
    table(Attrs::DropoutAttrs, kDropout),   table(Attrs::ArgReduceAttrs, kArgReduce),
    table(Attrs::CumSumAttrs, kCumSum),     table(Attrs::TopKAttrs, kTopK),
};

// Operand roles are documented with each opcode in schema/plan.fbs.
inline constexpr OpDescriptor kOps[] = {
#define ZERO_BINARY_ROW(op) {Opcode::op, 2, 2, 1, 1, Attrs::NONE},
#define ZERO_UNARY_ROW(op) {Opcode::op, 1, 1, 1, 1, Attrs::NONE},
#define ZERO_DERIVATIVE_ROWS(op) ZERO_UNARY_ROW(op) {Opcode::op##Grad, 2, 2, 1, 1, Attrs::NONE},
    ZERO_ELEMENTWISE_BINARY_OPS(ZERO_BINARY_ROW)
    ZERO_ELEMENTWISE_UNARY_OPS(ZERO_UNARY_ROW)
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_DERIVATIVE_ROWS)
    // the fields of the attributes the op does not have are unused
#define ZERO_ATTRIBUTE_ROWS(op) \
    {Opcode::op, 1, 1, 1, 1, Attrs::ElementwiseAttrs, unused_elementwise_fields<elementwise::op>()}, \
    {Opcode::op##Grad, 2, 2, 1, 1, Attrs::ElementwiseAttrs, unused_elementwise_fields<elementwise::op>()},
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ATTRIBUTE_ROWS)
    ZERO_ELEMENTWISE_TYPED_BINARY_OPS(ZERO_BINARY_ROW)
    ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_BINARY_ROW)
    ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_BINARY_ROW)
    ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_UNARY_ROW)
#undef ZERO_ATTRIBUTE_ROWS
#undef ZERO_BINARY_ROW
#undef ZERO_UNARY_ROW
#undef ZERO_DERIVATIVE_ROWS
    {Opcode::MatMul, 2, 2, 1, 1, Attrs::NONE},
    {Opcode::Copy, 1, 1, 1, 1, Attrs::NONE},
    {Opcode::Cast, 1, 1, 1, 1, Attrs::NONE},
    {Opcode::Expand, 1, 1, 1, 1, Attrs::NONE},
    {Opcode::Gemm, 2, 3, 1, 1, Attrs::GemmAttrs},
    {Opcode::Softmax, 1, 1, 1, 1, Attrs::AxisAttrs},
    {Opcode::LogSoftmax, 1, 1, 1, 1, Attrs::AxisAttrs},
    // Losses take optional class weights as their last input.
    {Opcode::SoftmaxCrossEntropyLoss, 2, 3, 1, 2, Attrs::LossAttrs},
    {Opcode::NegativeLogLikelihoodLoss, 2, 3, 1, 1, Attrs::LossAttrs},
    {Opcode::ReduceSum, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ReduceMean, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ReduceMax, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ReduceMin, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ReduceProd, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ReduceL2, 1, 1, 1, 1, Attrs::ReduceAttrs},
    {Opcode::ArgMax, 1, 1, 1, 1, Attrs::ArgReduceAttrs},
    {Opcode::ArgMin, 1, 1, 1, 1, Attrs::ArgReduceAttrs},
    {Opcode::CumSum, 1, 1, 1, 1, Attrs::CumSumAttrs},
    {Opcode::GatherElements, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::ScatterElements, 3, 3, 1, 1, Attrs::AxisAttrs},
    {Opcode::ScatterElementsAdd, 3, 3, 1, 1, Attrs::AxisAttrs},
    {Opcode::ScatterElementsMul, 3, 3, 1, 1, Attrs::AxisAttrs},
    {Opcode::GatherND, 2, 2, 1, 1, Attrs::NONE},
    {Opcode::ScatterND, 3, 3, 1, 1, Attrs::NONE},
    {Opcode::ScatterNDAdd, 3, 3, 1, 1, Attrs::NONE},
    {Opcode::ScatterNDMul, 3, 3, 1, 1, Attrs::NONE},
    // k only where the model's K is not a compile-time constant.
    {Opcode::TopK, 1, 2, 2, 2, Attrs::TopKAttrs},
    {Opcode::GatherElementsGrad, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::ScatterElementsGrad, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::GatherNDGrad, 2, 2, 1, 1, Attrs::NONE},
    {Opcode::ScatterNDGrad, 2, 2, 1, 1, Attrs::NONE},
    {Opcode::Transpose, 1, 1, 1, 1, Attrs::PermAttrs},
    {Opcode::Gather, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::Slice, 1, 1, 1, 1, Attrs::SliceAttrs},
    {Opcode::Concat, 1, 1024, 1, 1, Attrs::AxisAttrs},
    {Opcode::Where, 3, 3, 1, 1, Attrs::NONE},
    // mean and inv_std_dev may be omitted when no gradient reads them.
    {Opcode::LayerNormalization, 3, 3, 1, 3, Attrs::LayerNormAttrs},
    {Opcode::Conv, 2, 3, 1, 1, Attrs::ConvAttrs},
    // argmax may be omitted when no gradient needs it.
    {Opcode::MaxPool, 1, 1, 1, 2, Attrs::PoolAttrs},
    // Average pools are not dilated (ONNX before opset 19).
    {Opcode::AveragePool, 1, 1, 1, 1, Attrs::PoolAttrs, 0b100000},
    // saved_mean and saved_inv_std likewise.
    {Opcode::BatchNormalization, 5, 5, 1, 3, Attrs::BatchNormAttrs},
    {Opcode::Fill, 0, 0, 1, 1, Attrs::FillAttrs},
    {Opcode::SoftmaxGrad, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::LogSoftmaxGrad, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::SoftmaxCrossEntropyLossGrad, 3, 4, 1, 1, Attrs::LossAttrs},
    {Opcode::NegativeLogLikelihoodLossGrad, 3, 4, 1, 1, Attrs::LossAttrs},
    {Opcode::GatherGrad, 2, 2, 1, 1, Attrs::AxisAttrs},
    {Opcode::SliceGrad, 1, 1, 1, 1, Attrs::SliceAttrs},
    // dscale and dbias may be omitted when unused.
    // The gradients read the saved statistics, never epsilon (or momentum).
    {Opcode::LayerNormalizationGrad, 5, 5, 1, 3, Attrs::LayerNormAttrs, 0b10},
    {Opcode::ConvGradInput, 2, 2, 1, 1, Attrs::ConvAttrs},
    {Opcode::ConvGradWeight, 2, 2, 1, 1, Attrs::ConvAttrs},
    {Opcode::MaxPoolGrad, 2, 2, 1, 1, Attrs::PoolAttrs},
    {Opcode::AveragePoolGrad, 1, 1, 1, 1, Attrs::PoolAttrs, 0b100000},
    {Opcode::BatchNormalizationGrad, 5, 5, 1, 3, Attrs::BatchNormAttrs, 0b11},
    // Optimizers update in place; outputs, if listed, only document that.
    {Opcode::SgdUpdate, 2, 5, 0, 3, Attrs::SgdAttrs},
    {Opcode::AdamWUpdate, 5, 7, 0, 5, Attrs::AdamWAttrs},
    {Opcode::IncrementStep, 1, 1, 0, 1, Attrs::NONE},
    {Opcode::LearningRate, 1, 1, 1, 1, Attrs::ScheduleAttrs},
    {Opcode::SumSquares, 1, 1, 1, 1, Attrs::NONE},
    {Opcode::ClipCoefficient, 1, 1, 2, 2, Attrs::ClipAttrs},
    {Opcode::Dropout, 2, 2, 1, 1, Attrs::DropoutAttrs},
    {Opcode::DropoutGrad, 2, 2, 1, 1, Attrs::DropoutAttrs},
    {Opcode::AllReduce, 1, 1, 1, 1, Attrs::CollectiveAttrs},
    {Opcode::ReduceScatter, 1, 1, 1, 1, Attrs::CollectiveAttrs},
    {Opcode::AllGather, 1, 1, 1, 1, Attrs::CollectiveAttrs},
    {Opcode::Wait, 2, 2, 0, 0, Attrs::WaitAttrs},
};
}  // namespace detail
// clang-format on

// An elementwise op of zero/elementwise_ops.h as the compiler sees it: the
// ONNX op of its name imports one to one, and lowers to its opcode. Mod and
// FMod (ZERO_ELEMENTWISE_TYPED_BINARY_OPS) are not in this table: ONNX's Mod
// picks one of them by its fmod attribute.
struct ElementwiseOp {
  const char* name;  // ONNX op type and plan opcode name
  plan::Opcode opcode;
  int arity;
  bool has_derivative;      // a derivative kernel, opcode <name>Grad
  plan::Opcode derivative;  // (dy, saved) -> dx
  elementwise::Saved saved;
  // ONNX attributes with their defaults (plan ElementwiseAttrs), or none.
  const elementwise::Attribute* attributes = nullptr;
  size_t num_attributes = 0;
};

// clang-format off
#define ZERO_BINARY_OP(op) {#op, plan::Opcode::op, 2, false, plan::Opcode::op, elementwise::Saved::Input},
#define ZERO_UNARY_OP(op) {#op, plan::Opcode::op, 1, false, plan::Opcode::op, elementwise::Saved::Input},
#define ZERO_DERIVATIVE_OP(op) {#op, plan::Opcode::op, 1, true, plan::Opcode::op##Grad, elementwise::op::kSaved},
inline constexpr ElementwiseOp kElementwiseOps[] = {
    ZERO_ELEMENTWISE_BINARY_OPS(ZERO_BINARY_OP)
    ZERO_ELEMENTWISE_UNARY_OPS(ZERO_UNARY_OP)
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_DERIVATIVE_OP)
#define ZERO_ATTRIBUTE_OP(op) {#op, plan::Opcode::op, 1, true, plan::Opcode::op##Grad, elementwise::op::kSaved, \
                               elementwise::op::kAttributes, std::size(elementwise::op::kAttributes)},
    ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ATTRIBUTE_OP)
    ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_BINARY_OP)
    ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_BINARY_OP)
    ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_UNARY_OP)
#undef ZERO_ATTRIBUTE_OP
};
#undef ZERO_BINARY_OP
#undef ZERO_UNARY_OP
#undef ZERO_DERIVATIVE_OP
// clang-format on

// The elementwise op called `name`, or nullptr.
inline const ElementwiseOp* find_elementwise(std::string_view name) {
  for (const ElementwiseOp& op : kElementwiseOps)
    if (name == op.name) return &op;
  return nullptr;
}

// The descriptor of `opcode`, or nullptr for a value the schema lacks.
inline const OpDescriptor* find_op(plan::Opcode opcode) {
  for (const OpDescriptor& op : detail::kOps)
    if (op.opcode == opcode) return &op;
  return nullptr;
}

// The fields of an attribute table, or nullptr (also for NONE).
inline const AttrTable* find_attr_table(plan::Attrs type) {
  for (const AttrTable& table : detail::kAttrTables)
    if (table.type == type) return &table;
  return nullptr;
}

// A schema enum's value by its name in lower case, as the plan dialect
// spells them ("mean" for Mean, "cosine" for Cosine).
template <typename E, size_t N>
bool parse_enum(const char* name, size_t size, const E (&values)[N], const char* (*spell)(E), E* out) {
  for (E value : values) {
    const char* n = spell(value);
    size_t i = 0;
    while (i < size && n[i] && (n[i] | 0x20) == name[i]) ++i;
    if (i == size && n[i] == '\0') {
      *out = value;
      return true;
    }
  }
  return false;
}

// "sum" | "mean" | "none".
inline bool parse_reduction(const char* name, size_t size, plan::Reduction* out) {
  return parse_enum(name, size, plan::EnumValuesReduction(), plan::EnumNameReduction, out);
}
// "constant" | "linear" | "cosine".
inline bool parse_schedule(const char* name, size_t size, plan::LrSchedule* out) {
  return parse_enum(name, size, plan::EnumValuesLrSchedule(), plan::EnumNameLrSchedule, out);
}
// The value of an enum-kinded field (Reduction, Schedule) as its byte.
inline bool parse_enum_field(AttrKind kind, const char* name, size_t size, uint8_t* out) {
  plan::Reduction reduction;
  plan::LrSchedule schedule;
  if (kind == AttrKind::Reduction && parse_reduction(name, size, &reduction)) {
    *out = uint8_t(reduction);
    return true;
  }
  if (kind == AttrKind::Schedule && parse_schedule(name, size, &schedule)) {
    *out = uint8_t(schedule);
    return true;
  }
  return false;
}

}  // namespace zero::plan_ops

#endif  // ZERO_PLAN_OPS_H
