// Every CUDA kernel against the CPU kernel (the reference) on random inputs,
// plus the CUDA backend end to end through Session. Built only with
// ZERO_ENABLE_CUDA; without a GPU every test skips with a visible message.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "backend.h"
#include "test_plans.h"
#include "test_tensors.h"
#include "zero/cuda.h"
#include "zero/plan_ops.h"

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

// Opens plan bytes on the CUDA backend, or (cuda = false) the CPU backend.
Status open_plan(const std::vector<uint8_t>& bytes, Communicator* comm, bool cuda, std::unique_ptr<Session>* s) {
  return Session::open_buffer(bytes.data(), bytes.size(), comm, cuda ? device()->allocator() : default_allocator(),
                              cuda ? device()->backend() : nullptr, s);
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
// `alias`: out[0], with its own shape, lives in in[0]'s buffer (in-place form).
void compare(Opcode op, std::vector<Buf> in, std::vector<Buf> out, AttrFn attrs = nullptr, double rtol = 1e-5,
             double atol = 1e-6, bool alias = false) {
  const TestInstruction instruction(op, attrs);
  const plan::Instruction* inst = instruction.get();

  // CPU reference.
  std::vector<Buf> cin = in, cout_ = out;
  std::vector<Tensor> ti, to;
  for (Buf& b : cin) ti.push_back(b.view());
  for (Buf& b : cout_) to.push_back(b.view());
  if (alias) to[0] = cout_[0].view(cin[0].data());
  KernelCall cc{inst, ti.data(), int(ti.size()), to.data(), int(to.size())};
  KernelRun cpu_run(cpu_backend(), op);
  Status st = cpu_run.prepare(cc);
  ASSERT_TRUE(st.ok()) << st.message();
  st = cpu_run.execute(cc);
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
  if (alias) go[0] = out[0].view(din[0]);
  KernelCall gc{inst, gi.data(), int(gi.size()), go.data(), int(go.size())};
  ASSERT_NE(be.kernel(op), nullptr) << "CUDA backend: opcode " << plan::EnumNameOpcode(op) << " is not implemented";
  KernelRun gpu_run(be, op, &alloc);
  st = gpu_run.prepare(gc);
  ASSERT_TRUE(st.ok()) << st.message();
  st = gpu_run.execute(gc);
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
  for (Opcode op : {Opcode::Add, Opcode::Sub, Opcode::Mul, Opcode::Div, Opcode::Max, Opcode::Min, Opcode::PRelu}) {
    compare(op, {rnd({4, 5}, 1), rnd({4, 5}, 2)}, {zeros({4, 5})});
    compare(op, {rnd({4, 5}, 1), rnd({1}, 2)}, {zeros({4, 5})});
    compare(op, {rnd({2, 3, 5}, 3), rnd({5}, 4)}, {zeros({2, 3, 5})});
    compare(op, {rnd({2, 1, 5}, 3), rnd({3, 1}, 4)}, {zeros({2, 3, 5})});
    compare(op, {rnd({3, 4}, 5), rnd({3, 4}, 6)}, {zeros({3, 4})}, nullptr, 1e-5, 1e-6, /*alias=*/true);
  }
  compare(Opcode::Pow, {rnd({3, 4}, 1, 0.1f, 2.f), rnd({3, 4}, 2)}, {zeros({3, 4})});
  // Mod and FMod, F32 and I64 (zero divisors included).
  for (Opcode op : {Opcode::Mod, Opcode::FMod}) {
    compare(op, {rnd({4, 5}, 1, -9.f, 9.f), rnd({5}, 2, -3.f, 3.f)}, {zeros({4, 5})});
    compare(op, {ints({2, 3, 4}, 3, -20, 20), ints({3, 1}, 4, -4, 4)}, {izeros({2, 3, 4})});
  }
}

TEST_F(Cuda, Unary) {
  // Every unary op of zero/elementwise_ops.h on positive inputs (every op's
  // domain), and on both signs where the op is defined there.
  // Ops with attributes take their ONNX defaults (Clip, whose defaults bound
  // nothing, [-1, 1.5]).
  for (const plan_ops::ElementwiseOp& op : plan_ops::kElementwiseOps) {
    if (op.arity != 1) continue;
    AttrFn attrs;
    if (op.num_attributes) {
      elementwise::Params p{};
      for (size_t i = 0; i < op.num_attributes; ++i) {
        const std::string name = op.attributes[i].name;
        (name == "alpha"   ? p.alpha
         : name == "beta"  ? p.beta
         : name == "gamma" ? p.gamma
         : name == "min"   ? p.min
                           : p.max) = op.attributes[i].default_value;
      }
      if (op.opcode == Opcode::Clip) p.min = -1.f, p.max = 1.5f;
      attrs = [=](flatbuffers::FlatBufferBuilder& b) {
        return std::make_pair(plan::Attrs::ElementwiseAttrs,
                              plan::CreateElementwiseAttrs(b, p.alpha, p.beta, p.gamma, p.min, p.max).Union());
      };
    }
    compare(op.opcode, {rnd({1000}, 8, 0.01f, 5.f)}, {zeros({1000})}, attrs);
    if (op.opcode != Opcode::Sqrt && op.opcode != Opcode::Log)
      compare(op.opcode, {rnd({1000}, 7, -3.f, 3.f)}, {zeros({1000})}, attrs);
    if (op.has_derivative) compare(op.derivative, {rnd({777}, 9), rnd({777}, 10, -2.f, 2.f)}, {zeros({777})}, attrs);
  }
}

TEST_F(Cuda, ComparisonsAndLogical) {
  for (Opcode op : {Opcode::Equal, Opcode::Greater, Opcode::Less}) {
    Buf a = rnd({4, 5}, 1), b = rnd({5}, 2);
    a.f[3] = b.f[3];  // some equal elements
    compare(op, {a, b}, {izeros({4, 5})});
    compare(op, {ints({2, 3, 4}, 3, -2, 2), ints({3, 1}, 4, -2, 2)}, {izeros({2, 3, 4})});
  }
  for (Opcode op : {Opcode::And, Opcode::Or, Opcode::Xor})
    compare(op, {ints({3, 4}, 5, 0, 2), ints({4}, 6, 0, 2)}, {izeros({3, 4})});
  compare(Opcode::Not, {ints({7}, 7, 0, 2)}, {izeros({7})});
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
      // Class weights: the optional last input.
      Buf weights = rnd({10}, 4, 0.1f, 3.f);
      compare(Opcode::SoftmaxCrossEntropyLoss, {scores, labels, weights}, {zeros(loss_shape), zeros({8, 10, 3})},
              attrs, 1e-5, 1e-5);
      compare(Opcode::NegativeLogLikelihoodLoss, {scores, labels, weights}, {zeros(loss_shape)}, attrs, 1e-5, 1e-5);
      compare(Opcode::SoftmaxCrossEntropyLossGrad, {dloss, scores, labels, weights}, {zeros({8, 10, 3})}, attrs,
              1e-5, 1e-6);
      compare(Opcode::NegativeLogLikelihoodLossGrad, {dloss, scores, labels, weights}, {zeros({8, 10, 3})}, attrs,
              1e-5, 1e-6);
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
  const KernelCall call{inst, in, 2, out, 1};
  KernelRun run(be, Opcode::SoftmaxCrossEntropyLoss, &alloc);
  ASSERT_TRUE(run.prepare(call).ok());
  ASSERT_TRUE(run.execute(call).ok());
  Status st = be.finish_step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("label out of range"), std::string::npos) << st.message();
  EXPECT_TRUE(be.finish_step().ok());  // the error word is cleared
  // Cleared in stream order: the next step's report survives.
  ASSERT_TRUE(run.execute(call).ok());
  EXPECT_FALSE(be.finish_step().ok());
  EXPECT_TRUE(be.finish_step().ok());
  for (void* p : {ds, dl, dloss}) alloc.deallocate(p);
}

