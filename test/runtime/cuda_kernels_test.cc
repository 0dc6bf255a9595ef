// Every CUDA kernel against the CPU kernel (the reference) on random inputs,
// plus the CUDA backend end to end through Session. Built only with
// ZERO_ENABLE_CUDA; without a GPU every test skips with a visible message.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backend.h"
#include "test_plans.h"
#include "test_tensors.h"
#include "zero/cuda.h"

namespace zero {
namespace {

using plan::Opcode;
// Shorthands for the test tensors (test_tensors.h).
Buf rnd(const Shape& s, unsigned seed, float lo = -1.f, float hi = 1.f) { return Buf::rand(s, lo, hi, seed); }
Buf zeros(const Shape& s) { return Buf::zeros(s); }
Buf ints(const Shape& s, unsigned seed, int64_t lo, int64_t hi) { return Buf::rand_ints(s, lo, hi, seed); }
Buf izeros(const Shape& s) { return Buf::ints(s); }

CudaDevice* device() {
  static CudaDevice* dev = [] {
    std::unique_ptr<CudaDevice> d;
    if (cuda_device_count() == 0) return static_cast<CudaDevice*>(nullptr);
    Status st = CudaDevice::create({}, &d);
    if (!st.ok()) ADD_FAILURE() << st.message();
    return d.release();
  }();
  return dev;
}

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda_device_count(&why) == 0) GTEST_SKIP() << "no GPU: CUDA kernel tests skipped (" << why << ")";
    ASSERT_NE(device(), nullptr);
  }
};

// Runs `op` on the CPU and on the GPU over copies of `in` and `out` and
// compares every operand afterwards (the optimizers update inputs in place).
// `alias`: out[0] is in[0] (in-place form).
void compare(Opcode op, std::vector<Buf> in, std::vector<Buf> out, AttrFn attrs = nullptr, double rtol = 1e-5,
             double atol = 1e-6, bool alias = false) {
  const TestInstruction instruction(op, attrs);
  const plan::Instruction* inst = instruction.get();

  // CPU reference.
  std::vector<Buf> cin = in, cout_ = out;
  std::vector<Tensor> ti, to;
  for (Buf& b : cin) ti.push_back(b.view());
  for (Buf& b : cout_) to.push_back(b.view());
  if (alias) to[0] = ti[0];
  KernelCall cc{inst, ti.data(), int(ti.size()), to.data(), int(to.size())};
  if (Validator v = cpu_backend().validator(op)) ASSERT_TRUE(v(cc).ok()) << v(cc).message();
  Status st = cpu_backend().kernel(op)(cc);
  ASSERT_TRUE(st.ok()) << st.message();

  // GPU.
  const Backend& be = *device()->backend();
  Allocator& alloc = *device()->allocator();
  std::vector<void*> din, dout;
  std::vector<Tensor> gi, go;
  for (Buf& b : in) {
    din.push_back(alloc.allocate(b.bytes() + 1, 256));
    ASSERT_TRUE(be.copy_to_device(din.back(), b.data(), b.bytes()).ok());
    gi.push_back(b.view(din.back()));
  }
  for (Buf& b : out) {
    dout.push_back(alloc.allocate(b.bytes() + 1, 256));
    // Garbage in the outputs: kernels must overwrite (or zero) them.
    std::vector<uint8_t> junk(b.bytes(), 0x7f);
    ASSERT_TRUE(be.copy_to_device(dout.back(), junk.data(), junk.size()).ok());
    go.push_back(b.view(dout.back()));
  }
  if (alias) go[0] = gi[0];
  KernelCall gc{inst, gi.data(), int(gi.size()), go.data(), int(go.size())};
  Kernel k = be.kernel(op);
  ASSERT_NE(k, nullptr) << "CUDA backend: opcode " << plan::EnumNameOpcode(op) << " is not implemented";
  if (Validator v = be.validator(op)) ASSERT_TRUE(v(gc).ok()) << v(gc).message();
  st = k(gc);
  ASSERT_TRUE(st.ok()) << st.message();
  st = be.finish_step();
  ASSERT_TRUE(st.ok()) << st.message();

  auto check = [&](Buf& want, void* dev, const char* role, size_t idx) {
    Buf got = want;
    ASSERT_TRUE(be.copy_to_host(got.data(), dev, got.bytes()).ok());
    for (size_t e = 0; e < want.f.size(); ++e) {
      const double w = want.f[e], g = got.f[e];
      if (std::isnan(w) && std::isnan(g)) continue;
      ASSERT_LE(std::fabs(w - g), atol + rtol * std::fabs(w))
          << plan::EnumNameOpcode(op) << " " << role << " " << idx << " element " << e << ": cpu " << w << " cuda "
          << g;
    }
    for (size_t e = 0; e < want.i.size(); ++e)
      ASSERT_EQ(want.i[e], got.i[e]) << plan::EnumNameOpcode(op) << " " << role << " " << idx << " element " << e;
  };
  for (size_t j = 0; j < in.size(); ++j) check(cin[j], din[j], "input", j);
  for (size_t j = 0; j < out.size(); ++j)
    if (!(alias && j == 0)) check(cout_[j], dout[j], "output", j);
  for (void* p : din) alloc.deallocate(p);
  for (void* p : dout) alloc.deallocate(p);
}

