// Every CPU kernel against a naive reference on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "backend.h"

namespace zero {
namespace {

using plan::Opcode;
using Shape = std::vector<int64_t>;

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// A test tensor owning its data.
struct Buf {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  static Buf rand(const Shape& s, float lo = -1.f, float hi = 1.f, unsigned seed = 1) {
    Buf b{DType::F32, s, std::vector<float>(size_t(numel(s))), {}};
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    for (float& v : b.f) v = d(g);
    return b;
  }
  static Buf zeros(const Shape& s) { return Buf{DType::F32, s, std::vector<float>(size_t(numel(s))), {}}; }
  static Buf ints(const Shape& s, std::vector<int64_t> v) { return Buf{DType::I64, s, {}, std::move(v)}; }
  Tensor view() {
    Tensor t;
    t.data = dtype == DType::F32 ? static_cast<void*>(f.data()) : static_cast<void*>(i.data());
    t.dtype = dtype;
    t.ndim = int(shape.size());
    for (size_t k = 0; k < shape.size(); ++k) t.dims[k] = shape[k];
    t.numel = numel(shape);
    return t;
  }
};

using AttrFn = std::function<std::pair<plan::Attrs, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)>;

// Runs one kernel on the given buffers; outputs may repeat inputs (aliasing).
Status run(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs = nullptr) {
  flatbuffers::FlatBufferBuilder fbb;
  std::pair<plan::Attrs, flatbuffers::Offset<void>> a{plan::Attrs::NONE, 0};
  if (attrs) a = attrs(fbb);
  fbb.Finish(plan::CreateInstruction(fbb, op, 0, 0, a.first, a.second));
  const auto* inst = flatbuffers::GetRoot<plan::Instruction>(fbb.GetBufferPointer());
  std::vector<Tensor> ti, to;
  for (Buf* b : in) ti.push_back(b->view());
  for (Buf* b : out) to.push_back(b->view());
  Kernel k = cpu_backend().kernel(op);
  if (!k) return Status::error("no kernel");
  return k(KernelCall{inst, ti.data(), int(ti.size()), to.data(), int(to.size())});
}

AttrFn axis_attr(int64_t axis) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b, axis).Union());
  };
}

// Index of `out_index` (over shape `out`) into a tensor of shape `in`
// broadcast to `out` with numpy rules.
int64_t bcast_index(int64_t out_index, const Shape& out, const Shape& in) {
  std::vector<int64_t> idx(out.size());
  for (int k = int(out.size()) - 1; k >= 0; --k) {
    idx[size_t(k)] = out_index % out[size_t(k)];
    out_index /= out[size_t(k)];
  }
  int64_t r = 0;
  for (size_t j = 0; j < in.size(); ++j) {
    const size_t k = j + out.size() - in.size();
    r = r * in[j] + (in[j] == 1 ? 0 : idx[k]);
  }
  return r;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k)
    ASSERT_NEAR(got[k], want[k], tol * (1.f + std::fabs(want[k]))) << "at " << k;
}

// ---- elementwise ---------------------------------------------------------

struct BinaryCase {
  Shape a, b, out;
};