TEST_F(Cuda, Reduce) {
  auto red = [](std::vector<int64_t> axes, bool keep) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ReduceAttrs, plan::CreateReduceAttrsDirect(b, &axes, keep).Union());
    };
  };
  for (Opcode op : {Opcode::ReduceSum, Opcode::ReduceMean, Opcode::ReduceMax, Opcode::ReduceMin, Opcode::ReduceProd,
                    Opcode::ReduceL2}) {
    compare(op, {rnd({4, 5, 6}, 1)}, {zeros({5})}, red({0, 2}, false), 1e-5, 1e-5);
    compare(op, {rnd({4, 5, 6}, 2)}, {zeros({4, 5, 1})}, red({-1}, true), 1e-5, 1e-5);
    compare(op, {rnd({4, 5, 6}, 3)}, {zeros({})}, red({}, false), 1e-5, 1e-5);
    compare(op, {rnd({300, 64}, 4)}, {zeros({64})}, red({0}, false), 1e-5, 1e-5);
    // Few outputs over many elements: split into slices (a conv bias
    // gradient, a full reduction), slices of unequal length.
    compare(op, {rnd({16, 4, 33, 31}, 5)}, {zeros({4})}, red({0, 2, 3}, false), 1e-5, 1e-5);
    compare(op, {rnd({100003}, 6)}, {zeros({})}, red({}, false), 1e-5, 1e-5);
    // In place (y in x's buffer): one thread per output, a block per output,
    // split.
    compare(op, {rnd({4, 5, 6}, 7)}, {zeros({4, 5})}, red({2}, false), 1e-5, 1e-5, /*alias=*/true);
    compare(op, {rnd({300, 64}, 8)}, {zeros({64})}, red({0}, false), 1e-5, 1e-5, /*alias=*/true);
    compare(op, {rnd({3, 40000}, 9)}, {zeros({3})}, red({1}, false), 1e-5, 1e-5, /*alias=*/true);
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

TEST_F(Cuda, ArgReduceAndCumSum) {
  auto arg = [](int64_t axis, bool last) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ArgReduceAttrs, plan::CreateArgReduceAttrs(b, axis, last).Union());
    };
  };
  for (Opcode op : {Opcode::ArgMax, Opcode::ArgMin})
    for (bool last : {false, true}) {
      compare(op, {rnd({4, 5, 6}, 1)}, {izeros({4, 6})}, arg(1, last));
      // Few distinct values: ties everywhere.
      Buf x = ints({3, 7, 2}, 2, 0, 2);
      x = Buf{DType::F32, x.shape, std::vector<float>(x.i.begin(), x.i.end()), {}};
      compare(op, {x}, {izeros({3, 1, 2})}, arg(-2, last));
      compare(op, {rnd({1000, 3}, 3)}, {izeros({3})}, arg(0, last));
    }
  auto cum = [](int64_t axis, bool exclusive, bool reverse) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::CumSumAttrs, plan::CreateCumSumAttrs(b, axis, exclusive, reverse).Union());
    };
  };
  for (bool exclusive : {false, true})
    for (bool reverse : {false, true}) {
      compare(Opcode::CumSum, {rnd({4, 5, 6}, 4)}, {zeros({4, 5, 6})}, cum(1, exclusive, reverse), 1e-5, 1e-5);
      compare(Opcode::CumSum, {ints({3, 8}, 5, -9, 9)}, {izeros({3, 8})}, cum(-1, exclusive, reverse));
      compare(Opcode::CumSum, {rnd({300, 2}, 6)}, {zeros({300, 2})}, cum(0, exclusive, reverse), 1e-5, 1e-5,
              /*alias=*/true);
    }
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
  // [outer, inner]; the parameter sums are split into chunks of rows from
  // 64 rows on (1000: 16 chunks of 63 rows, the last shorter).
  for (const auto& [outer, inner] : {std::pair<int64_t, int64_t>{6, 32}, {1000, 24}, {300, 700}}) {
    Buf x = rnd({outer, inner}, 4), scale = rnd({inner}, 5), dy = rnd({outer, inner}, 6);
    // Consistent saved statistics from the CPU forward.
    Buf y = zeros({outer, inner}), m = zeros({outer, 1}), iv = zeros({outer, 1}), bias = zeros({inner});
    ASSERT_TRUE(cpu_call(false, Opcode::LayerNormalization, {&x, &scale, &bias}, {&y, &m, &iv}, ln(-1)).ok());
    compare(Opcode::LayerNormalizationGrad, {dy, x, scale, m, iv},
            {zeros({outer, inner}), zeros({inner}), zeros({inner})}, ln(-1), 1e-4, 1e-5);
    compare(Opcode::LayerNormalizationGrad, {dy, x, scale, m, iv}, {zeros({outer, inner}), zeros({inner})}, ln(-1),
            1e-4, 1e-5);
    // dx is dy: the parameter sums read dy first.
    compare(Opcode::LayerNormalizationGrad, {dy, x, scale, m, iv},
            {zeros({outer, inner}), zeros({inner}), zeros({inner})}, ln(-1), 1e-4, 1e-5, /*alias=*/true);
  }
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

  // The scheduled rate and the gradient scale (clipping) as device scalars.
  Buf rate{DType::F32, {}, {2.5e-3f}}, scale{DType::F32, {}, {0.375f}};
  auto sgd_scaled = [](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::SgdAttrs, plan::CreateSgdAttrs(b, 0.1f, 0.9f, 0.01f, true, true).Union());
  };
  compare(Opcode::SgdUpdate, {rnd({1000}, 1), rnd({1000}, 2), rnd({1000}, 3), rate, scale}, {}, sgd_scaled, 0, 0);
  auto adamw_scaled = [](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::AdamWAttrs,
                          plan::CreateAdamWAttrs(b, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, true, true).Union());
  };
  compare(Opcode::AdamWUpdate,
          {rnd({1000}, 1), rnd({1000}, 2), rnd({1000}, 3), rnd({1000}, 4, 0.f, 1.f), step, rate, scale}, {},
          adamw_scaled, 1e-6, 1e-7);
}

