// Every CPU kernel against a naive reference on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include "backend.h"
#include "test_tensors.h"
#include "zero/training_math.h"

namespace zero {
namespace {

using plan::Opcode;
// Runs one kernel on the given buffers; outputs may repeat inputs (aliasing).
Status run(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs = nullptr) {
  return cpu_call(false, op, in, out, attrs);
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
  bool weighted = false;  // class weights [C] as the optional last input
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
  Buf weights = Buf::rand({C}, 0.1f, 3.f, 11);
  auto cw = [&](int64_t l) { return lc.weighted ? double(weights.f[size_t(l)]) : 1.0; };

  // Reference loss: Mean divides by the summed weight of counted labels.
  std::vector<float> per(size_t(N * inner));
  double sum = 0, total = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t l = labels[size_t(n * inner + i)];
      if (lc.has_ignore && l == ignore) continue;
      per[size_t(n * inner + i)] = float(-cw(l) * logp.f[size_t((n * C + l) * inner + i)]);
      sum += per[size_t(n * inner + i)];
      total += cw(l);
    }
  std::vector<float> want_loss =
      none ? per : std::vector<float>{float(lc.reduction == plan::Reduction::Mean ? sum / total : sum)};

  for (bool softmax : {true, false}) {
    Buf loss = Buf::zeros(none ? ls : Shape{}), lp = Buf::zeros(s);
    Buf* input = softmax ? &x : &logp;
    std::vector<Buf*> outs = {&loss};
    if (softmax) outs.push_back(&lp);
    std::vector<Buf*> ins = {input, &lab};
    if (lc.weighted) ins.push_back(&weights);
    ASSERT_TRUE(run(softmax ? Opcode::SoftmaxCrossEntropyLoss : Opcode::NegativeLogLikelihoodLoss, ins, outs,
                    loss_attr(lc.reduction, lc.has_ignore, ignore))
                    .ok());
    expect_near(loss.f, want_loss, 1e-5f);
    if (softmax) expect_near(lp.f, logp.f, 1e-5f);

    // Gradient.
    Buf dloss = none ? Buf::rand(ls, -1, 1, 10) : Buf{DType::F32, {}, {0.7f}, {}}, dx = Buf::rand(s);
    std::vector<Buf*> grad_ins = {&dloss, input, &lab};
    if (lc.weighted) grad_ins.push_back(&weights);
    ASSERT_TRUE(run(softmax ? Opcode::SoftmaxCrossEntropyLossGrad : Opcode::NegativeLogLikelihoodLossGrad, grad_ins,
                    {&dx}, loss_attr(lc.reduction, lc.has_ignore, ignore))
                    .ok());
    std::vector<float> want(x.f.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t pos = n * inner + i, l = labels[size_t(pos)];
        const bool ign = lc.has_ignore && l == ignore;
        const double w = ign ? 0.0
                         : none ? cw(l) * dloss.f[size_t(pos)]
                         : lc.reduction == plan::Reduction::Mean ? cw(l) * dloss.f[0] / total
                                                                   : cw(l) * dloss.f[0];
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
                                           LossCase{{3, 4, 2}, plan::Reduction::None, false},
                                           LossCase{{5, 4}, plan::Reduction::Mean, false, true},
                                           LossCase{{5, 4}, plan::Reduction::Mean, true, true},
                                           LossCase{{5, 4}, plan::Reduction::Sum, false, true},
                                           LossCase{{5, 4}, plan::Reduction::Sum, true, true},
                                           LossCase{{5, 4}, plan::Reduction::None, true, true},
                                           LossCase{{3, 4, 2, 2}, plan::Reduction::Mean, true, true},
                                           LossCase{{3, 4, 2}, plan::Reduction::None, false, true}));

TEST(LossErrors, WeightsShape) {
  Buf x = Buf::rand({2, 3}), lab = Buf::ints({2}, {0, 2}), w = Buf::rand({4}), loss = Buf::zeros({});
  Status st = run(Opcode::NegativeLogLikelihoodLoss, {&x, &lab, &w}, {&loss}, loss_attr(plan::Reduction::Mean));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("weights [4] must be [3]"), std::string::npos) << st.message();
}

TEST(LossErrors, LabelOutOfRange) {
  Buf x = Buf::rand({2, 3}), lab = Buf::ints({2}, {0, 3}), loss = Buf::zeros({});
  Status st = run(Opcode::SoftmaxCrossEntropyLoss, {&x, &lab}, {&loss}, loss_attr(plan::Reduction::Mean));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("label 3 out of range"), std::string::npos) << st.message();
}

// ---- reductions and layout -----------------------------------------------

// The elements of x [2, 3, 4] grouped by the output element a reduction over
// `axes` (every axis when empty; negative ones count from the end) puts them
// in, and that output's shape.
struct ReducedRows {
  Shape shape;
  std::vector<std::vector<double>> rows;
};
ReducedRows reduced_rows(const Buf& x, const std::vector<int64_t>& axes, bool keep) {
  const Shape s = {2, 3, 4};
  bool red[3] = {axes.empty(), axes.empty(), axes.empty()};
  for (int64_t a : axes) red[a < 0 ? a + 3 : a] = true;
  ReducedRows r;
  for (int k = 0; k < 3; ++k)
    if (!red[k])
      r.shape.push_back(s[size_t(k)]);
    else if (keep)
      r.shape.push_back(1);
  r.rows.resize(size_t(numel(r.shape)));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        int64_t o = 0;
        if (!red[0]) o = o * 2 + i;
        if (!red[1]) o = o * 3 + j;
        if (!red[2]) o = o * 4 + k;
        r.rows[size_t(o)].push_back(x.f[size_t((i * 3 + j) * 4 + k)]);
      }
  return r;
}

TEST(Reduce, AxesAndKeepdims) {
  const Shape s = {2, 3, 4};
  Buf x = Buf::rand(s);
  const std::vector<std::vector<int64_t>> cases = {{}, {0}, {1}, {-1}, {0, 2}, {0, 1, 2}};
  for (const auto& axes : cases)
    for (bool keep : {false, true})
      for (bool mean : {false, true}) {
        const ReducedRows r = reduced_rows(x, axes, keep);
        std::vector<float> want;
        for (const auto& row : r.rows) {
          const double sum = std::accumulate(row.begin(), row.end(), 0.0);
          want.push_back(float(mean ? sum / double(row.size()) : sum));
        }
        Buf y = Buf::zeros(r.shape);
        ASSERT_TRUE(run(mean ? Opcode::ReduceMean : Opcode::ReduceSum, {&x}, {&y},
                        [&](flatbuffers::FlatBufferBuilder& b) {
                          return std::make_pair(plan::Attrs::ReduceAttrs,
                                                plan::CreateReduceAttrsDirect(b, &axes, keep).Union());
                        })
                        .ok());
        expect_near(y.f, want);
      }
}

