// Loading and running whole plans built with the FlatBuffers builder, and
// rejecting bad ones without crashing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "backend.h"
#include "test_plans.h"
#include "zero/kernel_scratch.h"
#include "zero/plan_ops.h"
#include "zero/runtime.h"

namespace zero {
namespace {

using test::LinRegOptions;
using test::linreg_plan;

Status open(const std::vector<uint8_t>& bytes, Communicator* comm, std::unique_ptr<Session>* s) {
  return Session::open_buffer(bytes.data(), bytes.size(), comm, default_allocator(), s);
}

// Trains a few steps and compares the loss and W with a direct computation.
void check_linreg(bool sharded, bool async = false) {
  LinRegOptions o;
  o.sharded = sharded;
  o.async = async;
  o.features = 3;
  o.batch = 4;
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  Status st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(s->inputs().size(), 2u);
  EXPECT_EQ(s->inputs()[0].shape, (std::vector<int64_t>{4, 3}));
  ASSERT_EQ(s->parameters().size(), 1u);
  EXPECT_EQ(s->parameters()[0].shape, (std::vector<int64_t>{3, 1}));
  EXPECT_GT(s->arena_bytes(), 0u);

  std::vector<double> w = {0.1, 0.2, 0.3};
  std::mt19937 g(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (int step = 0; step < 5; ++step) {
    std::vector<float> x(12), y(4);
    for (float& v : x) v = d(g);
    for (float& v : y) v = d(g);
    ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {4, 3}).ok());
    ASSERT_TRUE(s->bind_input("y", y.data(), DType::F32, {4, 1}).ok());
    st = s->step();
    ASSERT_TRUE(st.ok()) << st.message();
    double loss = 0, grad[3] = {};
    for (int i = 0; i < 4; ++i) {
      double pred = 0;
      for (int k = 0; k < 3; ++k) pred += x[size_t(i * 3 + k)] * w[size_t(k)];
      const double diff = pred - y[size_t(i)];
      loss += diff * diff / 4;
      for (int k = 0; k < 3; ++k) grad[k] += 2 * diff / 4 * x[size_t(i * 3 + k)];
    }
    for (int k = 0; k < 3; ++k) w[size_t(k)] -= 0.1 * grad[k];
    float got = 0;
    ASSERT_TRUE(s->loss(&got).ok());
    EXPECT_NEAR(got, loss, 1e-5);
    std::vector<float> wp;
    ASSERT_TRUE(s->read_parameter("W", &wp).ok());
    ASSERT_EQ(wp.size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(wp[size_t(k)], w[size_t(k)], 1e-5);
  }
  EXPECT_FALSE(s->read_parameter("nope", nullptr).ok());
}

TEST(Plan, LinearRegressionTrains) { check_linreg(false); }
TEST(Plan, AsyncCollectivesTrain) {
  check_linreg(false, /*async=*/true);
  check_linreg(true, /*async=*/true);
}
TEST(Plan, ShardedLinearRegressionTrains) { check_linreg(true); }

TEST(Plan, BindInputChecksShapeAndType) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  ASSERT_TRUE(open(linreg_plan({}), comm.get(), &s).ok());
  std::vector<float> x(100);
  Status st = s->bind_input("x", x.data(), DType::F32, {5, 3});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "input 'x': expected shape [4, 3], got [5, 3]");
  EXPECT_FALSE(s->bind_input("x", x.data(), DType::I64, {4, 3}).ok());
  EXPECT_FALSE(s->bind_input("z", x.data(), DType::F32, {4, 3}).ok());
}

TEST(Plan, RejectsWrongVersionBackendWorld) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  LinRegOptions o;
  o.version = 2;
  Status st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("format version 2 is not supported"), std::string::npos) << st.message();
  o = {};
  o.backend = plan::Backend::Cuda;
  st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("plan is for backend Cuda"), std::string::npos) << st.message();
  o = {};
  o.world_size = 4;
  st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("compiled for world size 4 but running with 1"), std::string::npos) << st.message();
}