class Binary : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(Binary, MatchesReference) {
  const BinaryCase c = GetParam();
  const std::vector<std::pair<Opcode, std::function<float(float, float)>>> ops = {
      {Opcode::Add, [](float x, float y) { return x + y; }},
      {Opcode::Sub, [](float x, float y) { return x - y; }},
      {Opcode::Mul, [](float x, float y) { return x * y; }},
      {Opcode::Div, [](float x, float y) { return x / y; }},
      {Opcode::Pow, [](float x, float y) { return std::pow(x, y); }}};
  for (const auto& [op, f] : ops) {
    Buf a = Buf::rand(c.a, 0.5f, 2.f, 1), b = Buf::rand(c.b, 0.5f, 2.f, 2), y = Buf::zeros(c.out);
    ASSERT_TRUE(run(op, {&a, &b}, {&y}).ok());
    std::vector<float> want(y.f.size());
    for (int64_t o = 0; o < numel(c.out); ++o)
      want[size_t(o)] = f(a.f[size_t(bcast_index(o, c.out, c.a))], b.f[size_t(bcast_index(o, c.out, c.b))]);
    expect_near(y.f, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Broadcasting, Binary,
                         ::testing::Values(BinaryCase{{2, 3}, {2, 3}, {2, 3}}, BinaryCase{{2, 3}, {}, {2, 3}},
                                           BinaryCase{{2, 3}, {3}, {2, 3}}, BinaryCase{{2, 1}, {1, 3}, {2, 3}},
                                           BinaryCase{{4, 1, 5}, {3, 1}, {4, 3, 5}},
                                           BinaryCase{{1}, {2, 2, 3}, {2, 2, 3}},
                                           BinaryCase{{2, 3, 1, 2}, {3, 4, 1}, {2, 3, 4, 2}}));

TEST(Binary, InPlaceAndErrors) {
  Buf a = Buf::rand({3, 4}), b = Buf::rand({4}), orig = a;
  ASSERT_TRUE(run(Opcode::Add, {&a, &b}, {&a}).ok());
  for (int64_t k = 0; k < 12; ++k) EXPECT_FLOAT_EQ(a.f[size_t(k)], orig.f[size_t(k)] + b.f[size_t(k % 4)]);
  Buf bad = Buf::rand({3}), y = Buf::zeros({3, 4});
  Status st = run(Opcode::Mul, {&a, &bad}, {&y});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot broadcast"), std::string::npos) << st.message();
}

TEST(Unary, MatchesReference) {
  const std::vector<std::pair<Opcode, std::function<float(float)>>> ops = {
      {Opcode::Neg, [](float x) { return -x; }},
      {Opcode::Sqrt, [](float x) { return std::sqrt(std::fabs(x)); }},
      {Opcode::Relu, [](float x) { return std::max(x, 0.f); }},
      {Opcode::Tanh, [](float x) { return std::tanh(x); }},
      {Opcode::Sigmoid, [](float x) { return 1.f / (1.f + std::exp(-x)); }},
      {Opcode::Erf, [](float x) { return std::erf(x); }},
      {Opcode::Exp, [](float x) { return std::exp(x); }},
      {Opcode::Log, [](float x) { return std::log(std::fabs(x)); }},
      {Opcode::Copy, [](float x) { return x; }}};
  for (const auto& [op, f] : ops) {
    Buf x = Buf::rand({3, 5}, -2.f, 2.f);
    if (op == Opcode::Sqrt || op == Opcode::Log)
      for (float& v : x.f) v = std::fabs(v);
    std::vector<float> want;
    for (float v : x.f) want.push_back(f(v));
    Buf y = Buf::zeros({3, 5});
    ASSERT_TRUE(run(op, {&x}, {&y}).ok());
    expect_near(y.f, want);
    ASSERT_TRUE(run(op, {&x}, {&x}).ok());  // in place
    expect_near(x.f, want);
  }
}

TEST(Unary, Grads) {
  Buf dy = Buf::rand({4, 3}, -1, 1, 3), x = Buf::rand({4, 3}, -2, 2, 4), dx = Buf::zeros({4, 3});
  const auto check = [&](Opcode op, std::function<float(float, float)> f) {
    ASSERT_TRUE(run(op, {&dy, &x}, {&dx}).ok());
    std::vector<float> want;
    for (size_t k = 0; k < x.f.size(); ++k) want.push_back(f(dy.f[k], x.f[k]));
    expect_near(dx.f, want);
  };
  check(Opcode::ReluGrad, [](float d, float v) { return v > 0 ? d : 0.f; });
  check(Opcode::TanhGrad, [](float d, float v) { return d * (1 - v * v); });
  check(Opcode::SigmoidGrad, [](float d, float v) { return d * v * (1 - v); });
  check(Opcode::ErfGrad, [](float d, float v) { return d * 2.f / std::sqrt(float(M_PI)) * std::exp(-v * v); });
}

TEST(Cast, BothWays) {
  Buf x = Buf::rand({5}, -10, 10), i = Buf::ints({5}, std::vector<int64_t>(5)), back = Buf::zeros({5});
  ASSERT_TRUE(run(Opcode::Cast, {&x}, {&i}).ok());
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(i.i[k], int64_t(std::trunc(x.f[k])));
  ASSERT_TRUE(run(Opcode::Cast, {&i}, {&back}).ok());
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(back.f[k], float(i.i[k]));
}

// ---- Gemm / MatMul -------------------------------------------------------

struct GemmCase {
  bool ta, tb;
  float alpha, beta;
  Shape c;  // empty vector = no C operand; {0} sentinel not used
  bool has_c;
};

class GemmTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTest, MatchesReference) {
  const GemmCase g = GetParam();
  const int64_t M = 3, K = 4, N = 5;
  Buf a = Buf::rand(g.ta ? Shape{K, M} : Shape{M, K}, -1, 1, 1), b = Buf::rand(g.tb ? Shape{N, K} : Shape{K, N}, -1, 1, 2);
  Buf c = Buf::rand(g.c, -1, 1, 3), y = Buf::rand({M, N}, -1, 1, 4);
  std::vector<Buf*> in = {&a, &b};
  if (g.has_c) in.push_back(&c);
  ASSERT_TRUE(run(Opcode::Gemm, in, {&y}, [&](flatbuffers::FlatBufferBuilder& fb) {
                return std::make_pair(plan::Attrs::GemmAttrs,
                                      plan::CreateGemmAttrs(fb, g.ta, g.tb, g.alpha, g.beta).Union());
              }).ok());
  std::vector<float> want(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(g.ta ? a.f[size_t(k * M + i)] : a.f[size_t(i * K + k)]) *
             (g.tb ? b.f[size_t(j * K + k)] : b.f[size_t(k * N + j)]);
      float v = g.alpha * float(s);
      if (g.has_c) v += g.beta * c.f[size_t(bcast_index(i * N + j, {M, N}, g.c))];
      want[size_t(i * N + j)] = v;
    }
  expect_near(y.f, want, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Variants, GemmTest,
                         ::testing::Values(GemmCase{false, false, 1, 1, {}, false},
                                           GemmCase{true, false, 0.5f, 1, {3, 5}, true},
                                           GemmCase{false, true, 1, 2, {5}, true},
                                           GemmCase{true, true, 2, 0.5f, {3, 1}, true},
                                           GemmCase{false, false, 1, 1, {}, true},
                                           GemmCase{false, false, 1, 1, {1, 5}, true}));

struct MatMulCase {
  Shape a, b, out;
};

class MatMulTest : public ::testing::TestWithParam<MatMulCase> {};

TEST_P(MatMulTest, MatchesNumpy) {
  const MatMulCase c = GetParam();
  Buf a = Buf::rand(c.a, -1, 1, 5), b = Buf::rand(c.b, -1, 1, 6), y = Buf::zeros(c.out);
  ASSERT_TRUE(run(Opcode::MatMul, {&a, &b}, {&y}).ok());
  // Reference: promote 1-D operands, broadcast batch by index arithmetic.
  Shape pa = c.a.size() == 1 ? Shape{1, c.a[0]} : c.a, pb = c.b.size() == 1 ? Shape{c.b[0], 1} : c.b;
  const int64_t M = pa[pa.size() - 2], K = pa.back(), N = pb.back();
  Shape ba(pa.begin(), pa.end() - 2), bb(pb.begin(), pb.end() - 2), batch;
  const size_t nb = std::max(ba.size(), bb.size());
  for (size_t k = 0; k < nb; ++k) {
    int64_t da = k + ba.size() >= nb ? ba[k + ba.size() - nb] : 1, db = k + bb.size() >= nb ? bb[k + bb.size() - nb] : 1;
    batch.push_back(std::max(da, db));
  }
  std::vector<float> want;
  for (int64_t t = 0; t < numel(batch); ++t) {
    const int64_t ia = bcast_index(t, batch, ba), ib = bcast_index(t, batch, bb);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += double(a.f[size_t(ia * M * K + i * K + k)]) * b.f[size_t(ib * K * N + k * N + j)];
        want.push_back(float(s));
      }
  }
  expect_near(y.f, want, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Numpy, MatMulTest,
                         ::testing::Values(MatMulCase{{3, 4}, {4, 5}, {3, 5}}, MatMulCase{{4}, {4, 5}, {5}},
                                           MatMulCase{{3, 4}, {4}, {3}}, MatMulCase{{4}, {4}, {}},
                                           MatMulCase{{2, 3, 4}, {4, 5}, {2, 3, 5}},
                                           MatMulCase{{3, 4}, {2, 4, 5}, {2, 3, 5}},
                                           MatMulCase{{2, 1, 3, 4}, {3, 4, 2}, {2, 3, 3, 2}},
                                           MatMulCase{{2, 3, 4}, {4}, {2, 3}}));

TEST(MatMulTest, ShapeMismatchIsError) {
  Buf a = Buf::rand({3, 4}), b = Buf::rand({5, 2}), y = Buf::zeros({3, 2});
  EXPECT_FALSE(run(Opcode::MatMul, {&a, &b}, {&y}).ok());
}

// ---- softmax family ------------------------------------------------------

// Reference softmax along `axis` of shape s.
std::vector<float> ref_softmax(const Buf& x, int axis, bool log) {
  const Shape& s = x.shape;
  int64_t outer = 1, n = s[size_t(axis)], inner = 1;
  for (int k = 0; k < axis; ++k) outer *= s[size_t(k)];
  for (size_t k = size_t(axis) + 1; k < s.size(); ++k) inner *= s[k];
  std::vector<float> y(x.f.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double sum = 0;
      for (int64_t c = 0; c < n; ++c) sum += std::exp(double(x.f[size_t((o * n + c) * inner + i)]));
      for (int64_t c = 0; c < n; ++c) {
        const size_t j = size_t((o * n + c) * inner + i);
        y[j] = log ? float(x.f[j] - std::log(sum)) : float(std::exp(double(x.f[j])) / sum);
      }
    }
  return y;
}

TEST(Softmax, Axes) {
  for (int64_t axis : {0, 1, 2, -1, -2}) {
    Buf x = Buf::rand({2, 3, 4}, -3, 3), y = Buf::zeros({2, 3, 4}), ly = Buf::zeros({2, 3, 4});
    ASSERT_TRUE(run(Opcode::Softmax, {&x}, {&y}, axis_attr(axis)).ok());
    ASSERT_TRUE(run(Opcode::LogSoftmax, {&x}, {&ly}, axis_attr(axis)).ok());
    const int ax = int(axis < 0 ? axis + 3 : axis);
    expect_near(y.f, ref_softmax(x, ax, false));
    expect_near(ly.f, ref_softmax(x, ax, true));
  }
  Buf x = Buf::rand({2, 3}), y = Buf::zeros({2, 3});
  EXPECT_FALSE(run(Opcode::Softmax, {&x}, {&y}, axis_attr(2)).ok());
}

TEST(Softmax, Grads) {
  for (int64_t axis : {1, -1, 0}) {
    Buf x = Buf::rand({3, 4, 2}, -2, 2, 7), dy = Buf::rand({3, 4, 2}, -1, 1, 8);
    const int ax = int(axis < 0 ? axis + 3 : axis);
    for (bool log : {false, true}) {
      Buf y{DType::F32, x.shape, ref_softmax(x, ax, log), {}}, dx = Buf::zeros(x.shape);
      ASSERT_TRUE(run(log ? Opcode::LogSoftmaxGrad : Opcode::SoftmaxGrad, {&dy, &y}, {&dx}, axis_attr(axis)).ok());
      // Reference via the Jacobian of (log)softmax.
      const Shape& s = x.shape;
      int64_t outer = 1, n = s[size_t(ax)], inner = 1;
      for (int k = 0; k < ax; ++k) outer *= s[size_t(k)];
      for (size_t k = size_t(ax) + 1; k < s.size(); ++k) inner *= s[k];
      std::vector<float> want(x.f.size());
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i)
          for (int64_t c = 0; c < n; ++c) {
            double g = 0;
            const size_t jc = size_t((o * n + c) * inner + i);
            for (int64_t d = 0; d < n; ++d) {
              const size_t jd = size_t((o * n + d) * inner + i);
              // d y_d / d x_c
              const double p_c = log ? std::exp(double(y.f[jc])) : y.f[jc];
              const double jac = log ? (c == d ? 1.0 : 0.0) - p_c : double(y.f[jd]) * ((c == d ? 1.0 : 0.0) - p_c);
              g += dy.f[jd] * jac;
            }
            want[jc] = float(g);
          }
      expect_near(dx.f, want, 1e-4f);
    }
  }
}

// ---- losses --------------------------------------------------------------

AttrFn loss_attr(plan::Reduction r, bool has_ignore = false, int64_t ignore = 0) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::LossAttrs, plan::CreateLossAttrs(b, r, ignore, has_ignore).Union());
  };
}

