// The elementwise op list (zero/elementwise_ops.h) against itself and the
// tables it drives: every derivative kernel is the derivative of its forward
// function (central differences, reading the forward input or result as the
// op declares), and every listed op has its plan descriptor and CPU kernels.
// New ops are covered by being listed.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <string>
#include <type_traits>

#include "backend.h"
#include "zero/elementwise_ops.h"
#include "zero/plan_ops.h"

namespace zero {
namespace {

// f and df: the forward function and its derivative kernel, (dy, saved) -> dx.
template <class F, class DF>
void expect_derivative_of_forward(const char* name, elementwise::Saved saved_tensor, F f, DF df) {
  for (double x = -2.5; x <= 2.5; x += 0.05) {
    // Kinks (Relu, Abs, LeakyRelu, Elu at 0; HardSigmoid's at -2.5 and 2.5 by
    // default) and poles (Reciprocal) are skipped.
    if (std::fabs(x) < 0.1 || std::fabs(std::fabs(x) - 2.5) < 0.1) continue;
    const double h = 1e-3;
    const double slope = (double(f(float(x + h))) - double(f(float(x - h)))) / (2 * h);
    const float saved = saved_tensor == elementwise::Saved::Input ? float(x) : f(float(x));
    const double dy = 0.75;
    const double got = df(float(dy), saved);
    EXPECT_NEAR(got, dy * slope, 2e-3 * std::fabs(dy * slope) + 2e-4) << name << " at x = " << x;
  }
}

// An op's attributes at their ONNX defaults, in the Params field of each
// one's name.
template <class Op>
elementwise::Params default_params() {
  elementwise::Params p{};
  for (const elementwise::Attribute& a : Op::kAttributes) {
    const std::string name = a.name;
    float* field = name == "alpha"   ? &p.alpha
                   : name == "beta"  ? &p.beta
                   : name == "gamma" ? &p.gamma
                   : name == "min"   ? &p.min
                   : name == "max"   ? &p.max
                                     : nullptr;
    EXPECT_NE(field, nullptr) << "attribute " << name << " has no Params field";
    if (field) *field = a.default_value;
  }
  return p;
}

TEST(Elementwise, DerivativeKernelsDifferentiateTheirForwardFunctions) {
#define ZERO_CHECK(op)                                                                   \
  expect_derivative_of_forward(                                                          \
      #op, elementwise::op::kSaved, [](float x) { return elementwise::op::forward(x); }, \
      [](float dy, float s) { return elementwise::op::derivative(dy, s); });
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_CHECK)
#undef ZERO_CHECK
#define ZERO_CHECK(op)                                                                         \
  {                                                                                            \
    const elementwise::Params p = default_params<elementwise::op>();                           \
    expect_derivative_of_forward(                                                              \
        #op, elementwise::op::kSaved, [&](float x) { return elementwise::op::forward(x, p); }, \
        [&](float dy, float s) { return elementwise::op::derivative(dy, s, p); });             \
  }
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_CHECK)
#undef ZERO_CHECK
  // Clip's defaults bound nothing; bounds between the points checked.
  elementwise::Params clip{};
  clip.min = -1.225f;
  clip.max = 1.775f;
  expect_derivative_of_forward(
      "Clip [-1.225, 1.775]", elementwise::Clip::kSaved, [&](float x) { return elementwise::Clip::forward(x, clip); },
      [&](float dy, float s) { return elementwise::Clip::derivative(dy, s, clip); });
}

TEST(Elementwise, EveryOpHasDescriptorsAndCpuKernels) {
  for (const plan_ops::ElementwiseOp& op : plan_ops::kElementwiseOps) {
    EXPECT_STREQ(plan::EnumNameOpcode(op.opcode), op.name);
    const plan_ops::OpDescriptor* d = plan_ops::find_op(op.opcode);
    ASSERT_NE(d, nullptr) << op.name;
    EXPECT_EQ(d->min_in, op.arity) << op.name;
    EXPECT_NE(cpu_backend().kernel(op.opcode), nullptr) << op.name;
    if (!op.has_derivative) continue;
    EXPECT_EQ(std::string(plan::EnumNameOpcode(op.derivative)), std::string(op.name) + "Grad");
    ASSERT_NE(plan_ops::find_op(op.derivative), nullptr) << op.name;
    EXPECT_EQ(plan_ops::find_op(op.derivative)->min_in, 2) << op.name;
    EXPECT_NE(cpu_backend().kernel(op.derivative), nullptr) << op.name;
  }
}

// A kernel is a KernelDef, which only define_kernel<prepare, execute> builds:
// no table entry, on any backend, can lack its load-time prepare.
static_assert(!std::is_default_constructible_v<KernelDef>);
static_assert(!std::is_constructible_v<KernelDef, KernelDef::Prepare, KernelDef::Execute>);
static_assert(!std::is_constructible_v<KernelDef, std::nullptr_t, KernelDef::Execute>);

// Every opcode a plan may hold is either a collective (the executor sends it
// to the communicator) or a CPU kernel, which define_kernel (backend.h) gives
// a load-time prepare.
TEST(Backends, CpuImplementsEveryComputeOpcode) {
  for (plan::Opcode op : plan::EnumValuesOpcode()) {
    if (!plan_ops::find_op(op)) continue;
    const bool collective = op == plan::Opcode::AllReduce || op == plan::Opcode::ReduceScatter ||
                            op == plan::Opcode::AllGather || op == plan::Opcode::Wait;
    EXPECT_EQ(cpu_backend().kernel(op) != nullptr, !collective) << plan::EnumNameOpcode(op);
  }
}

}  // namespace
}  // namespace zero