TEST(Plan, RejectsBadBackendLossAndArenaAtLoad) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  LinRegOptions o;
  o.backend = plan::Backend(7);
  Status st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("plan is for backend 7, which this runtime does not know"), std::string::npos)
      << st.message();
  // A loss index past the values, or naming a non-scalar, is a load error
  // (not a failure after the first step).
  for (uint32_t loss : {99u, 0u}) {
    test::PlanBuilder b;
    uint32_t v = b.fresh("v", plan::DType::F32, {4});
    b.op(plan::Opcode::Relu, {v}, {v});
    st = open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok()) << loss;
    EXPECT_NE(st.message().find("loss: value " + std::to_string(loss) + " is not a scalar F32 value"),
              std::string::npos)
        << st.message();
  }
  // An arena beyond the machine's memory fails with the sizes before any
  // allocation (64 TiB: more than any test machine has).
  test::PlanBuilder b;
  uint32_t loss = b.value("loss", plan::DType::F32, {}, plan::ValueKind::Activation, b.reserve(uint64_t(1) << 46));
  b.op(plan::Opcode::Relu, {loss}, {loss});
  st = open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("the plan needs an arena of 65536.00 GiB (70368744177664 bytes) per rank, but only "),
            std::string::npos)
      << st.message();
}

// The descriptor table (zero/plan_ops.h) covers the schema, and the CPU
// backend implements every kernel opcode in it.
TEST(Plan, EveryOpcodeHasADescriptor) {
  for (plan::Opcode op : plan::EnumValuesOpcode()) {
    const plan_ops::OpDescriptor* desc = plan_ops::find_op(op);
    ASSERT_NE(desc, nullptr) << plan::EnumNameOpcode(op);
    EXPECT_LE(desc->min_in, desc->max_in) << plan::EnumNameOpcode(op);
    EXPECT_LE(desc->min_out, desc->max_out) << plan::EnumNameOpcode(op);
    if (desc->attrs != plan::Attrs::NONE) EXPECT_NE(plan_ops::find_attr_table(desc->attrs), nullptr);
    const bool kernel = op != plan::Opcode::AllReduce && op != plan::Opcode::ReduceScatter &&
                        op != plan::Opcode::AllGather && op != plan::Opcode::Wait;
    EXPECT_EQ(cpu_backend().kernel(op) != nullptr, kernel) << plan::EnumNameOpcode(op);
  }
  for (plan::Attrs a : plan::EnumValuesAttrs())
    if (a != plan::Attrs::NONE) EXPECT_NE(plan_ops::find_attr_table(a), nullptr) << plan::EnumNameAttrs(a);
  plan::Reduction r;
  EXPECT_TRUE(plan_ops::parse_reduction("mean", 4, &r) && r == plan::Reduction::Mean);
  EXPECT_FALSE(plan_ops::parse_reduction("avg", 3, &r));
  EXPECT_FALSE(plan_ops::parse_reduction("Mean", 4, &r));
}

TEST(Plan, RejectsAttributesOfAnotherTable) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  test::PlanBuilder b;
  uint32_t m = b.fresh("m", plan::DType::F32, {2, 2});
  uint32_t loss = b.fresh("loss", plan::DType::F32, {});
  b.op(plan::Opcode::Gemm, {m, m}, {m}, plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b.fbb, 0).Union());
  Status st = open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("instruction 0 (Gemm): attributes AxisAttrs, expected GemmAttrs"), std::string::npos)
      << st.message();
}

TEST(Plan, TruncatedAndCorruptBytesFailCleanly) {
  auto comm = make_single_rank_communicator();
  const auto good = linreg_plan({});
  std::unique_ptr<Session> s;
  // The builder may end the buffer with a few bytes of alignment padding,
  // which a reader never touches; any cut into real data must fail.
  for (size_t n = 0; n + 8 < good.size(); n += 7) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
    EXPECT_FALSE(open(cut, comm.get(), &s).ok()) << "truncated to " << n;
  }
  // Random byte flips: every outcome must be a Status (success or error),
  // and a plan that still loads must run without crashing.
  std::mt19937 g(7);
  int rejected = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    auto bad = good;
    for (int k = 0; k < 3; ++k) bad[g() % bad.size()] = uint8_t(g());
    s.reset();
    Status st = open(bad, comm.get(), &s);
    if (!st.ok()) {
      ++rejected;
      continue;
    }
    std::vector<float> x(12, 0.5f), y(4, 0.25f);
    if (s->bind_input("x", x.data(), DType::F32, {4, 3}).ok() && s->bind_input("y", y.data(), DType::F32, {4, 1}).ok())
      (void)s->step();
  }
  EXPECT_GT(rejected, 0);
  std::vector<uint8_t> junk(64, 0xab);
  Status st = open(junk, comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not a zero plan"), std::string::npos) << st.message();
}