struct LossCase {
  Shape scores;  // [N, C, d...]
  plan::Reduction reduction;
  bool has_ignore;
};

class Loss : public ::testing::TestWithParam<LossCase> {};

TEST_P(Loss, ForwardAndGradMatchReference) {
  const LossCase lc = GetParam();
  const Shape& s = lc.scores;
  const int64_t N = s[0], C = s[1], inner = numel(s) / (N * C);
  Shape ls = {N};
  for (size_t k = 2; k < s.size(); ++k) ls.push_back(s[k]);
  std::vector<int64_t> labels;
  std::mt19937 g(3);
  for (int64_t k = 0; k < N * inner; ++k) labels.push_back(int64_t(g() % uint32_t(C)));
  const int64_t ignore = 1;
  labels[0] = ignore;
  Buf x = Buf::rand(s, -2, 2, 9), lab = Buf::ints(ls, labels);
  Buf logp{DType::F32, s, ref_softmax(x, 1, true), {}};
  const bool none = lc.reduction == plan::Reduction::None;

  // Reference loss.
  std::vector<float> per(size_t(N * inner));
  double sum = 0;
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t l = labels[size_t(n * inner + i)];
      if (lc.has_ignore && l == ignore) continue;
      per[size_t(n * inner + i)] = -logp.f[size_t((n * C + l) * inner + i)];
      sum += per[size_t(n * inner + i)];
      ++count;
    }
  std::vector<float> want_loss =
      none ? per : std::vector<float>{float(lc.reduction == plan::Reduction::Mean ? sum / double(count) : sum)};

  for (bool softmax : {true, false}) {
    Buf loss = Buf::zeros(none ? ls : Shape{}), lp = Buf::zeros(s);
    Buf* input = softmax ? &x : &logp;
    std::vector<Buf*> outs = {&loss};
    if (softmax) outs.push_back(&lp);
    ASSERT_TRUE(run(softmax ? Opcode::SoftmaxCrossEntropyLoss : Opcode::NegativeLogLikelihoodLoss, {input, &lab}, outs,
                    loss_attr(lc.reduction, lc.has_ignore, ignore))
                    .ok());
    expect_near(loss.f, want_loss, 1e-5f);
    if (softmax) expect_near(lp.f, logp.f, 1e-5f);

    // Gradient.
    Buf dloss = none ? Buf::rand(ls, -1, 1, 10) : Buf{DType::F32, {}, {0.7f}, {}}, dx = Buf::rand(s);
    ASSERT_TRUE(run(softmax ? Opcode::SoftmaxCrossEntropyLossGrad : Opcode::NegativeLogLikelihoodLossGrad,
                    {&dloss, input, &lab}, {&dx}, loss_attr(lc.reduction, lc.has_ignore, ignore))
                    .ok());
    std::vector<float> want(x.f.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t pos = n * inner + i, l = labels[size_t(pos)];
        const bool ign = lc.has_ignore && l == ignore;
        const double w = ign ? 0.0
                         : none ? dloss.f[size_t(pos)]
                         : lc.reduction == plan::Reduction::Mean ? dloss.f[0] / double(count)
                                                                   : dloss.f[0];
        for (int64_t c = 0; c < C; ++c) {
          const size_t j = size_t((n * C + c) * inner + i);
          const double onehot = c == l ? 1.0 : 0.0;
          want[j] = float(softmax ? (std::exp(double(logp.f[j])) - onehot) * w : -onehot * w);
        }
      }
    expect_near(dx.f, want, 1e-5f);
  }
}