// The reductions of zero/reduce_ops.h beyond the sum and the mean, against
// std:: loops over each output's elements; ties and a NaN included.
TEST(Reduce, MaxMinProdL2) {
  const Shape s = {2, 3, 4};
  Buf x = Buf::rand(s, -2.f, 2.f, 7);
  x.f[5] = x.f[6];    // a tie along axis 2
  x.f[13] = x.f[17];  // and along axis 1
  x.f[20] = 0.f;      // a zero in a product
  const std::vector<std::pair<Opcode, std::function<double(const std::vector<double>&)>>> ops = {
      {Opcode::ReduceMax, [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }},
      {Opcode::ReduceMin, [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }},
      {Opcode::ReduceProd,
       [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 1.0, std::multiplies<>()); }},
      {Opcode::ReduceL2,
       [](const std::vector<double>& v) { return std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0)); }}};
  const std::vector<std::vector<int64_t>> cases = {{}, {0}, {1}, {-1}, {0, 2}, {1, 2}};
  for (const auto& [op, f] : ops)
    for (const auto& axes : cases)
      for (bool keep : {false, true}) {
        const ReducedRows r = reduced_rows(x, axes, keep);
        std::vector<float> want;
        for (const auto& row : r.rows) want.push_back(float(f(row)));
        Buf y = Buf::zeros(r.shape);
        ASSERT_TRUE(run(op, {&x}, {&y}, [&](flatbuffers::FlatBufferBuilder& b) {
                      return std::make_pair(plan::Attrs::ReduceAttrs,
                                            plan::CreateReduceAttrsDirect(b, &axes, keep).Union());
                    }).ok());
        expect_near(y.f, want);
      }
  // NaN wins a maximum and a minimum, wherever it is.
  for (Opcode op : {Opcode::ReduceMax, Opcode::ReduceMin}) {
    Buf v = Buf::rand({2, 3}), y = Buf::zeros({2});
    v.f[1] = NAN;
    v.f[5] = NAN;
    const std::vector<int64_t> axes = {1};
    ASSERT_TRUE(run(op, {&v}, {&y}, [&](flatbuffers::FlatBufferBuilder& b) {
                  return std::make_pair(plan::Attrs::ReduceAttrs, plan::CreateReduceAttrsDirect(b, &axes).Union());
                }).ok());
    EXPECT_TRUE(std::isnan(y.f[0]) && std::isnan(y.f[1]));
  }
}

AttrFn arg_reduce_attr(int64_t axis, bool last) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::ArgReduceAttrs, plan::CreateArgReduceAttrs(b, axis, last).Union());
  };
}

// ArgMax/ArgMin against a scan of each row, with ties (first or last index).
TEST(ArgReduce, AxesTiesAndLastIndex) {
  const Shape s = {2, 3, 4};
  Buf x = Buf::rand_ints(s, 0, 3, 5);  // small integers: many ties
  for (size_t k = 0; k < x.i.size(); ++k) x.f.push_back(float(x.i[k]));
  x = Buf{DType::F32, s, x.f, {}};
  for (bool max : {true, false})
    for (int64_t axis : {0, 1, 2, -1})
      for (bool last : {false, true}) {
        const int ax = int(axis < 0 ? axis + 3 : axis);
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < ax; ++k) outer *= s[size_t(k)];
        for (int k = ax + 1; k < 3; ++k) inner *= s[size_t(k)];
        const int64_t n = s[size_t(ax)];
        std::vector<int64_t> want;
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            std::vector<float> row;
            for (int64_t k = 0; k < n; ++k) row.push_back(x.f[size_t((o * n + k) * inner + i)]);
            const float best =
                max ? *std::max_element(row.begin(), row.end()) : *std::min_element(row.begin(), row.end());
            auto first = std::find(row.begin(), row.end(), best);
            auto final = std::find(row.rbegin(), row.rend(), best);
            want.push_back(last ? int64_t(row.rend() - final) - 1 : int64_t(first - row.begin()));
          }
        Buf y = Buf::ints({outer, inner});
        ASSERT_TRUE(run(max ? Opcode::ArgMax : Opcode::ArgMin, {&x}, {&y}, arg_reduce_attr(axis, last)).ok());
        EXPECT_EQ(y.i, want) << "max " << max << " axis " << axis << " last " << last;
      }
  Buf bad = Buf::zeros({2, 3});
  Status st = run(Opcode::ArgMax, {&x}, {&bad}, arg_reduce_attr(0, false));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("y must be I64"), std::string::npos) << st.message();
}

AttrFn cumsum_attr(int64_t axis, bool exclusive, bool reverse) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::CumSumAttrs, plan::CreateCumSumAttrs(b, axis, exclusive, reverse).Union());
  };
}

// CumSum, F32 and I64, every axis and direction, against prefix sums of
// each row; also in place.
TEST(CumSum, AxesExclusiveReverse) {
  const Shape s = {2, 3, 4};
  for (bool ints : {false, true})
    for (int64_t axis : {0, 1, 2, -2})
      for (bool exclusive : {false, true})
        for (bool reverse : {false, true}) {
          const int ax = int(axis < 0 ? axis + 3 : axis);
          int64_t outer = 1, inner = 1;
          for (int k = 0; k < ax; ++k) outer *= s[size_t(k)];
          for (int k = ax + 1; k < 3; ++k) inner *= s[size_t(k)];
          const int64_t n = s[size_t(ax)];
          Buf x = ints ? Buf::rand_ints(s, -5, 5, 3) : Buf::rand(s, -1.f, 1.f, 3);
          std::vector<double> want(size_t(numel(s)));
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i)
              for (int64_t k = 0; k < n; ++k) {
                double sum = 0;
                for (int64_t j = 0; j < n; ++j) {
                  const bool before = reverse ? j > k : j < k;
                  if (before || (j == k && !exclusive))
                    sum += ints ? double(x.i[size_t((o * n + j) * inner + i)]) : x.f[size_t((o * n + j) * inner + i)];
                }
                want[size_t((o * n + k) * inner + i)] = sum;
              }
          for (bool in_place : {false, true}) {
            Buf y = ints ? Buf::ints(s) : Buf::zeros(s), xin = x;
            Buf* out = in_place ? &xin : &y;
            ASSERT_TRUE(run(Opcode::CumSum, {&xin}, {out}, cumsum_attr(axis, exclusive, reverse)).ok());
            for (size_t k = 0; k < want.size(); ++k)
              if (ints)
                ASSERT_EQ(out->i[k], int64_t(want[k])) << "at " << k;
              else
                ASSERT_NEAR(out->f[k], want[k], 1e-5) << "at " << k;
          }
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

// The scheduled rate and the gradient scale replace lr and scale the gradient,
// here against torch.optim.SGD on the clipped gradient.
TEST(Optimizer, ScheduledRateAndGradientScale) {
  const float mom = 0.9f, wd = 0.01f;
  Buf p = Buf::rand({6}, -1, 1, 3), buf = Buf::zeros({6}), rate = Buf{DType::F32, {}, {0.05f}, {}};
  Buf scale = Buf{DType::F32, {}, {0.25f}, {}};
  std::vector<float> rp = p.f, rbuf(6);
  auto attrs = [&](bool lr, bool grad_scale) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::SgdAttrs, plan::CreateSgdAttrs(b, 9.f, mom, wd, lr, grad_scale).Union());
    };
  };
  for (int step = 0; step < 3; ++step) {
    Buf g = Buf::rand({6}, -1, 1, unsigned(30 + step));
    ASSERT_TRUE(run(Opcode::SgdUpdate, {&p, &g, &buf, &rate, &scale}, {}, attrs(true, true)).ok());
    for (size_t k = 0; k < 6; ++k) {
      float d = g.f[k] * 0.25f + wd * rp[k];
      rbuf[k] = step == 0 ? d : mom * rbuf[k] + d;
      rp[k] -= 0.05f * rbuf[k];
    }
    expect_near(p.f, rp, 1e-6f);
  }
  // The flags announce exactly the inputs that follow, each an F32 scalar.
  Buf g = Buf::rand({6}, -1, 1, 40), i = Buf::ints({}, {1}), wide = Buf::zeros({2});
  EXPECT_FALSE(run(Opcode::SgdUpdate, {&p, &g, &buf, &rate}, {}, attrs(true, true)).ok());
  EXPECT_FALSE(run(Opcode::SgdUpdate, {&p, &g, &buf, &rate, &scale}, {}, attrs(true, false)).ok());
  EXPECT_FALSE(run(Opcode::SgdUpdate, {&p, &g, &buf, &i}, {}, attrs(true, false)).ok());
  EXPECT_FALSE(run(Opcode::SgdUpdate, {&p, &g, &buf, &wide}, {}, attrs(false, true)).ok());
}