// The masks are a function of the key and the index: bit for bit the CPU's.
TEST_F(Cuda, Dropout) {
  auto attrs = [](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::DropoutAttrs, plan::CreateDropoutAttrs(b, 0.3f, 2).Union());
  };
  for (int64_t s : {0, 7}) {
    Buf step{DType::I64, {}, {}, {s}};
    compare(Opcode::Dropout, {rnd({5000}, 1), step}, {Buf::zeros({5000})}, attrs, 0, 0);
    compare(Opcode::DropoutGrad, {rnd({5000}, 2), step}, {Buf::zeros({5000})}, attrs, 0, 0);
  }
}

TEST_F(Cuda, ScheduleAndClipping) {
  for (auto schedule : {plan::LrSchedule::Constant, plan::LrSchedule::Linear, plan::LrSchedule::Cosine})
    for (int64_t s : {0, 2, 5, 9, 30}) {
      auto attrs = [=](flatbuffers::FlatBufferBuilder& b) {
        return std::make_pair(plan::Attrs::ScheduleAttrs,
                              plan::CreateScheduleAttrs(b, schedule, 3e-3f, 4, 20, 0.1f).Union());
      };
      compare(Opcode::LearningRate, {Buf{DType::I64, {}, {}, {s}}}, {Buf::zeros({})}, attrs, 1e-6, 0);
    }
  // cuBLAS's dot sums in another order than the CPU's double loop.
  compare(Opcode::SumSquares, {rnd({100000}, 5)}, {Buf::zeros({})}, nullptr, 1e-5, 0);
  for (float sum : {0.f, 0.01f, 9.f}) {
    auto clip = [](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ClipAttrs, plan::CreateClipAttrs(b, 1.f).Union());
    };
    compare(Opcode::ClipCoefficient, {Buf{DType::F32, {}, {sum}}}, {Buf::zeros({}), Buf::zeros({})}, clip, 1e-7,
            0);
  }
}