INSTANTIATE_TEST_SUITE_P(Reductions, Loss,
                         ::testing::Values(LossCase{{5, 4}, plan::Reduction::Mean, false},
                                           LossCase{{5, 4}, plan::Reduction::Mean, true},
                                           LossCase{{5, 4}, plan::Reduction::Sum, true},
                                           LossCase{{5, 4}, plan::Reduction::None, true},
                                           LossCase{{3, 4, 2, 2}, plan::Reduction::Mean, true},
                                           LossCase{{3, 4, 2}, plan::Reduction::None, false}));

TEST(LossErrors, LabelOutOfRange) {
  Buf x = Buf::rand({2, 3}), lab = Buf::ints({2}, {0, 3}), loss = Buf::zeros({});
  Status st = run(Opcode::SoftmaxCrossEntropyLoss, {&x, &lab}, {&loss}, loss_attr(plan::Reduction::Mean));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("label 3 out of range"), std::string::npos) << st.message();
}

// ---- reductions and layout -----------------------------------------------

TEST(Reduce, AxesAndKeepdims) {
  const Shape s = {2, 3, 4};
  Buf x = Buf::rand(s);
  const std::vector<std::vector<int64_t>> cases = {{}, {0}, {1}, {-1}, {0, 2}, {0, 1, 2}};
  for (const auto& axes : cases)
    for (bool keep : {false, true})
      for (bool mean : {false, true}) {
        bool red[3] = {axes.empty(), axes.empty(), axes.empty()};
        for (int64_t a : axes) red[a < 0 ? a + 3 : a] = true;
        Shape os;
        for (int k = 0; k < 3; ++k)
          if (!red[k]) os.push_back(s[size_t(k)]);
          else if (keep) os.push_back(1);
        std::vector<double> acc(size_t(numel(os)), 0.0);
        int64_t cnt = 1;
        for (int k = 0; k < 3; ++k) cnt *= red[k] ? s[size_t(k)] : 1;
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 4; ++k) {
              int64_t o = 0;
              if (!red[0]) o = o * 2 + i;
              if (!red[1]) o = o * 3 + j;
              if (!red[2]) o = o * 4 + k;
              acc[size_t(o)] += x.f[size_t((i * 3 + j) * 4 + k)];
            }
        std::vector<float> want;
        for (double v : acc) want.push_back(float(mean ? v / double(cnt) : v));
        Buf y = Buf::zeros(os);
        ASSERT_TRUE(run(mean ? Opcode::ReduceMean : Opcode::ReduceSum, {&x}, {&y},
                        [&](flatbuffers::FlatBufferBuilder& b) {
                          return std::make_pair(plan::Attrs::ReduceAttrs,
                                                plan::CreateReduceAttrsDirect(b, &axes, keep).Union());
                        })
                        .ok());
        expect_near(y.f, want);
      }
}