TEST(Schedule, RatesAndErrors) {
  auto schedule = [](plan::LrSchedule kind, int64_t warmup, int64_t total, float min_ratio) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ScheduleAttrs,
                            plan::CreateScheduleAttrs(b, kind, 0.1f, warmup, total, min_ratio).Union());
    };
  };
  auto rate_at = [&](AttrFn attrs, int64_t s) {
    Buf step = Buf::ints({}, {s}), lr = Buf::zeros({});
    EXPECT_TRUE(run(Opcode::LearningRate, {&step}, {&lr}, attrs).ok());
    return lr.f[0];
  };
  // Warmup from 0, then the decay; after total_steps the end value stays.
  const AttrFn linear = schedule(plan::LrSchedule::Linear, 2, 6, 0.f);
  const std::vector<float> want = {0.f, 0.05f, 0.1f, 0.075f, 0.05f, 0.025f, 0.f, 0.f};
  for (int64_t s = 0; s < 8; ++s) EXPECT_NEAR(rate_at(linear, s), want[size_t(s)], 1e-7f) << "step " << s;
  const AttrFn cosine = schedule(plan::LrSchedule::Cosine, 0, 4, 0.5f);
  EXPECT_NEAR(rate_at(cosine, 2), 0.1f * (0.5f + 0.5f * 0.5f), 1e-7f);
  EXPECT_NEAR(rate_at(cosine, 100), 0.05f, 1e-7f);
  EXPECT_NEAR(rate_at(schedule(plan::LrSchedule::Constant, 4, 0, 0.f), 1000), 0.1f, 1e-7f);
  // Rejected at prepare: warmup past the end, no end, a ratio outside [0, 1].
  Buf step = Buf::ints({}, {0}), lr = Buf::zeros({});
  EXPECT_FALSE(run(Opcode::LearningRate, {&step}, {&lr}, schedule(plan::LrSchedule::Cosine, 5, 4, 0.f)).ok());
  EXPECT_FALSE(run(Opcode::LearningRate, {&step}, {&lr}, schedule(plan::LrSchedule::Linear, 0, 0, 0.f)).ok());
  EXPECT_FALSE(run(Opcode::LearningRate, {&step}, {&lr}, schedule(plan::LrSchedule::Linear, 0, 4, 2.f)).ok());
}

// y = x / (1 - ratio) where dropout_keeps, else 0; the gradient applies the
// same mask; another step or stream draws another.
TEST(Dropout, MaskFromTheKey) {
  auto attrs = [](float ratio, int64_t stream) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::DropoutAttrs, plan::CreateDropoutAttrs(b, ratio, stream).Union());
    };
  };
  Buf x = Buf::rand({4000}, 1, 2, 5), step = Buf::ints({}, {3}), y = Buf::zeros({4000}), dx = Buf::zeros({4000});
  ASSERT_TRUE(run(Opcode::Dropout, {&x, &step}, {&y}, attrs(0.25f, 1)).ok());
  ASSERT_TRUE(run(Opcode::DropoutGrad, {&x, &step}, {&dx}, attrs(0.25f, 1)).ok());
  const uint64_t key = training::dropout_key(0, 3, 0, 0, 1);
  int64_t dropped = 0;
  for (size_t i = 0; i < x.f.size(); ++i) {
    const bool keep = training::dropout_keeps(key, i, 0.25f);
    EXPECT_EQ(y.f[i], keep ? x.f[i] * (1.f / 0.75f) : 0.f) << i;
    dropped += !keep;
  }
  EXPECT_EQ(dx.f, y.f);
  EXPECT_NEAR(double(dropped) / 4000, 0.25, 0.035);  // 5 sigma
  Buf other = Buf::zeros({4000});
  ASSERT_TRUE(run(Opcode::Dropout, {&x, &step}, {&other}, attrs(0.25f, 2)).ok());
  EXPECT_NE(other.f, y.f);
  EXPECT_FALSE(run(Opcode::Dropout, {&x, &step}, {&y}, attrs(1.f, 1)).ok());
  EXPECT_FALSE(run(Opcode::Dropout, {&x, &x}, {&y}, attrs(0.5f, 1)).ok());
}

TEST(Clipping, SumSquaresAndCoefficient) {
  Buf x = Buf{DType::F32, {4}, {3.f, -4.f, 0.f, 12.f}, {}}, sum = Buf::zeros({});
  ASSERT_TRUE(run(Opcode::SumSquares, {&x}, {&sum}).ok());
  EXPECT_EQ(sum.f[0], 169.f);
  auto clip = [](float max_norm) {
    return [=](flatbuffers::FlatBufferBuilder& b) {
      return std::make_pair(plan::Attrs::ClipAttrs, plan::CreateClipAttrs(b, max_norm).Union());
    };
  };
  Buf coefficient = Buf::zeros({}), norm = Buf::zeros({});
  ASSERT_TRUE(run(Opcode::ClipCoefficient, {&sum}, {&coefficient, &norm}, clip(6.5f)).ok());
  EXPECT_EQ(norm.f[0], 13.f);
  EXPECT_NEAR(coefficient.f[0], 6.5 / (13 + 1e-6), 1e-7);  // torch.nn.utils.clip_grad_norm_
  ASSERT_TRUE(run(Opcode::ClipCoefficient, {&sum}, {&coefficient, &norm}, clip(20.f)).ok());
  EXPECT_EQ(coefficient.f[0], 1.f);
  EXPECT_FALSE(run(Opcode::ClipCoefficient, {&sum}, {&coefficient, &norm}, clip(0.f)).ok());
  EXPECT_FALSE(run(Opcode::SumSquares, {&x}, {&x}).ok());
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

// ---- Gather, Slice, Concat, Where, LayerNormalization ---------------------

// Only the load-time prepare of op (its operand checks).
Status validate(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs = nullptr) {
  return cpu_call(true, op, in, out, attrs);
}

AttrFn slice_attr(std::vector<int64_t> starts, std::vector<int64_t> steps) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::SliceAttrs, plan::CreateSliceAttrsDirect(b, &starts, &steps).Union());
  };
}

AttrFn layer_norm_attr(int64_t axis, float eps) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::LayerNormAttrs, plan::CreateLayerNormAttrs(b, axis, eps).Union());
  };
}

// Naive ONNX Gather on a data tensor viewed as [outer, n, inner].
std::vector<float> gather_ref(const std::vector<float>& data, int64_t outer, int64_t n, int64_t inner,
                              const std::vector<int64_t>& idx) {
  std::vector<float> y;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t q : idx)
      for (int64_t i = 0; i < inner; ++i) y.push_back(data[size_t((o * n + (q < 0 ? q + n : q)) * inner + i)]);
  return y;
}

TEST(Gather, Axis0NegativeIndices) {
  Buf data = Buf::rand({5, 3}), idx = Buf::ints({2, 2}, {0, -1, 3, -5}), y = Buf::zeros({2, 2, 3});
  ASSERT_TRUE(validate(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(0)).ok());
  Status st = run(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(0));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(y.f, gather_ref(data.f, 1, 5, 3, idx.i));
  // No attributes: ONNX's default axis 0.
  Buf y2 = Buf::zeros({2, 2, 3});
  ASSERT_TRUE(run(Opcode::Gather, {&data, &idx}, {&y2}).ok());
  EXPECT_EQ(y2.f, y.f);
}