// ---- Conv, pooling, BatchNormalization ----------------------------------------

AttrFn conv_attrs(std::vector<int64_t> strides, std::vector<int64_t> pads, std::vector<int64_t> dilations,
                  int64_t group) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::ConvAttrs,
                          plan::CreateConvAttrsDirect(b, &strides, &pads, &dilations, group).Union());
  };
}

struct ConvCase {
  Shape x, w;
  std::vector<int64_t> strides, pads, dilations;
  int64_t group;
};

Shape conv_out(const ConvCase& c) {
  Shape y = {c.x[0], c.w[0]};
  const size_t r = c.x.size() - 2;
  for (size_t i = 0; i < r; ++i)
    y.push_back((c.x[2 + i] + c.pads[i] + c.pads[r + i] - c.dilations[i] * (c.w[2 + i] - 1) - 1) / c.strides[i] + 1);
  return y;
}

const std::vector<ConvCase> kConvCases = {
    {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},
    {{3, 4, 9, 8}, {6, 2, 3, 2}, {2, 1}, {1, 0, 2, 1}, {1, 2}, 2},  // groups, asymmetric pads, dilation
    {{5, 2, 6, 6}, {3, 2, 2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},
    {{2, 4, 5, 5}, {4, 1, 3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 4},                    // depthwise
    {{3, 2, 4, 5}, {5, 2, 1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1},                    // 1x1
    {{3, 4, 13}, {6, 2, 3}, {2}, {1, 2}, {2}, 2},                                     // 1-D
    {{2, 3, 5, 6, 4}, {4, 3, 3, 2, 3}, {1, 2, 1}, {1, 0, 1, 1, 1, 0}, {1, 1, 2}, 1},  // 3-D
    {{2, 4, 4, 5, 5}, {4, 2, 2, 3, 2}, {2, 1, 2}, {0, 1, 1, 1, 0, 0}, {2, 1, 1}, 2},
};

void compare_conv(const ConvCase& c, unsigned seed) {
  const AttrFn attrs = conv_attrs(c.strides, c.pads, c.dilations, c.group);
  const Shape ys = conv_out(c);
  Buf x = rnd(c.x, seed), w = rnd(c.w, seed + 1), b = rnd({c.w[0]}, seed + 2), dy = rnd(ys, seed + 3);
  // GEMM summation order differs from OpenBLAS.
  compare(Opcode::Conv, {x, w, b}, {zeros(ys)}, attrs, 1e-4, 1e-5);
  compare(Opcode::Conv, {x, w}, {zeros(ys)}, attrs, 1e-4, 1e-5);
  compare(Opcode::ConvGradInput, {dy, w}, {zeros(c.x)}, attrs, 1e-4, 1e-5);
  compare(Opcode::ConvGradWeight, {dy, x}, {zeros(c.w)}, attrs, 1e-4, 1e-4);
}

TEST_F(Cuda, Conv) {
  unsigned seed = 1;
  for (const ConvCase& c : kConvCases) compare_conv(c, seed += 10);
}

TEST_F(Cuda, ConvChunks) {
  // One image per chunk, then two (5 images: chunks of 2, 2, 1).
  const ConvCase c = kConvCases[2];
  const int64_t K = c.w[1] * c.w[2] * c.w[3], mg = c.w[0], P = conv_out(c)[2] * conv_out(c)[3];
  const ConvCase c3 = kConvCases[6];  // 3-D
  for (int64_t limit : {int64_t(1), 2 * (K + mg) * P}) {
    const int64_t old = set_cuda_conv_scratch_limit(limit);
    compare_conv(c, 7);
    compare_conv(kConvCases[1], 8);
    compare_conv(c3, 9);
    set_cuda_conv_scratch_limit(old);
  }
}

AttrFn pool_attrs(std::vector<int64_t> kernel, std::vector<int64_t> strides, std::vector<int64_t> pads,
                  bool include_pad, bool ceil_mode = false, std::vector<int64_t> dilations = {}) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::PoolAttrs,
                          plan::CreatePoolAttrsDirect(b, &kernel, &strides, &pads, include_pad, ceil_mode,
                                                      dilations.empty() ? nullptr : &dilations)
                              .Union());
  };
}