TEST(Plan, RejectsOutOfRangeIndicesAndArena) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  {
    test::PlanBuilder b;
    uint32_t v = b.fresh("v", plan::DType::F32, {4});
    b.op(plan::Opcode::Relu, {v}, {7});
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("output value index 7 out of range"), std::string::npos) << st.message();
  }
  {
    test::PlanBuilder b;
    b.value("big", plan::DType::F32, {1000}, plan::ValueKind::Activation, 0);
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("outside the arena"), std::string::npos) << st.message();
  }
  {
    test::PlanBuilder b;
    uint32_t v = b.fresh("v", plan::DType::F32, {4});
    float data[3] = {};
    b.init(v, data, sizeof(data));
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("initializer 0: 12 bytes for a value of 16"), std::string::npos) << st.message();
  }
  {
    test::PlanBuilder b;
    uint32_t v = b.fresh("v", plan::DType::F32, {4});
    b.op(plan::Opcode(77), {v}, {v});
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("unknown opcode 77"), std::string::npos) << st.message();
  }
}

TEST(Plan, LoadTimeKernelValidation) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  {
    // Slice reading past the end of x: rejected at load, not at step.
    test::PlanBuilder b;
    uint32_t x = b.fresh("x", plan::DType::F32, {5, 4});
    uint32_t y = b.fresh("y", plan::DType::F32, {3, 4});
    std::vector<int64_t> starts = {1, 0}, steps = {2, 1};
    b.op(plan::Opcode::Slice, {x}, {y}, plan::Attrs::SliceAttrs,
         plan::CreateSliceAttrsDirect(b.fbb, &starts, &steps).Union());
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("instruction 0: Slice: dimension 0: start 1 step 2"), std::string::npos)
        << st.message();
  }
  {
    test::PlanBuilder b;
    uint32_t d = b.fresh("d", plan::DType::F32, {5, 3});
    uint32_t i = b.fresh("i", plan::DType::I64, {2});
    uint32_t y = b.fresh("y", plan::DType::F32, {2, 4});
    b.op(plan::Opcode::Gather, {d, i}, {y}, plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b.fbb, 0).Union());
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("does not match gathering"), std::string::npos) << st.message();
  }
  {
    test::PlanBuilder b;
    uint32_t x = b.fresh("x", plan::DType::F32, {2, 3});
    b.op(plan::Opcode::LayerNormalization, {x, x}, {x});
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("wrong operand count (2 inputs, 1 outputs)"), std::string::npos) << st.message();
  }
  {
    // Every kernel's operand checks run at load: a MatMul of mismatched
    // inner dimensions and an Add that cannot broadcast fail before a step.
    for (plan::Opcode op : {plan::Opcode::MatMul, plan::Opcode::Add}) {
      test::PlanBuilder b;
      uint32_t loss = b.fresh("loss", plan::DType::F32, {});
      uint32_t a = b.fresh("a", plan::DType::F32, {2, 3});
      uint32_t c = b.fresh("c", plan::DType::F32, {4});
      uint32_t y = b.fresh("y", plan::DType::F32, {2, 3});
      b.op(op, {a, c}, {y});
      Status st = open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s);
      ASSERT_FALSE(st.ok()) << plan::EnumNameOpcode(op);
      EXPECT_NE(st.message().find(std::string("instruction 0: ") + plan::EnumNameOpcode(op)), std::string::npos)
          << st.message();
    }
  }
  {
    // Concat takes any number of inputs, but at least one.
    test::PlanBuilder b;
    uint32_t x = b.fresh("x", plan::DType::F32, {2, 3});
    b.op(plan::Opcode::Concat, {}, {x});
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("wrong operand count"), std::string::npos) << st.message();
  }
}