TEST(Gather, Axis1AndI64Data) {
  Buf data = Buf::rand({2, 4, 3}), idx = Buf::ints({3}, {-1, 0, 2}), y = Buf::zeros({2, 3, 3});
  Status st = run(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(1));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(y.f, gather_ref(data.f, 2, 4, 3, idx.i));
  // Negative axis, I64 data, scalar indices (the axis disappears).
  std::vector<int64_t> vals(24);
  for (size_t k = 0; k < vals.size(); ++k) vals[k] = int64_t(k) * 7 - 50;
  Buf di = Buf::ints({2, 4, 3}, vals), one = Buf::ints({}, {-2}), yi = Buf::ints({2, 4}, std::vector<int64_t>(8));
  st = run(Opcode::Gather, {&di, &one}, {&yi}, axis_attr(-1));
  ASSERT_TRUE(st.ok()) << st.message();
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(yi.i[size_t(r)], vals[size_t(r * 3 + 1)]);
}

TEST(Gather, Errors) {
  Buf data = Buf::rand({5, 3}), idx = Buf::ints({2}, {1, 5}), y = Buf::zeros({2, 3});
  expect_error(run(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(0)), "index 5 out of range [-5, 5)");
  // Bad data a step reads, not a bad plan.
  EXPECT_EQ(run(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(0)).code(), StatusCode::kOutOfRange);
  idx.i = {1, -6};
  expect_error(run(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(0)), "index -6 out of range");
  Buf bad = Buf::zeros({2, 4});
  expect_error(validate(Opcode::Gather, {&data, &idx}, {&bad}, axis_attr(0)), "does not match gathering");
  expect_error(validate(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(2)), "axis 2 out of range");
  EXPECT_EQ(validate(Opcode::Gather, {&data, &idx}, {&y}, axis_attr(2)).code(), StatusCode::kInvalidArgument);
  Buf fidx = Buf::zeros({2});
  expect_error(validate(Opcode::Gather, {&data, &fidx}, {&y}, axis_attr(0)), "indices must be I64");
}

TEST(GatherGrad, RepeatedIndicesAccumulate) {
  // Axis 0: rows 1 (three times, once as -3) and 0.
  Buf dy = Buf::rand({4, 3}), idx = Buf::ints({4}, {1, 1, -3, 0}), dd = Buf::rand({4, 3});
  ASSERT_TRUE(validate(Opcode::GatherGrad, {&dy, &idx}, {&dd}, axis_attr(0)).ok());
  Status st = run(Opcode::GatherGrad, {&dy, &idx}, {&dd}, axis_attr(0));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<float> want(12, 0.f);
  for (int64_t k = 0; k < 4; ++k) {
    const int64_t row = idx.i[size_t(k)] < 0 ? idx.i[size_t(k)] + 4 : idx.i[size_t(k)];
    for (int64_t i = 0; i < 3; ++i) want[size_t(row * 3 + i)] += dy.f[size_t(k * 3 + i)];
  }
  expect_near(dd.f, want);
  // Axis 1 with 2-D indices: ddata [2, 5], indices [2, 2], dy [2, 2, 2].
  Buf dy2 = Buf::rand({2, 2, 2}, -1, 1, 5), idx2 = Buf::ints({2, 2}, {0, 4, -1, 4}), dd2 = Buf::rand({2, 5});
  st = run(Opcode::GatherGrad, {&dy2, &idx2}, {&dd2}, axis_attr(1));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<float> want2(10, 0.f);
  for (int64_t o = 0; o < 2; ++o)
    for (int64_t q = 0; q < 4; ++q) {
      const int64_t c = (idx2.i[size_t(q)] + 5) % 5;
      want2[size_t(o * 5 + c)] += dy2.f[size_t(o * 4 + q)];
    }
  expect_near(dd2.f, want2);
  EXPECT_EQ(dd2.f[1], 0.f);
  idx2.i[0] = 5;
  expect_error(run(Opcode::GatherGrad, {&dy2, &idx2}, {&dd2}, axis_attr(1)), "index 5 out of range");
}

// Naive strided slice of a row-major x with shape xs.
std::vector<float> slice_ref(const std::vector<float>& x, const Shape& xs, const Shape& ys, const Shape& starts,
                             const Shape& steps) {
  std::vector<float> y;
  for (int64_t o = 0; o < numel(ys); ++o) {
    int64_t rem = o, off = 0, stride = 1;
    std::vector<int64_t> idx(ys.size());
    for (int d = int(ys.size()) - 1; d >= 0; --d) {
      idx[size_t(d)] = rem % ys[size_t(d)];
      rem /= ys[size_t(d)];
    }
    for (int d = int(ys.size()) - 1; d >= 0; --d) {
      off += (starts[size_t(d)] + idx[size_t(d)] * steps[size_t(d)]) * stride;
      stride *= xs[size_t(d)];
    }
    y.push_back(x[size_t(off)]);
  }
  return y;
}

TEST(Slice, StepsAboveOneAndNegative) {
  const Shape xs = {5, 6, 4}, ys = {2, 2, 3}, starts = {1, 0, 3}, steps = {2, 3, -1};
  Buf x = Buf::rand(xs), y = Buf::zeros(ys);
  ASSERT_TRUE(validate(Opcode::Slice, {&x}, {&y}, slice_attr(starts, steps)).ok());
  Status st = run(Opcode::Slice, {&x}, {&y}, slice_attr(starts, steps));
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(y.f, slice_ref(x.f, xs, ys, starts, steps));
  // Plain positive steps > 1 on every dimension.
  const Shape ys2 = {2, 3, 2}, starts2 = {0, 1, 1}, steps2 = {3, 2, 2};
  Buf y2 = Buf::zeros(ys2);
  ASSERT_TRUE(run(Opcode::Slice, {&x}, {&y2}, slice_attr(starts2, steps2)).ok());
  EXPECT_EQ(y2.f, slice_ref(x.f, xs, ys2, starts2, steps2));
}

TEST(Slice, Errors) {
  Buf x = Buf::rand({5, 4}), y = Buf::zeros({3, 4});
  // Row 1 + 2*2 = 5 is past the end.
  expect_error(validate(Opcode::Slice, {&x}, {&y}, slice_attr({1, 0}, {2, 1})), "dimension 0: start 1 step 2");
  expect_error(validate(Opcode::Slice, {&x}, {&y}, slice_attr({1, 0}, {-1, 1})), "dimension 0");
  expect_error(validate(Opcode::Slice, {&x}, {&y}, slice_attr({0, -1}, {1, 1})), "dimension 1");
  expect_error(validate(Opcode::Slice, {&x}, {&y}, slice_attr({0, 0}, {1, 0})), "step 0");
  expect_error(validate(Opcode::Slice, {&x}, {&y}, slice_attr({0}, {1})), "must give every dimension");
  expect_error(validate(Opcode::Slice, {&x}, {&y}), "missing SliceAttrs");
  expect_error(run(Opcode::Slice, {&x}, {&y}, slice_attr({1, 0}, {2, 1})), "leaves [0, 5)");
}

TEST(SliceGrad, WritesAtTheSlice) {
  const Shape xs = {5, 6, 4}, ys = {2, 2, 3}, starts = {1, 0, 3}, steps = {2, 3, -1};
  Buf dy = Buf::rand(ys), dx = Buf::rand(xs);
  ASSERT_TRUE(validate(Opcode::SliceGrad, {&dy}, {&dx}, slice_attr(starts, steps)).ok());
  Status st = run(Opcode::SliceGrad, {&dy}, {&dx}, slice_attr(starts, steps));
  ASSERT_TRUE(st.ok()) << st.message();
  // Slicing dx again gives dy back, and everything else is zero.
  EXPECT_EQ(slice_ref(dx.f, xs, ys, starts, steps), dy.f);
  int nonzero = 0;
  for (float v : dx.f) nonzero += v != 0.f;
  EXPECT_EQ(nonzero, 12);
  Buf bad = Buf::zeros({3, 6, 4});  // row 1 + 2 = 3 is past the end
  expect_error(validate(Opcode::SliceGrad, {&dy}, {&bad}, slice_attr(starts, steps)), "dimension 0");
}