TEST_F(Cuda, Pooling) {
  struct PoolCase {
    Shape x;
    std::vector<int64_t> kernel, strides, pads;
    bool ceil = false;
    std::vector<int64_t> dilations = {};  // MaxPool only
  };
  const std::vector<PoolCase> cases = {
      {{2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0, 0, 0}},
      {{2, 3, 7, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}},  // overlapping windows, padding
      {{1, 2, 6, 5}, {3, 2}, {1, 2}, {2, 0, 1, 1}},  // asymmetric
      {{3, 2, 4, 4}, {4, 4}, {1, 1}, {0, 0, 0, 0}},  // global
      // ceil mode: windows past the padding (4x4, not 3x3; the
      // count_include_pad divisor shrinks); then rows 4 (not 3), columns
      // 3 (a last window starting in the end padding dropped).
      {{2, 3, 8, 6}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true},
      {{1, 2, 7, 9}, {3, 2}, {2, 3}, {1, 0, 0, 1}, true},
      {{2, 3, 11}, {3}, {2}, {1, 0}},  // 1-D
      {{2, 2, 10}, {4}, {3}, {2, 1}, true},
      {{2, 2, 5, 6, 4}, {2, 3, 2}, {2, 2, 1}, {1, 1, 0, 0, 1, 1}},  // 3-D
      {{1, 2, 6, 5, 7}, {3, 2, 3}, {2, 2, 2}, {1, 0, 1, 1, 1, 0}, true},
      // Dilated (MaxPool only).
      {{2, 3, 12}, {3}, {2}, {1, 1}, false, {2}},
      {{2, 2, 9, 10}, {2, 2}, {2, 2}, {0, 0, 0, 0}, true, {2, 3}},
      {{2, 2, 5, 6, 7}, {3, 2, 3}, {2, 2, 2}, {1, 1, 1, 1, 1, 1}, false, {1, 2, 1}},
  };
  // PyTorch's pooled size (ceil mode drops a window starting in the end padding).
  auto out = [](int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t s, bool ceil, int64_t d) {
    const int64_t room = in + p0 + p1 - d * (k - 1) - 1;
    int64_t o = (ceil ? (room + s - 1) / s : room / s) + 1;
    return ceil && (o - 1) * s >= in + p0 ? o - 1 : o;
  };
  unsigned seed = 1;
  for (const PoolCase& c : cases) {
    const size_t r = c.x.size() - 2;
    Shape ys = {c.x[0], c.x[1]};
    for (size_t a = 0; a < r; ++a)
      ys.push_back(out(c.x[2 + a], c.pads[a], c.pads[r + a], c.kernel[a], c.strides[a], c.ceil,
                       c.dilations.empty() ? 1 : c.dilations[a]));
    Buf x = rnd(c.x, seed += 10), dy = rnd(ys, seed + 1);
    // Ties (first maximum wins) and a NaN (it wins, the first one).
    for (size_t i = 0; i < x.f.size(); i += 7) x.f[i] = 0.5f;
    x.f[3] = NAN;
    const AttrFn attrs = pool_attrs(c.kernel, c.strides, c.pads, false, c.ceil, c.dilations);
    compare(Opcode::MaxPool, {x}, {zeros(ys), izeros(ys)}, attrs, 0, 0);
    compare(Opcode::MaxPool, {x}, {zeros(ys)}, attrs, 0, 0);
    // The CPU's argmax, then both backends' gradients from it.
    Buf y = zeros(ys), am = izeros(ys);
    ASSERT_TRUE(cpu_call(false, Opcode::MaxPool, {&x}, {&y, &am}, attrs).ok());
    compare(Opcode::MaxPoolGrad, {dy, am}, {zeros(c.x)}, attrs, 1e-6, 1e-6);  // atomicAdd order
    for (bool include_pad : {false, true}) {
      if (!c.dilations.empty()) break;
      const AttrFn a = pool_attrs(c.kernel, c.strides, c.pads, include_pad, c.ceil);
      Buf xf = rnd(c.x, seed + 2);
      // The CPU's summation order: equal but for the compilers' float code.
      compare(Opcode::AveragePool, {xf}, {zeros(ys)}, a, 1e-6, 1e-7);
      compare(Opcode::AveragePoolGrad, {dy}, {zeros(c.x)}, a, 1e-6, 1e-7);
    }
  }
}