AttrFn axis(int64_t ax) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b, ax).Union());
  };
}

TEST_F(Cuda, Binary) {
  for (Opcode op : {Opcode::Add, Opcode::Sub, Opcode::Mul, Opcode::Div}) {
    compare(op, {rnd({4, 5}, 1), rnd({4, 5}, 2)}, {zeros({4, 5})});
    compare(op, {rnd({4, 5}, 1), rnd({1}, 2)}, {zeros({4, 5})});
    compare(op, {rnd({2, 3, 5}, 3), rnd({5}, 4)}, {zeros({2, 3, 5})});
    compare(op, {rnd({2, 1, 5}, 3), rnd({3, 1}, 4)}, {zeros({2, 3, 5})});
    compare(op, {rnd({3, 4}, 5), rnd({3, 4}, 6)}, {zeros({3, 4})}, nullptr, 1e-5, 1e-6, /*alias=*/true);
  }
  compare(Opcode::Pow, {rnd({3, 4}, 1, 0.1f, 2.f), rnd({3, 4}, 2)}, {zeros({3, 4})});
}

TEST_F(Cuda, Unary) {
  for (Opcode op : {Opcode::Neg, Opcode::Relu, Opcode::Tanh, Opcode::Sigmoid, Opcode::Erf, Opcode::Exp})
    compare(op, {rnd({1000}, 7, -3.f, 3.f)}, {zeros({1000})});
  for (Opcode op : {Opcode::Sqrt, Opcode::Log}) compare(op, {rnd({1000}, 8, 0.01f, 5.f)}, {zeros({1000})});
  for (Opcode op : {Opcode::ReluGrad, Opcode::TanhGrad, Opcode::SigmoidGrad, Opcode::ErfGrad})
    compare(op, {rnd({777}, 9), rnd({777}, 10, -2.f, 2.f)}, {zeros({777})});
}

TEST_F(Cuda, CopyCastFill) {
  compare(Opcode::Copy, {rnd({3, 7}, 1)}, {zeros({21})});
  compare(Opcode::Copy, {ints({5}, 1, -9, 9)}, {izeros({5})});
  compare(Opcode::Cast, {ints({6}, 2, -100, 100)}, {zeros({6})});
  Buf f = rnd({8}, 3, -50.f, 50.f);
  f.f[0] = NAN;
  f.f[1] = 1e30f;
  f.f[2] = -1e30f;
  compare(Opcode::Cast, {f}, {izeros({8})});
  auto fill = [](float v) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::FillAttrs, plan::CreateFillAttrs(b, v).Union());
    };
  };
  compare(Opcode::Fill, {}, {zeros({5, 3})}, fill(2.5f));
  compare(Opcode::Fill, {}, {izeros({4})}, fill(3.f));
}