TEST(Concat, ThreeInputsMiddleAxis) {
  Buf a = Buf::rand({2, 1, 3}, -1, 1, 1), b = Buf::rand({2, 4, 3}, -1, 1, 2), c = Buf::rand({2, 2, 3}, -1, 1, 3);
  Buf y = Buf::zeros({2, 7, 3});
  ASSERT_TRUE(validate(Opcode::Concat, {&a, &b, &c}, {&y}, axis_attr(1)).ok());
  Status st = run(Opcode::Concat, {&a, &b, &c}, {&y}, axis_attr(-2));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<float> want;
  for (int64_t o = 0; o < 2; ++o)
    for (const Buf* in : {&a, &b, &c}) {
      const int64_t n = in->shape[1] * 3;
      want.insert(want.end(), in->f.begin() + o * n, in->f.begin() + (o + 1) * n);
    }
  EXPECT_EQ(y.f, want);
  // I64 on axis 0.
  Buf i1 = Buf::ints({1, 2}, {1, 2}), i2 = Buf::ints({2, 2}, {3, 4, 5, 6}), yi = Buf::ints({3, 2}, std::vector<int64_t>(6));
  ASSERT_TRUE(run(Opcode::Concat, {&i1, &i2}, {&yi}, axis_attr(0)).ok());
  EXPECT_EQ(yi.i, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  Buf short_y = Buf::zeros({2, 6, 3});
  expect_error(validate(Opcode::Concat, {&a, &b, &c}, {&short_y}, axis_attr(1)), "inputs add up to 7");
  Buf wrong = Buf::zeros({3, 4, 3});
  expect_error(validate(Opcode::Concat, {&a, &wrong, &c}, {&y}, axis_attr(1)), "input 1 [3, 4, 3] does not fit");
}

TEST(Where, Broadcasting) {
  struct Case {
    Shape c, x, y, out;
  };
  for (const Case& k : {Case{{3, 1}, {1, 4}, {}, {3, 4}}, Case{{2, 1, 4}, {3, 1}, {4}, {2, 3, 4}},
                        Case{{2, 3}, {2, 3}, {2, 3}, {2, 3}}}) {
    std::vector<int64_t> cv(size_t(numel(k.c)));
    for (size_t i = 0; i < cv.size(); ++i) cv[i] = (i * 7 % 3) == 0 ? 0 : int64_t(i) - 2;
    Buf c = Buf::ints(k.c, cv), x = Buf::rand(k.x, -1, 1, 1), y = Buf::rand(k.y, -1, 1, 2), out = Buf::zeros(k.out);
    ASSERT_TRUE(validate(Opcode::Where, {&c, &x, &y}, {&out}).ok());
    Status st = run(Opcode::Where, {&c, &x, &y}, {&out});
    ASSERT_TRUE(st.ok()) << st.message();
    for (int64_t o = 0; o < numel(k.out); ++o) {
      const bool take_x = c.i[size_t(bcast_index(o, k.out, k.c))] != 0;
      const float want = take_x ? x.f[size_t(bcast_index(o, k.out, k.x))] : y.f[size_t(bcast_index(o, k.out, k.y))];
      EXPECT_EQ(out.f[size_t(o)], want) << "at " << o;
    }
  }
  Buf c = Buf::ints({3}, {1, 0, 1}), x = Buf::rand({3}), y = Buf::rand({2}), out = Buf::zeros({3});
  expect_error(validate(Opcode::Where, {&c, &x, &y}, {&out}), "cannot broadcast");
  Buf fc = Buf::zeros({3});
  expect_error(validate(Opcode::Where, {&fc, &x, &x}, {&out}), "cond must be I64");
  Buf big = Buf::zeros({2, 3});
  expect_error(validate(Opcode::Where, {&c, &x, &x}, {&big}), "not the broadcast shape");
}

// LayerNorm in double over rows of `inner` elements.
void layer_norm_ref(const std::vector<double>& x, const std::vector<double>& scale, const std::vector<double>& bias,
                    int64_t inner, double eps, std::vector<double>* y, std::vector<double>* mean,
                    std::vector<double>* inv) {
  const int64_t outer = int64_t(x.size()) / inner;
  y->assign(x.size(), 0);
  mean->assign(size_t(outer), 0);
  inv->assign(size_t(outer), 0);
  for (int64_t o = 0; o < outer; ++o) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < inner; ++i) m += x[size_t(o * inner + i)];
    m /= double(inner);
    for (int64_t i = 0; i < inner; ++i) v += (x[size_t(o * inner + i)] - m) * (x[size_t(o * inner + i)] - m);
    v /= double(inner);
    const double r = 1 / std::sqrt(v + eps);
    for (int64_t i = 0; i < inner; ++i)
      (*y)[size_t(o * inner + i)] = (x[size_t(o * inner + i)] - m) * r * scale[size_t(i)] + bias[size_t(i)];
    (*mean)[size_t(o)] = m;
    (*inv)[size_t(o)] = r;
  }
}

void check_layer_norm(int64_t axis, const Shape& shape, const Shape& stat_shape, const Shape& norm_shape) {
  Buf x = Buf::rand(shape, -2, 3, 11), scale = Buf::rand(norm_shape, 0.5, 1.5, 12), bias = Buf::rand(norm_shape, -1, 1, 13);
  for (size_t k = 0; k < x.f.size(); k += 3) x.f[k] += 100.f;  // an offset the two-pass variance must survive
  Buf y = Buf::zeros(shape), mean = Buf::zeros(stat_shape), inv = Buf::zeros(stat_shape);
  const float eps = 1e-5f;
  ASSERT_TRUE(validate(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y, &mean, &inv}, layer_norm_attr(axis, eps)).ok());
  Status st = run(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y, &mean, &inv}, layer_norm_attr(axis, eps));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<double> wy, wm, wi;
  layer_norm_ref(to_double(x.f), to_double(scale.f), to_double(bias.f), numel(norm_shape), eps, &wy, &wm, &wi);
  for (size_t k = 0; k < wy.size(); ++k) EXPECT_NEAR(y.f[k], wy[k], 1e-6 * (1 + std::fabs(wy[k]))) << k;
  for (size_t k = 0; k < wm.size(); ++k) {
    EXPECT_NEAR(mean.f[k], wm[k], 1e-6 * (1 + std::fabs(wm[k]))) << k;
    EXPECT_NEAR(inv.f[k], wi[k], 1e-6 * std::fabs(wi[k])) << k;
  }
  // Only y (statistics omitted), in place on x.
  ASSERT_TRUE(run(Opcode::LayerNormalization, {&x, &scale, &bias}, {&x}, layer_norm_attr(axis, eps)).ok());
  expect_near(x.f, y.f, 1e-6f);
}

TEST(LayerNorm, LastAxis) { check_layer_norm(-1, {2, 3, 5}, {2, 3, 1}, {5}); }
TEST(LayerNorm, Axis1OfRank3) { check_layer_norm(1, {2, 3, 5}, {2, 1, 1}, {3, 5}); }

TEST(LayerNorm, Errors) {
  Buf x = Buf::rand({2, 3, 5}), scale = Buf::rand({5}), bias = Buf::rand({5}), y = Buf::zeros({2, 3, 5});
  Buf mean = Buf::zeros({2, 1, 1});
  expect_error(validate(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y}, layer_norm_attr(1, 1e-5f)),
               "scale [5] must have 15 elements");
  expect_error(validate(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y, &mean}, layer_norm_attr(-1, 1e-5f)),
               "mean [2, 1, 1] must have 6 elements");
  expect_error(validate(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y}, layer_norm_attr(3, 1e-5f)),
               "axis 3 out of range");
  expect_error(validate(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y}), "missing LayerNormAttrs");
}