TEST(Layout, Transpose) {
  Buf x = Buf::rand({2, 3, 4});
  const std::vector<int64_t> perm = {2, 0, 1};
  Buf y = Buf::zeros({4, 2, 3});
  ASSERT_TRUE(run(Opcode::Transpose, {&x}, {&y}, [&](flatbuffers::FlatBufferBuilder& b) {
                return std::make_pair(plan::Attrs::PermAttrs, plan::CreatePermAttrsDirect(b, &perm).Union());
              }).ok());
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.f[size_t((k * 2 + i) * 3 + j)], x.f[size_t((i * 3 + j) * 4 + k)]);
  Buf r = Buf::zeros({4, 3, 2});  // default perm reverses
  ASSERT_TRUE(run(Opcode::Transpose, {&x}, {&r}).ok());
  EXPECT_EQ(r.f[size_t((3 * 3 + 1) * 2 + 1)], x.f[size_t((1 * 3 + 1) * 4 + 3)]);
  Buf bad = Buf::zeros({4, 3, 3});
  EXPECT_FALSE(run(Opcode::Transpose, {&x}, {&bad}).ok());
}

TEST(Layout, ExpandAndFill) {
  Buf x = Buf::rand({3, 1}), y = Buf::zeros({2, 3, 4});
  ASSERT_TRUE(run(Opcode::Expand, {&x}, {&y}).ok());
  for (int64_t o = 0; o < 24; ++o) EXPECT_EQ(y.f[size_t(o)], x.f[size_t(bcast_index(o, {2, 3, 4}, {3, 1}))]);
  Buf li = Buf::ints({2}, {5, 6}), lo = Buf::ints({3, 2}, std::vector<int64_t>(6));
  ASSERT_TRUE(run(Opcode::Expand, {&li}, {&lo}).ok());
  EXPECT_EQ(lo.i, (std::vector<int64_t>{5, 6, 5, 6, 5, 6}));
  ASSERT_TRUE(run(Opcode::Fill, {}, {&y}, [](flatbuffers::FlatBufferBuilder& b) {
                return std::make_pair(plan::Attrs::FillAttrs, plan::CreateFillAttrs(b, 2.5f).Union());
              }).ok());
  for (float v : y.f) EXPECT_EQ(v, 2.5f);
}