// Model state (Parameter.trainable = false) is listed, read and updated like
// the parameters; BatchNormalization trains scale and bias while updating the
// running statistics in place.
TEST(Plan, BatchNormModelState) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  const int64_t B = 4, C = 2, S = 9;
  Status st = open(test::batchnorm_plan(1, B, 0.1f), comm.get(), &s);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(s->parameters().size(), 4u);
  EXPECT_EQ(s->parameters()[2].name, "bn.running_mean");
  EXPECT_EQ(s->parameters()[3].shape, (std::vector<int64_t>{2}));

  std::vector<double> scale = {1, 0.5}, bias = {0, 0.1}, rm = {0, 0}, rv = {1, 1};
  std::mt19937 g(3);
  std::uniform_real_distribution<float> d(-1, 3);
  for (int step = 0; step < 3; ++step) {
    std::vector<float> x(size_t(B * C * S));
    for (float& v : x) v = d(g);
    ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {B, C, 3, 3}).ok());
    st = s->step();
    ASSERT_TRUE(st.ok()) << st.message();
    // Reference step in double.
    const double n = double(B * S);
    double loss = 0;
    for (int64_t c = 0; c < C; ++c) {
      double m = 0, v = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i) m += x[size_t((b * C + c) * S + i)];
      m /= n;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i) v += std::pow(x[size_t((b * C + c) * S + i)] - m, 2);
      v /= n;
      double ds = 0, db = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i) {
          const double xhat = (x[size_t((b * C + c) * S + i)] - m) / std::sqrt(v + 1e-5);
          const double y = xhat * scale[size_t(c)] + bias[size_t(c)];
          loss += y * y / (n * double(C));
          ds += 2 * y / (n * double(C)) * xhat;
          db += 2 * y / (n * double(C));
        }
      scale[size_t(c)] -= 0.1 * ds;
      bias[size_t(c)] -= 0.1 * db;
      rm[size_t(c)] = 0.9 * rm[size_t(c)] + 0.1 * m;
      rv[size_t(c)] = 0.9 * rv[size_t(c)] + 0.1 * v * n / (n - 1);
    }
    float l;
    ASSERT_TRUE(s->loss(&l).ok());
    EXPECT_NEAR(l, loss, 1e-5 * loss);
    const std::pair<const char*, std::vector<double>*> want[] = {
        {"bn.weight", &scale}, {"bn.bias", &bias}, {"bn.running_mean", &rm}, {"bn.running_var", &rv}};
    for (const auto& [name, ref] : want) {
      std::vector<float> got;
      ASSERT_TRUE(s->read_parameter(name, &got).ok());
      ASSERT_EQ(got.size(), 2u);
      for (size_t k = 0; k < 2; ++k) EXPECT_NEAR(got[k], (*ref)[k], 1e-5) << name << " " << k << " step " << step;
    }
  }
}

TEST(Plan, ConvValidatedAtLoad) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  test::PlanBuilder b;
  uint32_t x = b.fresh("x", plan::DType::F32, {2, 3, 8, 8});
  uint32_t w = b.fresh("w", plan::DType::F32, {4, 3, 3, 3});
  uint32_t y = b.fresh("y", plan::DType::F32, {2, 4, 8, 8});
  std::vector<int64_t> strides = {2, 2}, pads = {1, 1, 1, 1};
  b.op(plan::Opcode::Conv, {x, w}, {y}, plan::Attrs::ConvAttrs,
       plan::CreateConvAttrsDirect(b.fbb, &strides, &pads).Union());
  Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("instruction 0: Conv: y [2, 4, 8, 8] does not match the convolution of x [2, 3, 8, 8]"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("expected [2, 4, 4, 4]"), std::string::npos) << st.message();
}

// What only a kernel's run used to check (an output in its input's bytes) is
// a prepare check now: the plan is rejected at load, before any step.
TEST(Plan, InPlaceIndexingRejectedAtLoad) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  for (plan::Opcode op : {plan::Opcode::Gather, plan::Opcode::GatherGrad}) {
    test::PlanBuilder b;
    const uint64_t at = b.reserve(4 * 3 * sizeof(float));
    const uint32_t d = b.value("d", plan::DType::F32, {4, 3}, plan::ValueKind::Activation, at);
    const uint32_t i = b.fresh("i", plan::DType::I64, {4});
    const uint32_t y = b.value("y", plan::DType::F32, {4, 3}, plan::ValueKind::Activation, at);  // d's bytes
    b.op(op, {d, i}, {y}, plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b.fbb, 0).Union());
    Status st = open(b.finish(1, 0, 1, plan::Backend::Cpu), comm.get(), &s);
    ASSERT_FALSE(st.ok()) << plan::EnumNameOpcode(op);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(op == plan::Opcode::Gather ? "instruction 0: Gather: gather cannot run in place"
                                                           : "instruction 0: GatherGrad: gather grad cannot run in place"),
              std::string::npos)
        << st.message();
  }
}