// LayerNormalizationGrad against central finite differences (in double) of
// L = sum(w * layer_norm(x, scale, bias)).
void check_layer_norm_grad(int64_t axis, const Shape& shape, const Shape& stat_shape, const Shape& norm_shape) {
  const float eps = 1e-5f;
  Buf x = Buf::rand(shape, -2, 2, 21), scale = Buf::rand(norm_shape, 0.5, 1.5, 22), bias = Buf::rand(norm_shape, -1, 1, 23);
  Buf w = Buf::rand(shape, -1, 1, 24);
  Buf y = Buf::zeros(shape), mean = Buf::zeros(stat_shape), inv = Buf::zeros(stat_shape);
  ASSERT_TRUE(run(Opcode::LayerNormalization, {&x, &scale, &bias}, {&y, &mean, &inv}, layer_norm_attr(axis, eps)).ok());
  Buf dx = Buf::zeros(shape), dscale = Buf::zeros(norm_shape), dbias = Buf::zeros(norm_shape);
  ASSERT_TRUE(validate(Opcode::LayerNormalizationGrad, {&w, &x, &scale, &mean, &inv}, {&dx, &dscale, &dbias},
                       layer_norm_attr(axis, eps)).ok());
  Status st = run(Opcode::LayerNormalizationGrad, {&w, &x, &scale, &mean, &inv}, {&dx, &dscale, &dbias},
                  layer_norm_attr(axis, eps));
  ASSERT_TRUE(st.ok()) << st.message();

  const int64_t inner = numel(norm_shape);
  std::vector<double> xd = to_double(x.f), sd = to_double(scale.f), bd = to_double(bias.f), wd = to_double(w.f);
  const auto loss = [&] {
    std::vector<double> yy, mm, ii;
    layer_norm_ref(xd, sd, bd, inner, eps, &yy, &mm, &ii);
    double l = 0;
    for (size_t k = 0; k < yy.size(); ++k) l += wd[k] * yy[k];
    return l;
  };
  expect_fd_gradient(dx.f, xd, loss, 1e-5, 2e-4, "dx");
  expect_fd_gradient(dscale.f, sd, loss, 1e-5, 2e-4, "dscale");
  expect_fd_gradient(dbias.f, bd, loss, 1e-5, 2e-4, "dbias");
  // dx only, in place on dy.
  ASSERT_TRUE(run(Opcode::LayerNormalizationGrad, {&w, &x, &scale, &mean, &inv}, {&w}, layer_norm_attr(axis, eps)).ok());
  expect_near(w.f, dx.f, 1e-6f);
}

TEST(LayerNormGrad, LastAxisFiniteDifferences) { check_layer_norm_grad(-1, {2, 3, 5}, {2, 3, 1}, {5}); }
TEST(LayerNormGrad, Axis1FiniteDifferences) { check_layer_norm_grad(1, {2, 3, 5}, {2, 1, 1}, {3, 5}); }

TEST(LayerNormGrad, Errors) {
  Buf dy = Buf::rand({2, 5}), x = Buf::rand({2, 5}), scale = Buf::rand({5}), mean = Buf::zeros({2, 1}),
      inv = Buf::zeros({3, 1}), dx = Buf::zeros({2, 5});
  expect_error(validate(Opcode::LayerNormalizationGrad, {&dy, &x, &scale, &mean, &inv}, {&dx},
                        layer_norm_attr(-1, 1e-5f)),
               "inv_std_dev [3, 1] must have 2 elements");
}

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------

std::vector<int64_t> unflatten(int64_t f, const Shape& s) {
  std::vector<int64_t> at(s.size());
  for (int d = int(s.size()) - 1; d >= 0; --d) {
    at[size_t(d)] = f % s[size_t(d)];
    f /= s[size_t(d)];
  }
  return at;
}

int64_t flatten(const std::vector<int64_t>& at, const Shape& s) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + at[d];
  return f;
}

// The data element index position p (of `ishape`) picks along `axis`.
int64_t elements_target(int64_t p, const Shape& ishape, const Shape& dshape, int axis, int64_t idx) {
  std::vector<int64_t> at = unflatten(p, ishape);
  const int64_t n = dshape[size_t(axis)];
  at[size_t(axis)] = idx < 0 ? idx + n : idx;
  return flatten(at, dshape);
}

// Indices of `shape` in [-n, n), every value of [-n, n) likely to appear.
Buf random_indices(const Shape& shape, int64_t n, unsigned seed) { return Buf::rand_ints(shape, -n, n - 1, seed); }

TEST(GatherElements, MatchesReferenceAlongEveryAxis) {
  const Shape dshape{3, 4, 5}, ishape{2, 3, 6};
  for (int axis : {0, 1, 2, -1}) {
    const int ax = axis < 0 ? axis + 3 : axis;
    Shape is = ishape;
    for (int d = 0; d < 3; ++d)
      if (d != ax) is[size_t(d)] = std::min(is[size_t(d)], dshape[size_t(d)]);
    Buf data = Buf::rand(dshape, -1, 1, 3), idx = random_indices(is, dshape[size_t(ax)], 4), y = Buf::zeros(is);
    Status st = run(Opcode::GatherElements, {&data, &idx}, {&y}, axis_attr(axis));
    ASSERT_TRUE(st.ok()) << st.message();
    for (int64_t p = 0; p < numel(is); ++p)
      ASSERT_EQ(y.f[size_t(p)], data.f[size_t(elements_target(p, is, dshape, ax, idx.i[size_t(p)]))]) << axis;
    // I64 data.
    Buf di = Buf::rand_ints(dshape, -100, 100, 5), yi = Buf::ints(is);
    ASSERT_TRUE(run(Opcode::GatherElements, {&di, &idx}, {&yi}, axis_attr(axis)).ok());
    for (int64_t p = 0; p < numel(is); ++p)
      ASSERT_EQ(yi.i[size_t(p)], di.i[size_t(elements_target(p, is, dshape, ax, idx.i[size_t(p)]))]);
  }
}

TEST(ScatterElements, NoneAddMulInIndexOrder) {
  const Shape dshape{3, 5}, ishape{3, 4};
  // Repeated indices within rows: none keeps the last, add and mul combine.
  Buf idx = Buf::ints(ishape, {0, 4, 0, -1, 2, 2, 2, 1, 3, -5, 0, 3});
  Buf data = Buf::rand(dshape, 0.5f, 2.f, 6), u = Buf::rand(ishape, 0.5f, 2.f, 7);
  for (Opcode op : {Opcode::ScatterElements, Opcode::ScatterElementsAdd, Opcode::ScatterElementsMul}) {
    std::vector<float> want = data.f;
    for (int64_t p = 0; p < numel(ishape); ++p) {
      float& d = want[size_t(elements_target(p, ishape, dshape, 1, idx.i[size_t(p)]))];
      const float v = u.f[size_t(p)];
      d = op == Opcode::ScatterElementsAdd ? d + v : op == Opcode::ScatterElementsMul ? d * v : v;
    }
    Buf y = Buf::zeros(dshape);
    Status st = run(op, {&data, &idx, &u}, {&y}, axis_attr(1));
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(y.f, want);
    // In place on data.
    Buf in_place = data;
    ASSERT_TRUE(run(op, {&in_place, &idx, &u}, {&in_place}, axis_attr(1)).ok());
    EXPECT_EQ(in_place.f, want);
  }
  // I64, axis 0.
  Buf di = Buf::ints({2, 2}, {1, 2, 3, 4}), ii = Buf::ints({1, 2}, {1, -2}), ui = Buf::ints({1, 2}, {10, 20}),
      yi = Buf::ints({2, 2});
  ASSERT_TRUE(run(Opcode::ScatterElementsAdd, {&di, &ii, &ui}, {&yi}, axis_attr(0)).ok());
  EXPECT_EQ(yi.i, (std::vector<int64_t>{1, 22, 13, 4}));
}