TEST_F(Cuda, GemmMatMul) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      auto attrs = [=](flatbuffers::FlatBufferBuilder& b) {
        return std::make_pair(plan::Attrs::GemmAttrs, plan::CreateGemmAttrs(b, ta, tb, 0.5f, 2.f).Union());
      };
      Shape sa = ta ? Shape{7, 5} : Shape{5, 7}, sb = tb ? Shape{6, 7} : Shape{7, 6};
      compare(Opcode::Gemm, {rnd(sa, 1), rnd(sb, 2), rnd({6}, 3)}, {zeros({5, 6})}, attrs, 1e-4, 1e-5);
      compare(Opcode::Gemm, {rnd(sa, 1), rnd(sb, 2)}, {zeros({5, 6})}, attrs, 1e-4, 1e-5);
    }
  compare(Opcode::MatMul, {rnd({4, 3, 8}, 1), rnd({8, 5}, 2)}, {zeros({4, 3, 5})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({2, 3, 4, 8}, 1), rnd({2, 3, 8, 5}, 2)}, {zeros({2, 3, 4, 5})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({4, 8}, 1), rnd({3, 8, 5}, 2)}, {zeros({3, 4, 5})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({2, 1, 4, 8}, 1), rnd({3, 8, 5}, 2)}, {zeros({2, 3, 4, 5})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({8}, 1), rnd({8, 5}, 2)}, {zeros({5})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({3, 8}, 1), rnd({8}, 2)}, {zeros({3})}, nullptr, 1e-4, 1e-5);
  compare(Opcode::MatMul, {rnd({3, 0}, 1), rnd({0, 4}, 2)}, {zeros({3, 4})});
}

TEST_F(Cuda, Softmax) {
  for (Opcode op : {Opcode::Softmax, Opcode::LogSoftmax}) {
    compare(op, {rnd({6, 300}, 1, -5.f, 5.f)}, {zeros({6, 300})}, axis(-1), 1e-5, 1e-6);
    compare(op, {rnd({3, 7, 4}, 2, -5.f, 5.f)}, {zeros({3, 7, 4})}, axis(1), 1e-5, 1e-6);
  }
  for (Opcode op : {Opcode::SoftmaxGrad, Opcode::LogSoftmaxGrad}) {
    compare(op, {rnd({6, 300}, 1), rnd({6, 300}, 2, -3.f, 0.f)}, {zeros({6, 300})}, axis(-1), 1e-4, 1e-5);
    compare(op, {rnd({3, 7, 4}, 3), rnd({3, 7, 4}, 4, -3.f, 0.f)}, {zeros({3, 7, 4})}, axis(1), 1e-4, 1e-5);
  }
}

TEST_F(Cuda, Losses) {
  for (auto r : {plan::Reduction::Mean, plan::Reduction::Sum, plan::Reduction::None})
    for (bool ignore : {false, true}) {
      auto attrs = [=](flatbuffers::FlatBufferBuilder& b) {
        return std::make_pair(plan::Attrs::LossAttrs, plan::CreateLossAttrs(b, r, 2, ignore).Union());
      };
      const Shape loss_shape = r == plan::Reduction::None ? Shape{8, 3} : Shape{};
      Buf scores = rnd({8, 10, 3}, 1, -4.f, 4.f), labels = ints({8, 3}, 2, 0, 9);
      compare(Opcode::SoftmaxCrossEntropyLoss, {scores, labels}, {zeros(loss_shape), zeros({8, 10, 3})}, attrs, 1e-5,
              1e-5);
      compare(Opcode::NegativeLogLikelihoodLoss, {scores, labels}, {zeros(loss_shape)}, attrs, 1e-5, 1e-5);
      Buf dloss = rnd(loss_shape, 3);
      compare(Opcode::SoftmaxCrossEntropyLossGrad, {dloss, scores, labels}, {zeros({8, 10, 3})}, attrs, 1e-5, 1e-6);
      compare(Opcode::NegativeLogLikelihoodLossGrad, {dloss, scores, labels}, {zeros({8, 10, 3})}, attrs, 1e-5,
              1e-6);
    }
}