// ---- optimizers ----------------------------------------------------------

TEST(Optimizer, SgdMomentumWeightDecay) {
  const float lr = 0.1f, mom = 0.9f, wd = 0.01f;
  Buf p = Buf::rand({6}, -1, 1, 1), buf = Buf::zeros({6});
  std::vector<float> rp = p.f, rbuf(6);
  for (int step = 0; step < 3; ++step) {
    Buf g = Buf::rand({6}, -1, 1, unsigned(10 + step));
    ASSERT_TRUE(run(Opcode::SgdUpdate, {&p, &g, &buf}, {}, [&](flatbuffers::FlatBufferBuilder& b) {
                  return std::make_pair(plan::Attrs::SgdAttrs, plan::CreateSgdAttrs(b, lr, mom, wd).Union());
                }).ok());
    for (size_t k = 0; k < 6; ++k) {  // torch.optim.SGD
      float d = g.f[k] + wd * rp[k];
      rbuf[k] = step == 0 ? d : mom * rbuf[k] + d;
      rp[k] -= lr * rbuf[k];
    }
    expect_near(p.f, rp, 1e-6f);
  }
}

TEST(Optimizer, AdamW) {
  const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
  Buf p = Buf::rand({5}, -1, 1, 2), m = Buf::zeros({5}), v = Buf::zeros({5}), t = Buf::ints({}, {0});
  std::vector<double> rp(p.f.begin(), p.f.end()), rm(5), rv(5);
  for (int step = 1; step <= 4; ++step) {
    Buf g = Buf::rand({5}, -1, 1, unsigned(20 + step));
    ASSERT_TRUE(run(Opcode::IncrementStep, {&t}, {&t}).ok());
    ASSERT_EQ(t.i[0], step);
    ASSERT_TRUE(run(Opcode::AdamWUpdate, {&p, &g, &m, &v, &t}, {}, [&](flatbuffers::FlatBufferBuilder& b) {
                  return std::make_pair(plan::Attrs::AdamWAttrs, plan::CreateAdamWAttrs(b, lr, b1, b2, eps, wd).Union());
                }).ok());
    for (size_t k = 0; k < 5; ++k) {  // torch.optim.AdamW, in double
      rp[k] *= 1 - double(lr) * wd;
      rm[k] = b1 * rm[k] + (1 - double(b1)) * g.f[k];
      rv[k] = b2 * rv[k] + (1 - double(b2)) * g.f[k] * g.f[k];
      const double bc1 = 1 - std::pow(double(b1), step), bc2 = 1 - std::pow(double(b2), step);
      rp[k] -= lr / bc1 * rm[k] / (std::sqrt(rv[k]) / std::sqrt(bc2) + eps);
    }
    for (size_t k = 0; k < 5; ++k) ASSERT_NEAR(p.f[k], rp[k], 1e-5) << "step " << step;
  }
  Buf zero = Buf::ints({}, {0});
  EXPECT_FALSE(run(Opcode::AdamWUpdate, {&p, &p, &m, &v, &zero}, {}, [&](flatbuffers::FlatBufferBuilder& b) {
                 return std::make_pair(plan::Attrs::AdamWAttrs, plan::CreateAdamWAttrs(b, lr, b1, b2, eps, wd).Union());
               }).ok());
}

// ---- single-rank communicator --------------------------------------------

TEST(SingleRank, CollectivesAreCopies) {
  auto comm = make_single_rank_communicator();
  EXPECT_EQ(comm->size(), 1);
  std::vector<float> x = {1, 2, 3}, y(3);
  ASSERT_TRUE(comm->all_reduce(x.data(), y.data(), 3, Reduction::Mean).ok());
  EXPECT_EQ(y, x);
  ASSERT_TRUE(comm->all_reduce(x.data(), x.data(), 3, Reduction::Sum).ok());
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
  std::fill(y.begin(), y.end(), 0.f);
  ASSERT_TRUE(comm->reduce_scatter(x.data(), y.data(), 3, Reduction::Sum).ok());
  EXPECT_EQ(y, x);
  std::fill(y.begin(), y.end(), 0.f);
  ASSERT_TRUE(comm->all_gather(x.data(), y.data(), 3).ok());
  EXPECT_EQ(y, x);
}

}  // namespace
}  // namespace zero