TEST(GatherElementsGrad, RepeatedIndicesAddUp) {
  const Shape dshape{4, 3}, ishape{5, 3};
  Buf idx = random_indices(ishape, 4, 8), dy = Buf::rand(ishape, -1, 1, 9), dd = Buf::rand(dshape);
  Status st = run(Opcode::GatherElementsGrad, {&dy, &idx}, {&dd}, axis_attr(0));
  ASSERT_TRUE(st.ok()) << st.message();
  std::vector<float> want(size_t(numel(dshape)), 0.f);
  for (int64_t p = 0; p < numel(ishape); ++p)
    want[size_t(elements_target(p, ishape, dshape, 0, idx.i[size_t(p)]))] += dy.f[size_t(p)];
  expect_near(dd.f, want, 1e-6f);
}

TEST(ScatterElementsGrad, ZeroWhereWritten) {
  const Shape dshape{2, 4}, ishape{2, 2};
  Buf idx = Buf::ints(ishape, {3, 3, -4, 1}), dy = Buf::rand(dshape), dd = Buf::zeros(dshape);
  ASSERT_TRUE(run(Opcode::ScatterElementsGrad, {&dy, &idx}, {&dd}, axis_attr(1)).ok());
  EXPECT_EQ(dd.f, (std::vector<float>{dy.f[0], dy.f[1], dy.f[2], 0.f, 0.f, 0.f, dy.f[6], dy.f[7]}));
  // In place on dy.
  ASSERT_TRUE(run(Opcode::ScatterElementsGrad, {&dy, &idx}, {&dy}, axis_attr(1)).ok());
  EXPECT_EQ(dy.f, dd.f);
}

TEST(GatherElements, Errors) {
  Buf data = Buf::rand({3, 4}), idx = Buf::ints({2, 2}, {0, 4, 1, 1}), y = Buf::zeros({2, 2}), u = Buf::rand({2, 2});
  expect_error(run(Opcode::GatherElements, {&data, &idx}, {&y}, axis_attr(1)), "index 4 out of range [-4, 4)");
  EXPECT_EQ(run(Opcode::GatherElements, {&data, &idx}, {&y}, axis_attr(1)).code(), StatusCode::kOutOfRange);
  Buf out = Buf::zeros({3, 4});
  idx.i = {0, 1, -4, -5};
  expect_error(run(Opcode::ScatterElements, {&data, &idx, &u}, {&out}, axis_attr(1)), "index -5 out of range [-4, 4)");
  expect_error(run(Opcode::GatherElementsGrad, {&u, &idx}, {&out}, axis_attr(1)), "index -5 out of range");
  expect_error(run(Opcode::ScatterElementsGrad, {&data, &idx}, {&out}, axis_attr(1)), "index -5 out of range");
  // Plan errors, at load.
  Buf big = Buf::ints({4, 2}, std::vector<int64_t>(8)), y42 = Buf::zeros({4, 2});
  expect_error(validate(Opcode::GatherElements, {&data, &big}, {&y42}, axis_attr(1)),
               "indices [4, 2] must have the rank of data [3, 4] and at most its sizes but along axis 1");
  EXPECT_TRUE(validate(Opcode::GatherElements, {&data, &big}, {&y42}, axis_attr(0)).ok());
  Buf flat = Buf::ints({4}, std::vector<int64_t>(4));
  expect_error(validate(Opcode::GatherElements, {&data, &flat}, {&y}, axis_attr(0)), "must have the rank of data");
  expect_error(validate(Opcode::GatherElements, {&data, &idx}, {&out}, axis_attr(0)),
               "indices and output shapes differ");
  expect_error(validate(Opcode::GatherElements, {&data, &idx}, {&y}, axis_attr(2)), "axis 2 out of range");
  Buf fidx = Buf::zeros({2, 2});
  expect_error(validate(Opcode::GatherElements, {&data, &fidx}, {&y}, axis_attr(0)), "indices must be I64");
  Buf iu = Buf::ints({2, 2});
  expect_error(validate(Opcode::ScatterElements, {&data, &idx, &iu}, {&out}, axis_attr(0)), "dtypes differ");
  expect_error(validate(Opcode::ScatterElements, {&data, &idx, &u}, {&y}, axis_attr(0)),
               "data and output shapes differ");
  expect_error(validate(Opcode::ScatterElements, {&data, &idx, &out}, {&out}, axis_attr(0)),
               "indices and updates shapes differ");
  expect_error(validate(Opcode::ScatterElements, {&data, &idx, &u}, {&u}, axis_attr(0)), "shapes differ");
}

// Naive GatherND/ScatterND: the data offset of tuple t's slice.
int64_t nd_target(const std::vector<int64_t>& idx, int64_t t, int64_t k, const Shape& dshape) {
  int64_t off = 0;
  for (int64_t j = 0; j < int64_t(dshape.size()); ++j) {
    int64_t i = 0;
    if (j < k) {
      i = idx[size_t(t * k + j)];
      if (i < 0) i += dshape[size_t(j)];
    }
    off = off * dshape[size_t(j)] + i;
  }
  return off;
}

TEST(GatherND, SlicesOfEveryDepth) {
  const Shape dshape{3, 4, 2};
  for (int64_t k = 1; k <= 3; ++k) {
    Shape is{2, 3, k}, ys{2, 3};
    for (int64_t d = k; d < 3; ++d) ys.push_back(dshape[size_t(d)]);
    Buf idx = Buf::ints(is);
    std::mt19937 g{static_cast<unsigned>(k)};
    for (size_t e = 0; e < idx.i.size(); ++e) {
      const int64_t n = dshape[e % size_t(k)];
      idx.i[e] = std::uniform_int_distribution<int64_t>(-n, n - 1)(g);
    }
    Buf data = Buf::rand(dshape, -1, 1, 11), y = Buf::zeros(ys);
    Status st = run(Opcode::GatherND, {&data, &idx}, {&y});
    ASSERT_TRUE(st.ok()) << st.message();
    const int64_t slice = numel(dshape) / numel(Shape(dshape.begin(), dshape.begin() + k));
    for (int64_t t = 0; t < 6; ++t)
      for (int64_t e = 0; e < slice; ++e)
        ASSERT_EQ(y.f[size_t(t * slice + e)], data.f[size_t(nd_target(idx.i, t, k, dshape) + e)]) << k;
  }
}

