// Loading and running whole plans built with the FlatBuffers builder, and
// rejecting bad ones without crashing.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "test_plans.h"
#include "zero/runtime.h"

namespace zero {
namespace {

using test::LinRegOptions;
using test::linreg_plan;

Status open(const std::vector<uint8_t>& bytes, Communicator* comm, std::unique_ptr<Session>* s) {
  return Session::open_buffer(bytes.data(), bytes.size(), comm, default_allocator(), s);
}

// Trains a few steps and compares the loss and W with a direct computation.
void check_linreg(bool sharded) {
  LinRegOptions o;
  o.sharded = sharded;
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

TEST(Plan, MissingFileIsError) {
  auto comm = make_single_rank_communicator();
  std::unique_ptr<Session> s;
  Status st = Session::open("/nonexistent/x.zplan", comm.get(), default_allocator(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/x.zplan: cannot open plan"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace zero