TEST_F(Cuda, IndexingByIndexTensors) {
  // GatherElements, ScatterElements and their gradients walk each row in
  // index order, as the CPU: repeated indices give the same result.
  for (int64_t a : {0, 1, -1}) {
    const Shape ds{4, 5, 3}, is{3, 6, 2};
    Shape ix = is;
    const int ax = int(a < 0 ? a + 3 : a);
    ix[size_t(ax)] = 7;
    for (int d = 0; d < 3; ++d)
      if (d != ax) ix[size_t(d)] = std::min(is[size_t(d)], ds[size_t(d)]);
    const int64_t n = ds[size_t(ax)];
    Buf idx = ints(ix, 20, -n, n - 1);
    compare(Opcode::GatherElements, {rnd(ds, 21), idx}, {zeros(ix)}, axis(a));
    compare(Opcode::GatherElements, {ints(ds, 22, -50, 50), idx}, {izeros(ix)}, axis(a));
    for (Opcode op : {Opcode::ScatterElements, Opcode::ScatterElementsAdd, Opcode::ScatterElementsMul}) {
      compare(op, {rnd(ds, 23), idx, rnd(ix, 24)}, {zeros(ds)}, axis(a));
      compare(op, {rnd(ds, 23), idx, rnd(ix, 24)}, {zeros(ds)}, axis(a), 1e-5, 1e-6, /*alias=*/true);
      compare(op, {ints(ds, 25, -9, 9), idx, ints(ix, 26, -3, 3)}, {izeros(ds)}, axis(a));
    }
    compare(Opcode::GatherElementsGrad, {rnd(ix, 27), idx}, {zeros(ds)}, axis(a));
    compare(Opcode::ScatterElementsGrad, {rnd(ds, 28), idx}, {zeros(ds)}, axis(a));
  }
  // GatherND and ScatterND at every depth; the tuples of the writes are
  // distinct (repeated ones race on CUDA).
  const Shape ds{4, 3, 5};
  const std::vector<std::pair<Buf, Shape>> tuples = {
      {Buf::ints({2, 1}, {3, -4}), {2, 3, 5}},
      {Buf::ints({3, 2}, {0, 1, 3, -1, -4, 0}), {3, 5}},
      {Buf::ints({2, 2, 3}, {0, 0, 0, 1, 2, 4, 3, -1, -1, 2, 0, 3}), {2, 2}}};
  for (const auto& [idx, ss] : tuples) {
    compare(Opcode::GatherND, {rnd(ds, 30), idx}, {zeros(ss)});
    compare(Opcode::GatherND, {ints(ds, 31, -9, 9), idx}, {izeros(ss)});
    for (Opcode op : {Opcode::ScatterND, Opcode::ScatterNDAdd, Opcode::ScatterNDMul}) {
      compare(op, {rnd(ds, 32), idx, rnd(ss, 33)}, {zeros(ds)});
      compare(op, {rnd(ds, 32), idx, rnd(ss, 33)}, {zeros(ds)}, nullptr, 1e-5, 1e-6, /*alias=*/true);
      compare(op, {ints(ds, 34, -9, 9), idx, ints(ss, 35, -3, 3)}, {izeros(ds)});
    }
    compare(Opcode::GatherNDGrad, {rnd(ss, 36), idx}, {zeros(ds)});
    compare(Opcode::ScatterNDGrad, {rnd(ds, 37), idx}, {zeros(ds)});
  }
  // Repeated tuples combine atomically (add and mul: rounding order only).
  Buf rep = Buf::ints({4, 1}, {1, 3, 1, -3});
  compare(Opcode::ScatterNDAdd, {rnd(ds, 38), rep, rnd({4, 3, 5}, 39)}, {zeros(ds)}, nullptr, 1e-5, 1e-6);
  compare(Opcode::ScatterNDMul, {rnd(ds, 38), rep, rnd({4, 3, 5}, 39)}, {zeros(ds)}, nullptr, 1e-5, 1e-6);
  compare(Opcode::ScatterNDAdd, {ints(ds, 40, -9, 9), rep, ints({4, 3, 5}, 41, -3, 3)}, {izeros(ds)});
  compare(Opcode::GatherNDGrad, {rnd({4, 3, 5}, 42), rep}, {zeros(ds)}, nullptr, 1e-5, 1e-6);
}

TEST_F(Cuda, TopK) {
  auto top_k = [](int64_t axis, bool largest) -> AttrFn {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::TopKAttrs, plan::CreateTopKAttrs(b, axis, largest).Union());
    };
  };
  Buf x = rnd({3, 9, 4}, 50);
  for (size_t e = 0; e < x.f.size(); e += 4) x.f[e] = 0.5f;  // ties keep index order
  x.f[7] = std::nanf("");                                    // above every number
  for (int64_t axis : {0, 1, 2})
    for (bool largest : {true, false})
      for (int64_t k : {int64_t(1), int64_t(3)}) {
        if (k > x.shape[size_t(axis)]) continue;
        Shape ys = x.shape;
        ys[size_t(axis)] = k;
        compare(Opcode::TopK, {x}, {zeros(ys), izeros(ys)}, top_k(axis, largest), 0, 0);
      }
  compare(Opcode::TopK, {x, Buf::ints({1}, {9})}, {zeros({3, 9, 4}), izeros({3, 9, 4})}, top_k(1, true), 0, 0);
}