TEST(ScatterND, NoneAddMulAndGradients) {
  const Shape dshape{4, 3};
  Buf idx = Buf::ints({3, 1}, {1, -1, 1}), u = Buf::rand({3, 3}, 0.5f, 2.f, 12),
      data = Buf::rand(dshape, 0.5f, 2.f, 13);
  for (Opcode op : {Opcode::ScatterND, Opcode::ScatterNDAdd, Opcode::ScatterNDMul}) {
    std::vector<float> want = data.f;
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t e = 0; e < 3; ++e) {
        float& d = want[size_t(nd_target(idx.i, t, 1, dshape) + e)];
        const float v = u.f[size_t(t * 3 + e)];
        d = op == Opcode::ScatterNDAdd ? d + v : op == Opcode::ScatterNDMul ? d * v : v;
      }
    Buf y = Buf::zeros(dshape);
    Status st = run(op, {&data, &idx, &u}, {&y});
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(y.f, want);
    Buf in_place = data;
    ASSERT_TRUE(run(op, {&in_place, &idx, &u}, {&in_place}).ok());
    EXPECT_EQ(in_place.f, want);
  }
  // GatherNDGrad: slices added up; ScatterNDGrad: dy zeroed at the slices.
  Buf dd = Buf::rand(dshape);
  ASSERT_TRUE(run(Opcode::GatherNDGrad, {&u, &idx}, {&dd}).ok());
  std::vector<float> want(12, 0.f);
  for (int64_t e = 0; e < 3; ++e) {
    want[size_t(3 + e)] = u.f[size_t(e)] + u.f[size_t(6 + e)];
    want[size_t(9 + e)] = u.f[size_t(3 + e)];
  }
  expect_near(dd.f, want, 1e-6f);
  Buf dy = Buf::rand(dshape), dx = Buf::zeros(dshape);
  ASSERT_TRUE(run(Opcode::ScatterNDGrad, {&dy, &idx}, {&dx}).ok());
  for (int64_t e = 0; e < 12; ++e) EXPECT_EQ(dx.f[size_t(e)], e / 3 == 1 || e / 3 == 3 ? 0.f : dy.f[size_t(e)]);
  // Element tuples (k = rank), I64.
  Buf di = Buf::ints({2, 2}, {1, 2, 3, 4}), ii = Buf::ints({2, 2}, {0, 1, -1, 0}), ui = Buf::ints({2}, {7, 8}),
      yi = Buf::ints({2, 2});
  ASSERT_TRUE(run(Opcode::ScatterNDMul, {&di, &ii, &ui}, {&yi}).ok());
  EXPECT_EQ(yi.i, (std::vector<int64_t>{1, 14, 24, 4}));
}

TEST(ScatterND, Errors) {
  Buf data = Buf::rand({4, 3}), idx = Buf::ints({2, 2}, {0, 1, 3, 3}), u = Buf::rand({2}), y = Buf::zeros({4, 3});
  expect_error(run(Opcode::ScatterND, {&data, &idx, &u}, {&y}), "index 3 out of range [-3, 3)");
  EXPECT_EQ(run(Opcode::ScatterND, {&data, &idx, &u}, {&y}).code(), StatusCode::kOutOfRange);
  idx.i = {0, 1, -5, 0};
  Buf g = Buf::zeros({2});
  expect_error(run(Opcode::GatherND, {&data, &idx}, {&g}), "index -5 out of range [-4, 4)");
  expect_error(run(Opcode::GatherNDGrad, {&g, &idx}, {&y}), "index -5 out of range");
  expect_error(run(Opcode::ScatterNDGrad, {&data, &idx}, {&y}), "index -5 out of range");
  Buf deep = Buf::ints({2, 3}, std::vector<int64_t>(6));
  expect_error(validate(Opcode::GatherND, {&data, &deep}, {&g}),
               "the last dimension of indices [2, 3] must be in [1, rank");
  Buf g3 = Buf::zeros({2, 3});
  expect_error(validate(Opcode::GatherND, {&data, &idx}, {&g3}),
               "output [2, 3] must be indices.shape[:-1] + data.shape[k:]");
  expect_error(validate(Opcode::ScatterND, {&data, &idx, &g3}, {&y}), "updates [2, 3] must be");
  Buf small = Buf::zeros({3, 3});
  expect_error(validate(Opcode::ScatterND, {&data, &idx, &u}, {&small}), "data and output shapes differ");
}

AttrFn top_k_attr(int64_t axis, bool largest) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::TopKAttrs, plan::CreateTopKAttrs(b, axis, largest).Union());
  };
}

// TopK by a stable sort of each row (NaN above every number).
void top_k_ref(const Buf& x, int axis, int64_t k, bool largest, std::vector<float>* v, std::vector<int64_t>* ix) {
  const Shape& s = x.shape;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= s[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < s.size(); ++d) inner *= s[d];
  const int64_t n = s[size_t(axis)];
  v->assign(size_t(outer * k * inner), 0.f);
  ix->assign(v->size(), 0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      auto at = [&](int64_t j) { return x.f[size_t((o * n + j) * inner + i)]; };
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const float fa = at(a), fb = at(b);
        if (std::isnan(fa) || std::isnan(fb))
          return largest ? std::isnan(fa) && !std::isnan(fb) : !std::isnan(fa) && std::isnan(fb);
        return largest ? fa > fb : fa < fb;
      });
      for (int64_t j = 0; j < k; ++j) {
        (*v)[size_t((o * k + j) * inner + i)] = at(order[size_t(j)]);
        (*ix)[size_t((o * k + j) * inner + i)] = order[size_t(j)];
      }
    }
}

TEST(TopK, SortedWithTiesAndNaN) {
  Buf x = Buf::rand({3, 7, 2}, -1, 1, 14);
  for (size_t e = 0; e < x.f.size(); e += 5) x.f[e] = 0.25f;  // ties
  x.f[3] = std::nanf("");
  x.f[20] = std::nanf("");
  for (int axis : {0, 1, 2}) {
    for (bool largest : {true, false}) {
      const int64_t n = x.shape[size_t(axis)];
      for (int64_t k : {int64_t(1), n / 2 + 1, n}) {
        Shape ys = x.shape;
        ys[size_t(axis)] = k;
        Buf v = Buf::zeros(ys), ix = Buf::ints(ys);
        Status st = run(Opcode::TopK, {&x}, {&v, &ix}, top_k_attr(axis, largest));
        ASSERT_TRUE(st.ok()) << st.message();
        std::vector<float> wv;
        std::vector<int64_t> wi;
        top_k_ref(x, axis, k, largest, &wv, &wi);
        EXPECT_EQ(ix.i, wi) << axis << " " << largest << " " << k;
        for (size_t e = 0; e < wv.size(); ++e)
          EXPECT_TRUE(v.f[e] == wv[e] || (std::isnan(v.f[e]) && std::isnan(wv[e]))) << e;
      }
    }
  }
}

TEST(TopK, KInputAndErrors) {
  Buf x = Buf::rand({2, 5}), v = Buf::zeros({2, 3}), ix = Buf::ints({2, 3}), k = Buf::ints({1}, {3});
  ASSERT_TRUE(run(Opcode::TopK, {&x, &k}, {&v, &ix}, top_k_attr(-1, true)).ok());
  k.i = {2};
  expect_error(run(Opcode::TopK, {&x, &k}, {&v, &ix}, top_k_attr(-1, true)),
               "k = 2 differs from the outputs' 3 along the axis");
  EXPECT_EQ(run(Opcode::TopK, {&x, &k}, {&v, &ix}, top_k_attr(-1, true)).code(), StatusCode::kOutOfRange);
  Buf fk = Buf::zeros({1});
  expect_error(validate(Opcode::TopK, {&x, &fk}, {&v, &ix}, top_k_attr(1, true)), "k must be one I64 element");
  Buf v6 = Buf::zeros({2, 6}), i6 = Buf::ints({2, 6});
  expect_error(validate(Opcode::TopK, {&x}, {&v6, &i6}, top_k_attr(1, true)), "k = 6 must be in [1, 5]");
  Buf i2 = Buf::ints({2, 2});
  expect_error(validate(Opcode::TopK, {&x}, {&v, &i2}, top_k_attr(1, true)), "must be [2, 5] with k along axis 1");
  expect_error(validate(Opcode::TopK, {&x}, {&v, &ix}, top_k_attr(2, true)), "axis 2 out of range");
  expect_error(validate(Opcode::TopK, {&x}, {&v, &ix}), "missing TopKAttrs");
  expect_error(validate(Opcode::TopK, {&x}, {&v, &v}, top_k_attr(1, true)), "indices must be I64");
}

}  // namespace
}  // namespace zero