// A Conv plan: the session's kernel scratch is what zero/kernel_scratch.h
// gives for its shapes (the figure zero-opt --report counts), sized at load
// under the chunk cap in force then.
TEST(Plan, KernelScratchSizedAtLoad) {
  auto plan_bytes = [] {
    test::PlanBuilder b;
    const uint32_t loss = b.fresh("loss", plan::DType::F32, {});
    const uint32_t x = b.fresh("x", plan::DType::F32, {3, 2, 6, 6});
    const uint32_t w = b.fresh("w", plan::DType::F32, {4, 2, 3, 3});
    const uint32_t y = b.fresh("y", plan::DType::F32, {3, 4, 4, 4});
    const std::vector<int64_t> ones = {1, 1}, no_pads = {0, 0, 0, 0};
    b.op(plan::Opcode::Conv, {x, w}, {y}, plan::Attrs::ConvAttrs,
         plan::CreateConvAttrsDirect(b.fbb, &ones, &no_pads, &ones, 1).Union());
    b.op(plan::Opcode::ReduceMean, {y}, {loss}, plan::Attrs::ReduceAttrs, plan::CreateReduceAttrs(b.fbb).Union());
    b.input("x", x);
    return b.finish(1, loss, 1, plan::Backend::Cpu);
  };
  const kernel_scratch::ConvDims dims{3, 2, 6 * 6, 4, 4 * 4, 1, 3 * 3};
  auto comm = make_single_rank_communicator();
  for (int64_t cap : {kernel_scratch::kCpuConvChunkFloats, int64_t(1)}) {
    const int64_t old = set_cpu_conv_scratch_limit(cap);
    std::unique_ptr<Session> s;
    Status st = open(plan_bytes(), comm.get(), &s);
    set_cpu_conv_scratch_limit(old);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(s->kernel_scratch_bytes(), kernel_scratch::cpu_conv_bytes(dims, cap));
    st = s->step();
    EXPECT_TRUE(st.ok()) << st.message();
  }
  // All three images in one chunk: their columns, then one group's y.
  EXPECT_EQ(kernel_scratch::cpu_conv_bytes(dims), (18 * 3 * 16 + 4 * 3 * 16) * sizeof(float));
  EXPECT_EQ(kernel_scratch::cpu_conv_bytes(dims, 1), 18 * 16 * sizeof(float));  // one image per chunk
}

TEST(Plan, ForwardOnlyOutputs) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  Status st = open(test::forward_plan(2, 4, 3), comm.get(), &s);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(s->forward_only());
  EXPECT_TRUE(s->parameters().empty());
  ASSERT_EQ(s->inputs().size(), 3u);
  EXPECT_EQ(s->inputs()[1].shape, (std::vector<int64_t>{3}));
  EXPECT_TRUE(s->inputs()[2].shape.empty());
  ASSERT_EQ(s->outputs().size(), 3u);
  EXPECT_EQ(s->outputs()[0].name, "out/y");
  EXPECT_EQ(s->outputs()[0].dtype, DType::F32);
  EXPECT_EQ(s->outputs()[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(s->outputs()[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(s->outputs()[2].dtype, DType::I64);

  std::vector<float> x = {1, 2, 3, 4, -1, 0, 5, 2};
  std::vector<int64_t> idx = {3, -4, 1};
  float scale = 2.f;
  ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {2, 4}).ok());
  ASSERT_TRUE(s->bind_input("idx", idx.data(), DType::I64, {3}).ok());
  ASSERT_TRUE(s->bind_input("scale", &scale, DType::F32, {}).ok());
  st = s->step();
  ASSERT_TRUE(st.ok()) << st.message();

  std::vector<float> y, g;
  ASSERT_TRUE(s->read_output("out/y", &y).ok());
  ASSERT_EQ(y.size(), 8u);
  for (int r = 0; r < 2; ++r) {
    double m = 0, v = 0;
    for (int k = 0; k < 4; ++k) m += x[size_t(r * 4 + k)] / 4.0;
    for (int k = 0; k < 4; ++k) v += (x[size_t(r * 4 + k)] - m) * (x[size_t(r * 4 + k)] - m) / 4.0;
    for (int k = 0; k < 4; ++k)
      EXPECT_NEAR(y[size_t(r * 4 + k)], 2.0 * (x[size_t(r * 4 + k)] - m) / std::sqrt(v + 1e-5), 1e-5);
  }
  ASSERT_TRUE(s->read_output("out/g", &g).ok());
  EXPECT_EQ(g, (std::vector<float>{4, 1, 2, 2, -1, 0}));
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(s->read_output_bytes("ids", &bytes).ok());
  ASSERT_EQ(bytes.size(), 24u);
  EXPECT_EQ(std::memcmp(bytes.data(), idx.data(), 24), 0);
  ASSERT_TRUE(s->read_output_bytes("out/g", &bytes).ok());
  EXPECT_EQ(bytes.size(), 24u);

  EXPECT_NE(s->read_output("ids", &g).message().find("is int64, use read_output_bytes"), std::string::npos);
  EXPECT_NE(s->read_output("nope", &g).message().find("no output named 'nope'"), std::string::npos);
  float loss = 0;
  EXPECT_NE(s->loss(&loss).message().find("forward-only plan"), std::string::npos);

  // An index out of range is a step error, not a crash.
  idx[0] = 4;
  ASSERT_TRUE(s->bind_input("idx", idx.data(), DType::I64, {3}).ok());
  st = s->step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("Gather: index 4 out of range [-4, 4)"), std::string::npos) << st.message();
}