TEST_F(Cuda, LabelOutOfRangeIsAStepError) {
  const TestInstruction instruction(Opcode::SoftmaxCrossEntropyLoss);
  const plan::Instruction* inst = instruction.get();
  const Backend& be = *device()->backend();
  Allocator& alloc = *device()->allocator();
  Buf scores = rnd({2, 3}, 1), labels = Buf{DType::I64, {2}, {}, {0, 7}}, loss = zeros({});
  void *ds = alloc.allocate(scores.bytes(), 256), *dl = alloc.allocate(labels.bytes(), 256),
       *dloss = alloc.allocate(4, 256);
  ASSERT_TRUE(be.copy_to_device(ds, scores.data(), scores.bytes()).ok());
  ASSERT_TRUE(be.copy_to_device(dl, labels.data(), labels.bytes()).ok());
  Tensor in[2] = {scores.view(ds), labels.view(dl)}, out[1] = {loss.view(dloss)};
  ASSERT_TRUE(be.kernel(Opcode::SoftmaxCrossEntropyLoss)(KernelCall{inst, in, 2, out, 1}).ok());
  Status st = be.finish_step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("label out of range"), std::string::npos) << st.message();
  EXPECT_TRUE(be.finish_step().ok());  // the error word is cleared
  for (void* p : {ds, dl, dloss}) alloc.deallocate(p);
}

TEST_F(Cuda, Reduce) {
  auto red = [](std::vector<int64_t> axes, bool keep) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ReduceAttrs, plan::CreateReduceAttrsDirect(b, &axes, keep).Union());
    };
  };
  for (Opcode op : {Opcode::ReduceSum, Opcode::ReduceMean}) {
    compare(op, {rnd({4, 5, 6}, 1)}, {zeros({5})}, red({0, 2}, false), 1e-5, 1e-5);
    compare(op, {rnd({4, 5, 6}, 2)}, {zeros({4, 5, 1})}, red({-1}, true), 1e-5, 1e-5);
    compare(op, {rnd({4, 5, 6}, 3)}, {zeros({})}, red({}, false), 1e-5, 1e-5);
    compare(op, {rnd({300, 64}, 4)}, {zeros({64})}, red({0}, false), 1e-5, 1e-5);
  }
}

TEST_F(Cuda, Layout) {
  auto perm = [](std::vector<int64_t> p) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::PermAttrs, plan::CreatePermAttrsDirect(b, &p).Union());
    };
  };
  compare(Opcode::Transpose, {rnd({2, 3, 4, 5}, 1)}, {zeros({2, 4, 3, 5})}, perm({0, 2, 1, 3}));
  compare(Opcode::Transpose, {rnd({3, 4}, 2)}, {zeros({4, 3})});
  compare(Opcode::Transpose, {ints({3, 4}, 3, 0, 100)}, {izeros({4, 3})});
  compare(Opcode::Expand, {rnd({3, 1}, 4)}, {zeros({2, 3, 5})});
  compare(Opcode::Expand, {ints({1, 4}, 5, 0, 9)}, {izeros({3, 4})});
  auto slice = [](std::vector<int64_t> starts, std::vector<int64_t> steps) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::SliceAttrs, plan::CreateSliceAttrsDirect(b, &starts, &steps).Union());
    };
  };
  compare(Opcode::Slice, {rnd({6, 8}, 6)}, {zeros({2, 3})}, slice({1, 7}, {2, -2}));
  compare(Opcode::Slice, {ints({6, 8}, 7, 0, 9)}, {izeros({3, 8})}, slice({0, 0}, {2, 1}));
  compare(Opcode::SliceGrad, {rnd({2, 3}, 8)}, {zeros({6, 8})}, slice({1, 7}, {2, -2}));
  compare(Opcode::Concat, {rnd({2, 3, 4}, 9), rnd({2, 1, 4}, 10), rnd({2, 5, 4}, 11)}, {zeros({2, 9, 4})}, axis(1));
  compare(Opcode::Concat, {ints({2, 2}, 12, 0, 9), ints({3, 2}, 13, 0, 9)}, {izeros({5, 2})}, axis(0));
  compare(Opcode::Where, {ints({3, 1}, 14, 0, 1), rnd({3, 4}, 15), rnd({4}, 16)}, {zeros({3, 4})});
  compare(Opcode::Where, {ints({4}, 17, 0, 1), ints({4}, 18, 0, 9), ints({1}, 19, 0, 9)}, {izeros({4})});
}