// An index out of range, and a K input that differs from TopK's outputs,
// are step errors the device reports.
TEST_F(Cuda, IndexingDataErrorsAreStepErrors) {
  const Backend& be = *device()->backend();
  Allocator& alloc = *device()->allocator();
  auto run_one = [&](Opcode op, std::vector<Buf> in, std::vector<Buf> out, const AttrFn& attrs,
                     const std::string& want) {
    const TestInstruction instruction(op, attrs);
    std::vector<void*> mem;
    std::vector<Tensor> ti, to;
    for (Buf& b : in) {
      mem.push_back(alloc.allocate(b.bytes(), 256));
      ASSERT_TRUE(be.copy_to_device(mem.back(), b.data(), b.bytes()).ok());
      ti.push_back(b.view(mem.back()));
    }
    for (Buf& b : out) {
      mem.push_back(alloc.allocate(b.bytes(), 256));
      to.push_back(b.view(mem.back()));
    }
    const KernelCall call{instruction.get(), ti.data(), int(ti.size()), to.data(), int(to.size())};
    KernelRun run(be, op, &alloc);
    ASSERT_TRUE(run.prepare(call).ok());
    ASSERT_TRUE(run.execute(call).ok());
    Status st = be.finish_step();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
    EXPECT_TRUE(be.finish_step().ok());
    for (void* p : mem) alloc.deallocate(p);
  };
  run_one(Opcode::GatherElements, {rnd({2, 3}, 1), Buf::ints({2, 1}, {0, 3})}, {zeros({2, 1})}, axis(1),
          "GatherElements found an index out of range");
  run_one(Opcode::ScatterElementsAdd, {rnd({2, 3}, 1), Buf::ints({2, 1}, {-4, 0}), rnd({2, 1}, 2)}, {zeros({2, 3})},
          axis(1), "ScatterElementsAdd found an index out of range");
  run_one(Opcode::ScatterND, {rnd({2, 3}, 1), Buf::ints({1, 2}, {1, 3}), rnd({1}, 2)}, {zeros({2, 3})}, nullptr,
          "ScatterND found an index out of range");
  run_one(Opcode::GatherNDGrad, {rnd({1, 3}, 1), Buf::ints({1, 1}, {2})}, {zeros({2, 3})}, nullptr,
          "GatherNDGrad found an index out of range");
  run_one(
      Opcode::TopK, {rnd({2, 3}, 1), Buf::ints({1}, {1})}, {zeros({2, 2}), izeros({2, 2})},
      [](flatbuffers::FlatBufferBuilder& b) {
        return std::make_pair(plan::Attrs::TopKAttrs, plan::CreateTopKAttrs(b, 1, true).Union());
      },
      "TopK found a K input that differs from its outputs' size along the axis");
}

TEST_F(Cuda, MaxPoolArgmaxOutOfRangeIsAStepError) {
  const AttrFn attrs = pool_attrs({2, 2}, {2, 2}, {0, 0, 0, 0}, false);
  const TestInstruction instruction(Opcode::MaxPoolGrad, attrs);
  const Backend& be = *device()->backend();
  Allocator& alloc = *device()->allocator();
  Buf dy = rnd({1, 1, 1, 1}, 1), am = Buf::ints({1, 1, 1, 1}, {4}), dx = zeros({1, 1, 2, 2});
  void *ddy = alloc.allocate(dy.bytes(), 256), *dam = alloc.allocate(am.bytes(), 256),
       *ddx = alloc.allocate(dx.bytes(), 256);
  ASSERT_TRUE(be.copy_to_device(ddy, dy.data(), dy.bytes()).ok());
  ASSERT_TRUE(be.copy_to_device(dam, am.data(), am.bytes()).ok());
  Tensor in[2] = {dy.view(ddy), am.view(dam)}, out[1] = {dx.view(ddx)};
  const KernelCall call{instruction.get(), in, 2, out, 1};
  KernelRun run(be, Opcode::MaxPoolGrad, &alloc);
  ASSERT_TRUE(run.prepare(call).ok());
  ASSERT_TRUE(run.execute(call).ok());
  Status st = be.finish_step();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("MaxPoolGrad found an index out of range"), std::string::npos) << st.message();
  EXPECT_TRUE(be.finish_step().ok());
  for (void* p : {ddy, dam, ddx}) alloc.deallocate(p);
}