TEST(Plan, RejectsBadOutputs) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  const auto build = [](const std::string& second_name, uint32_t second_value) {
    test::PlanBuilder b;
    uint32_t v = b.fresh("v", plan::DType::F32, {4});
    b.output("a", v);
    b.output(second_name, second_value);
    return b.finish(1, 0, 1, plan::Backend::Cpu);
  };
  Status st = open(build("b", 9), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("output 1 'b': value index out of range"), std::string::npos) << st.message();
  st = open(build("a", 0), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("duplicate output name"), std::string::npos) << st.message();
  st = open(build("", 0), comm.get(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has no name"), std::string::npos) << st.message();
}

// Asynchronous collectives are checked at load: a data race or a slot that
// is never completed would otherwise corrupt results or hang a rank.
TEST(Plan, RejectsBadAsyncSchedules) {
  using plan::Opcode;
  struct Step {
    Opcode opcode;
    std::vector<uint32_t> in, out;
    uint32_t slot = 0, group = 0;
  };
  const auto build = [](const std::vector<Step>& steps) {
    test::PlanBuilder b;
    b.fresh("a", plan::DType::F32, {4});
    b.fresh("b", plan::DType::F32, {4});
    b.value("a.shifted", plan::DType::F32, {4}, plan::ValueKind::Activation, 8);  // overlaps a
    const uint32_t loss = b.fresh("loss", plan::DType::F32, {});
    for (const Step& st : steps) {
      if (st.opcode == Opcode::Wait)
        b.op(st.opcode, st.in, st.out, plan::Attrs::WaitAttrs, plan::CreateWaitAttrs(b.fbb, st.slot).Union());
      else if (st.opcode == Opcode::AllReduce)
        b.op(st.opcode, st.in, st.out, plan::Attrs::CollectiveAttrs,
             plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Sum, st.slot, st.group).Union());
      else
        b.op(st.opcode, st.in, st.out);
    }
    return b.finish(1, loss, 1, plan::Backend::Cpu);
  };
  const Step start_a{Opcode::AllReduce, {0}, {0}, 1}, wait_a{Opcode::Wait, {0, 0}, {}, 1};
  const struct {
    std::vector<Step> steps;
    const char* error;
  } cases[] = {
      {{wait_a}, "instruction 0 (Wait): slot 1 has no collective in flight"},
      {{start_a}, "instruction 0: asynchronous collective is never waited for"},
      {{start_a, {Opcode::Copy, {0}, {1}}, wait_a}, "instruction 1 (Copy): reads bytes of instruction 0 before its Wait"},
      {{start_a, {Opcode::Copy, {1}, {0}}, wait_a}, "instruction 1 (Copy): writes bytes of instruction 0 before its Wait"},
      {{start_a, {Opcode::AllReduce, {1}, {1}, 1}, wait_a}, "instruction 1 (AllReduce): slot 1 is still in flight"},
      {{start_a, {Opcode::Wait, {1, 1}, {}, 1}}, "instruction 1 (Wait): operands are not those of instruction 0"},
      {{{Opcode::AllReduce, {0}, {0}, 0, 7}}, "a grouped collective must be asynchronous"},
      {{{Opcode::AllReduce, {0}, {2}}}, "instruction 0 (AllReduce): input and output overlap, but not in the in-place form"},
  };
  auto comm = make_single_rank_communicator();
  for (const auto& c : cases) {
    std::unique_ptr<Session> s;
    Status st = open(build(c.steps), comm.get(), &s);
    ASSERT_FALSE(st.ok()) << c.error;
    EXPECT_NE(st.message().find(c.error), std::string::npos) << st.message();
  }
  // The same shapes, well formed: both collectives in one group, then waited.
  std::unique_ptr<Session> s;
  Status st = open(build({{Opcode::AllReduce, {0}, {0}, 1, 1},
                          {Opcode::AllReduce, {1}, {1}, 2, 1},
                          {Opcode::Wait, {1, 1}, {}, 2},
                          wait_a,
                          {Opcode::Copy, {0}, {1}}}),
                   comm.get(), &s);
  ASSERT_TRUE(st.ok()) << st.message();
  st = s->step();
  EXPECT_TRUE(st.ok()) << st.message();
}