TEST_F(Cuda, Gather) {
  compare(Opcode::Gather, {rnd({10, 6}, 1), ints({3, 4}, 2, -10, 9)}, {zeros({3, 4, 6})}, axis(0));
  compare(Opcode::Gather, {rnd({2, 10, 3}, 3), ints({5}, 4, 0, 9)}, {zeros({2, 5, 3})}, axis(1));
  compare(Opcode::Gather, {ints({10}, 5, 0, 99), ints({4}, 6, 0, 9)}, {izeros({4})}, axis(0));
  // Repeated indices accumulate (atomicAdd: order differs, tolerance).
  compare(Opcode::GatherGrad, {rnd({3, 4, 6}, 7), ints({3, 4}, 8, -5, 4)}, {zeros({5, 6})}, axis(0), 1e-5, 1e-5);
  compare(Opcode::GatherGrad, {rnd({2, 5, 3}, 9), ints({5}, 10, 0, 9)}, {zeros({2, 10, 3})}, axis(1), 1e-5, 1e-5);
}

TEST_F(Cuda, LayerNorm) {
  auto ln = [](int64_t ax) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::LayerNormAttrs, plan::CreateLayerNormAttrs(b, ax, 1e-5f).Union());
    };
  };
  compare(Opcode::LayerNormalization, {rnd({4, 3, 64}, 1), rnd({64}, 2), rnd({64}, 3)},
          {zeros({4, 3, 64}), zeros({4, 3, 1}), zeros({4, 3, 1})}, ln(-1), 1e-5, 1e-5);
  compare(Opcode::LayerNormalization, {rnd({4, 3, 5}, 1), rnd({3, 5}, 2), rnd({3, 5}, 3)}, {zeros({4, 3, 5})}, ln(1),
          1e-5, 1e-5);
  Buf x = rnd({6, 32}, 4), scale = rnd({32}, 5);
  // Consistent saved statistics from the CPU forward.
  std::vector<float> mean(6), inv(6);
  for (int o = 0; o < 6; ++o) {
    double s = 0, q = 0;
    for (int i = 0; i < 32; ++i) s += x.f[size_t(o * 32 + i)];
    s /= 32;
    for (int i = 0; i < 32; ++i) q += (x.f[size_t(o * 32 + i)] - s) * (x.f[size_t(o * 32 + i)] - s);
    mean[size_t(o)] = float(s);
    inv[size_t(o)] = float(1.0 / std::sqrt(q / 32 + 1e-5));
  }
  Buf m{DType::F32, {6, 1}, mean, {}}, iv{DType::F32, {6, 1}, inv, {}};
  compare(Opcode::LayerNormalizationGrad, {rnd({6, 32}, 6), x, scale, m, iv}, {zeros({6, 32}), zeros({32}), zeros({32})},
          ln(-1), 1e-4, 1e-5);
}