TEST_F(Cuda, BatchNorm) {
  auto bn = [](float eps, float momentum) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::BatchNormAttrs, plan::CreateBatchNormAttrs(b, eps, momentum).Union());
    };
  };
  for (const Shape& xs : {Shape{4, 3, 5, 6}, Shape{8, 5}, Shape{2, 4, 3}, Shape{3, 2, 40, 40}}) {
    const int64_t C = xs[1];
    // Offset inputs: the two-pass variance matters.
    Buf x = rnd(xs, 1, 2.f, 4.f), scale = rnd({C}, 2), bias = rnd({C}, 3), rmean = rnd({C}, 4),
        rvar = rnd({C}, 5, 0.5f, 2.f);
    compare(Opcode::BatchNormalization, {x, scale, bias, rmean, rvar}, {zeros(xs), zeros({C}), zeros({C})},
            bn(1e-5f, 0.1f), 1e-5, 1e-5);
    compare(Opcode::BatchNormalization, {x, scale, bias, rmean, rvar}, {zeros(xs)}, bn(1e-3f, 0.3f), 1e-5, 1e-5);
    // In place: y is x.
    compare(Opcode::BatchNormalization, {x, scale, bias, rmean, rvar}, {zeros(xs), zeros({C}), zeros({C})},
            bn(1e-5f, 0.1f), 1e-5, 1e-5, /*alias=*/true);
    // Consistent saved statistics from the CPU forward.
    Buf y = zeros(xs), sm = zeros({C}), si = zeros({C}), rm = rmean, rv = rvar;
    ASSERT_TRUE(cpu_call(false, Opcode::BatchNormalization, {&x, &scale, &bias, &rm, &rv}, {&y, &sm, &si},
                         bn(1e-5f, 0.1f))
                    .ok());
    Buf dy = rnd(xs, 6);
    compare(Opcode::BatchNormalizationGrad, {dy, x, scale, sm, si}, {zeros(xs), zeros({C}), zeros({C})},
            bn(1e-5f, 0.1f), 1e-4, 1e-5);
    compare(Opcode::BatchNormalizationGrad, {dy, x, scale, sm, si}, {zeros(xs)}, bn(1e-5f, 0.1f), 1e-4, 1e-5);
    compare(Opcode::BatchNormalizationGrad, {dy, x, scale, sm, si}, {zeros(xs), zeros({C}), zeros({C})},
            bn(1e-5f, 0.1f), 1e-4, 1e-5, /*alias=*/true);  // dx is dy
  }
}

// Needs no GPU: the table is the CUDA backend's without a device.
TEST(CudaBuild, EveryCpuOpcodeIsImplemented) {
  for (Opcode op : plan::EnumValuesOpcode())
    if (cpu_backend().kernel(op))
      EXPECT_TRUE(cuda_backend_implements(op))
          << "CUDA backend: opcode " << plan::EnumNameOpcode(op) << " is not implemented";
}

TEST_F(Cuda, BatchNormPlanMatchesCpu) {
  const int64_t B = 4;
  std::vector<float> x(size_t(B * 2 * 9));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(-1.f, 3.f);
  for (float& v : x) v = d(gen);
  std::vector<float> losses[2], params[2][4];
  const char* names[4] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
  for (int cuda = 0; cuda < 2; ++cuda) {
    const auto bytes = test::batchnorm_plan(1, B, 0.1f, nullptr, cuda ? plan::Backend::Cuda : plan::Backend::Cpu);
    auto comm = cuda ? make_cuda_single_rank_communicator(device()) : make_single_rank_communicator();
    std::unique_ptr<Session> s;
    Status st = open_plan(bytes, comm.get(), cuda, &s);
    ASSERT_TRUE(st.ok()) << st.message();
    for (int step = 0; step < 5; ++step) {
      ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {B, 2, 3, 3}).ok());
      st = s->step();
      ASSERT_TRUE(st.ok()) << st.message();
      float l;
      ASSERT_TRUE(s->loss(&l).ok());
      losses[cuda].push_back(l);
    }
    for (int k = 0; k < 4; ++k) ASSERT_TRUE(s->read_parameter(names[k], &params[cuda][k]).ok()) << names[k];
  }
  for (size_t i = 0; i < losses[0].size(); ++i) EXPECT_NEAR(losses[0][i], losses[1][i], 1e-5 * std::fabs(losses[0][i]));
  for (int k = 0; k < 4; ++k)
    for (size_t i = 0; i < params[0][k].size(); ++i) EXPECT_NEAR(params[0][k][i], params[1][k][i], 1e-5) << names[k];
}

// The linear-regression plan on both backends: synchronous collectives as
// device copies, and (sharded, asynchronous: slots, Waits) through NCCL with
// one rank, so the event ordering of the NCCL stream is exercised.
void check_linreg_plan(bool async) {
  test::LinRegOptions o;
  o.async = o.sharded = async;
  std::vector<float> x = {0.5f, -1.f, 2.f, 1.f, 0.f, 3.f, -2.f, 1.f, 1.f, 0.25f, 0.5f, -0.5f}, y = {1, 2, 3, 4};
  std::vector<float> losses[2], w[2];
  for (int cuda = 0; cuda < 2; ++cuda) {
    o.backend = cuda ? plan::Backend::Cuda : plan::Backend::Cpu;
    const auto bytes = test::linreg_plan(o);
    auto host = make_single_rank_communicator();
    std::unique_ptr<Communicator> comm;
    if (!cuda) comm = make_single_rank_communicator();
    else if (!async || !nccl_available()) comm = make_cuda_single_rank_communicator(device());
    else ASSERT_TRUE(make_nccl_communicator(device(), host.get(), &comm).ok());
    std::unique_ptr<Session> s;
    Status st = open_plan(bytes, comm.get(), cuda, &s);
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