// The evaluation program: the loss of its own batch with the weights the
// steps trained, changing nothing a step reads; at stage 3 it gathers them.
void check_evaluation(bool sharded, bool async) {
  LinRegOptions o;
  o.sharded = sharded;
  o.async = async;
  o.evaluation = true;
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s, plain;
  Status st = open(linreg_plan(o), comm.get(), &s);
  ASSERT_TRUE(st.ok()) << st.message();
  o.evaluation = false;
  ASSERT_TRUE(open(linreg_plan(o), comm.get(), &plain).ok());
  ASSERT_TRUE(s->has_evaluation());
  EXPECT_FALSE(plain->has_evaluation());
  ASSERT_EQ(s->eval_inputs().size(), 2u);
  EXPECT_EQ(s->eval_inputs()[1].name, "y");
  EXPECT_EQ(s->eval_inputs()[1].shape, (std::vector<int64_t>{4, 1}));

  std::mt19937 g(2);
  std::uniform_real_distribution<float> d(-1, 1);
  const auto batch = [&] {
    std::vector<float> v(16);
    for (float& e : v) e = d(g);
    return v;
  };
  const std::vector<float> ex = batch(), ey = batch();
  ASSERT_TRUE(s->bind_eval_input("x", ex.data(), DType::F32, {4, 3}).ok());
  ASSERT_TRUE(s->bind_eval_input("y", ey.data(), DType::F32, {4, 1}).ok());
  for (int step = 0; step < 3; ++step) {
    // The MSE of the evaluation batch with the current W.
    std::vector<float> w;
    ASSERT_TRUE(s->read_parameter("W", &w).ok());
    double want = 0;
    for (int i = 0; i < 4; ++i) {
      double pred = 0;
      for (int k = 0; k < 3; ++k) pred += double(ex[size_t(i * 3 + k)]) * w[size_t(k)];
      want += (pred - ey[size_t(i)]) * (pred - ey[size_t(i)]) / 4;
    }
    float got = 0;
    st = s->evaluate(&got);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_NEAR(got, want, 1e-5);
    // A step after an evaluation is the step without one.
    const std::vector<float> x = batch(), y = batch();
    float loss = 0, plain_loss = 0;
    for (Session* t : {s.get(), plain.get()}) {
      ASSERT_TRUE(t->bind_input("x", x.data(), DType::F32, {4, 3}).ok());
      ASSERT_TRUE(t->bind_input("y", y.data(), DType::F32, {4, 1}).ok());
      ASSERT_TRUE(t->step().ok());
    }
    ASSERT_TRUE(s->loss(&loss).ok());
    ASSERT_TRUE(plain->loss(&plain_loss).ok());
    EXPECT_EQ(loss, plain_loss);
  }
  std::vector<float> w, plain_w;
  ASSERT_TRUE(s->read_parameter("W", &w).ok());
  ASSERT_TRUE(plain->read_parameter("W", &plain_w).ok());
  EXPECT_EQ(w, plain_w);

  EXPECT_EQ(s->bind_eval_input("x", ex.data(), DType::F32, {5, 3}).message(),
            "evaluation input 'x': expected shape [4, 3], got [5, 3]");
  EXPECT_EQ(s->bind_eval_input("z", ex.data(), DType::F32, {4, 3}).code(), StatusCode::kNotFound);
  float unused = 0;
  EXPECT_EQ(plain->evaluate(&unused).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(plain->bind_eval_input("x", ex.data(), DType::F32, {4, 3}).code(), StatusCode::kFailedPrecondition);
}

TEST(Plan, EvaluationReadsTheTrainedWeights) {
  check_evaluation(false, false);
  check_evaluation(true, false);
  check_evaluation(true, /*async=*/true);
}

// Each program completes its own collectives: a step cannot leave one in
// flight for the evaluation to wait for, nor the other way round.
TEST(Plan, EvaluationCollectivesCompleteInTheirProgram) {
  using plan::Opcode;
  const auto build = [](bool wait_in_step) {
    test::PlanBuilder b;
    const uint32_t a = b.fresh("a", plan::DType::F32, {4});
    const uint32_t loss = b.fresh("loss", plan::DType::F32, {});
    const auto start = [&] {
      b.op(Opcode::AllReduce, {a}, {a}, plan::Attrs::CollectiveAttrs,
           plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Sum, 1).Union());
    };
    const auto wait = [&] { b.op(Opcode::Wait, {a, a}, {}, plan::Attrs::WaitAttrs, plan::CreateWaitAttrs(b.fbb, 1).Union()); };
    if (wait_in_step) {
      start();
      b.begin_evaluation(loss);
      wait();
    } else {
      wait();
      b.begin_evaluation(loss);
      start();
    }
    return b.finish(1, loss, 1, plan::Backend::Cpu);
  };
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  Status st = open(build(true), comm.get(), &s);
  EXPECT_NE(st.message().find("instruction 0: asynchronous collective is never waited for"), std::string::npos)
      << st.message();
  st = open(build(false), comm.get(), &s);
  EXPECT_NE(st.message().find("instruction 0 (Wait): slot 1 has no collective in flight"), std::string::npos)
      << st.message();
  // The evaluation's own indices name its instructions.
  test::PlanBuilder b;
  const uint32_t loss = b.fresh("loss", plan::DType::F32, {});
  b.begin_evaluation(loss);
  b.op(Opcode::Wait, {loss, loss}, {}, plan::Attrs::WaitAttrs, plan::CreateWaitAttrs(b.fbb, 1).Union());
  st = open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s);
  EXPECT_NE(st.message().find("evaluation instruction 0 (Wait): slot 1"), std::string::npos) << st.message();
  // An evaluation loss that is not a scalar F32 value is refused at load.
  test::PlanBuilder bad;
  const uint32_t l = bad.fresh("loss", plan::DType::F32, {});
  const uint32_t v = bad.fresh("v", plan::DType::F32, {2});
  bad.begin_evaluation(v);
  st = open(bad.finish(1, l, 1, plan::Backend::Cpu), comm.get(), &s);
  EXPECT_NE(st.message().find("evaluation loss: value 1 is not a scalar F32 value"), std::string::npos)
      << st.message();
}