TEST_F(Cuda, Optimizers) {
  auto sgd = [](float lr, float mom, float wd) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::SgdAttrs, plan::CreateSgdAttrs(b, lr, mom, wd).Union());
    };
  };
  compare(Opcode::SgdUpdate, {rnd({1000}, 1), rnd({1000}, 2)}, {}, sgd(0.1f, 0.f, 0.f), 0, 0);
  compare(Opcode::SgdUpdate, {rnd({1000}, 1), rnd({1000}, 2), rnd({1000}, 3)}, {}, sgd(0.1f, 0.9f, 0.01f), 0, 0);
  auto adamw = [](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::AdamWAttrs, plan::CreateAdamWAttrs(b, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f).Union());
  };
  Buf step{DType::I64, {}, {}, {3}};
  // Bit-exact but for pow() of the bias corrections: a few ulps.
  compare(Opcode::AdamWUpdate, {rnd({1000}, 1), rnd({1000}, 2), rnd({1000}, 3), rnd({1000}, 4, 0.f, 1.f), step}, {},
          adamw, 1e-6, 1e-7);
  compare(Opcode::IncrementStep, {step}, {});
}

TEST_F(Cuda, UnimplementedOpcodeIsALoadError) {
  test::PlanBuilder b;
  uint32_t x = b.fresh("x", plan::DType::F32, {1, 1, 4, 4}), w = b.fresh("w", plan::DType::F32, {1, 1, 3, 3}),
           y = b.fresh("y", plan::DType::F32, {1, 1, 2, 2});
  b.op(Opcode::Conv, {x, w}, {y});
  b.output("y", y);
  auto bytes = b.finish(1, 0, 1, plan::Backend::Cuda);
  auto comm = make_cuda_single_rank_communicator(device());
  std::unique_ptr<Session> s;
  Status st = Session::open_buffer(bytes.data(), bytes.size(), comm.get(), device()->allocator(),
                                   device()->backend(), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("CUDA backend: opcode Conv is not implemented"), std::string::npos) << st.message();
}

TEST_F(Cuda, LinearRegressionPlanMatchesCpu) {
  test::LinRegOptions o;
  std::vector<float> x = {0.5f, -1.f, 2.f, 1.f, 0.f, 3.f, -2.f, 1.f, 1.f, 0.25f, 0.5f, -0.5f}, y = {1, 2, 3, 4};
  std::vector<float> losses[2], w[2];
  for (int cuda = 0; cuda < 2; ++cuda) {
    o.backend = cuda ? plan::Backend::Cuda : plan::Backend::Cpu;
    const auto bytes = test::linreg_plan(o);
    auto comm = cuda ? make_cuda_single_rank_communicator(device()) : make_single_rank_communicator();
    std::unique_ptr<Session> s;
    Status st = Session::open_buffer(bytes.data(), bytes.size(), comm.get(),
                                     cuda ? device()->allocator() : default_allocator(),
                                     cuda ? device()->backend() : nullptr, &s);
    ASSERT_TRUE(st.ok()) << st.message();
    for (int step = 0; step < 5; ++step) {
      ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {4, 3}).ok());
      ASSERT_TRUE(s->bind_input("y", y.data(), DType::F32, {4, 1}).ok());
      st = s->step();
      ASSERT_TRUE(st.ok()) << st.message();
      float l;
      ASSERT_TRUE(s->loss(&l).ok());
      losses[cuda].push_back(l);
    }
    ASSERT_TRUE(s->read_parameter("W", &w[cuda]).ok());
  }
  for (size_t i = 0; i < losses[0].size(); ++i) EXPECT_NEAR(losses[0][i], losses[1][i], 1e-5 * std::fabs(losses[0][i]));
  for (size_t i = 0; i < w[0].size(); ++i) EXPECT_NEAR(w[0][i], w[1][i], 1e-5);
}

TEST(CudaBuild, ReportsDeviceCount) {
  std::string why;
  const int n = cuda_device_count(&why);
  std::printf("CUDA devices: %d%s%s\n", n, n ? "" : " -- ", n ? "" : why.c_str());
  SUCCEED();
}

}  // namespace
}  // namespace zero