TEST(Plan, MissingFileIsError) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  Status st = Session::open("/nonexistent/x.zplan", comm.get(), default_allocator(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/x.zplan: cannot open plan"), std::string::npos) << st.message();
}

// The code says what kind of failure a message describes.
TEST(Status, CodesSayWhatKindOfFailure) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  EXPECT_EQ(Session::open("/nonexistent/x.zplan", comm.get(), default_allocator(), &s).code(),
            StatusCode::kNotFound);
  const char garbage[] = "not a plan at all";
  EXPECT_EQ(Session::open_buffer(garbage, sizeof garbage, comm.get(), default_allocator(), &s).code(),
            StatusCode::kInvalidArgument);
  LinRegOptions o;
  o.world_size = 4;
  EXPECT_EQ(open(linreg_plan(o), comm.get(), &s).code(), StatusCode::kFailedPrecondition);
  test::PlanBuilder b;
  uint32_t loss = b.value("loss", plan::DType::F32, {}, plan::ValueKind::Activation, b.reserve(uint64_t(1) << 46));
  b.op(plan::Opcode::Relu, {loss}, {loss});
  EXPECT_EQ(open(b.finish(1, loss, 1, plan::Backend::Cpu), comm.get(), &s).code(), StatusCode::kResourceExhausted);

  ASSERT_TRUE(open(linreg_plan({}), comm.get(), &s).ok());
  std::vector<float> x(12);
  EXPECT_EQ(s->bind_input("z", x.data(), DType::F32, {4, 3}).code(), StatusCode::kNotFound);
  const Status shape = s->bind_input("x", x.data(), DType::F32, {3, 4});
  EXPECT_EQ(shape.code(), StatusCode::kInvalidArgument);
  const Status wrapped = shape.with_context("batch 3: ");
  EXPECT_EQ(wrapped.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrapped.message(), "batch 3: " + shape.message());
  EXPECT_STREQ(status_code_name(StatusCode::kResourceExhausted), "resource exhausted");
}

}  // namespace
}  // namespace zero
