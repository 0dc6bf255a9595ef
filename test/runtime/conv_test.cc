// Conv, MaxPool, AveragePool, BatchNormalization and their gradients on the
// CPU backend against naive double-precision references.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "backend.h"
#include "test_tensors.h"

namespace zero {
namespace {

using plan::Opcode;
using Vec = std::vector<int64_t>;

Status run(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs = nullptr) {
  return cpu_call(false, op, in, out, attrs);
}
Status validate(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs = nullptr) {
  return cpu_call(true, op, in, out, attrs);
}

// Validates, then runs; both must succeed.
void run_ok(Opcode op, std::vector<Buf*> in, std::vector<Buf*> out, AttrFn attrs) {
  Status st = validate(op, in, out, attrs);
  ASSERT_TRUE(st.ok()) << st.message();
  st = run(op, in, out, attrs);
  ASSERT_TRUE(st.ok()) << st.message();
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k)
    ASSERT_NEAR(got[k], want[k], tol * (1 + std::fabs(want[k]))) << what << " at " << k;
}

// ---- Conv ------------------------------------------------------------------

// x [N, C, S...] * w [M, C/group, k...] over r = 1 to 3 spatial dimensions.
struct ConvCase {
  Shape x, w;
  bool bias;
  Vec strides, pads, dilations;
  int64_t group;
  int rank() const { return int(x.size()) - 2; }
};

AttrFn conv_attr(const ConvCase& c) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::ConvAttrs,
                          plan::CreateConvAttrsDirect(b, &c.strides, &c.pads, &c.dilations, c.group).Union());
  };
}

Shape conv_out_shape(const ConvCase& c) {
  Shape y = {c.x[0], c.w[0]};
  const int r = c.rank();
  for (int i = 0; i < r; ++i)
    y.push_back((c.x[2 + i] + c.pads[i] + c.pads[r + i] - c.dilations[i] * (c.w[2 + i] - 1) - 1) / c.strides[i] + 1);
  return y;
}

// Row-major flat index of position `pos` in a box of sizes `dims`.
int64_t flat(const Vec& dims, const Vec& pos) {
  int64_t i = 0;
  for (size_t a = 0; a < dims.size(); ++a) i = i * dims[a] + pos[a];
  return i;
}

// Calls f(pos) for every position of a box of sizes `dims`, row-major.
template <class F>
void for_each_position(const Vec& dims, F f) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  Vec pos(dims.size(), 0);
  for (int64_t k = 0; k < total; ++k) {
    f(pos);
    for (int a = int(dims.size()) - 1; a >= 0 && ++pos[size_t(a)] == dims[size_t(a)]; --a) pos[size_t(a)] = 0;
  }
}

// Direct convolution loops in double: calls f(y_index, x_index, w_index) for
// every product x * w contributing to y (padding skipped).
template <class F>
void conv_loops(const ConvCase& c, F f) {
  const Shape y = conv_out_shape(c);
  const int r = c.rank();
  const int64_t C = c.x[1], M = c.w[0], cg = C / c.group, mg = M / c.group;
  const Vec xs(c.x.begin() + 2, c.x.end()), ks(c.w.begin() + 2, c.w.end()), ys(y.begin() + 2, y.end());
  for (int64_t n = 0; n < c.x[0]; ++n)
    for (int64_t m = 0; m < M; ++m)
      for_each_position(ys, [&](const Vec& o) {
        for (int64_t ci = 0; ci < cg; ++ci)
          for_each_position(ks, [&](const Vec& k) {
            Vec in(static_cast<size_t>(r), 0);
            for (int a = 0; a < r; ++a) {
              in[size_t(a)] = o[size_t(a)] * c.strides[a] - c.pads[a] + k[size_t(a)] * c.dilations[a];
              if (in[size_t(a)] < 0 || in[size_t(a)] >= xs[size_t(a)]) return;
            }
            const int64_t ch = (m / mg) * cg + ci;
            f((n * M + m) * numel(ys) + flat(ys, o), (n * C + ch) * numel(xs) + flat(xs, in),
              (m * cg + ci) * numel(ks) + flat(ks, k));
          });
      });
}

void check_conv(const ConvCase& c) {
  const Shape ys = conv_out_shape(c);
  Buf x = Buf::rand(c.x, -1, 1, 1), w = Buf::rand(c.w, -1, 1, 2), b = Buf::rand({c.w[0]}, -1, 1, 3);
  Buf dy = Buf::rand(ys, -1, 1, 4);
  std::vector<double> wy(size_t(numel(ys)), 0.0), wdx(x.f.size(), 0.0), wdw(w.f.size(), 0.0);
  conv_loops(c, [&](int64_t yi, int64_t xi, int64_t wi) {
    wy[size_t(yi)] += double(x.f[size_t(xi)]) * w.f[size_t(wi)];
    wdx[size_t(xi)] += double(dy.f[size_t(yi)]) * w.f[size_t(wi)];
    wdw[size_t(wi)] += double(dy.f[size_t(yi)]) * x.f[size_t(xi)];
  });
  const int64_t P = numel(Vec(ys.begin() + 2, ys.end()));
  if (c.bias)
    for (size_t k = 0; k < wy.size(); ++k) wy[k] += b.f[size_t(int64_t(k) / P % ys[1])];
  // Default chunking, one image per chunk, and two images per chunk.
  const int64_t K = numel(Vec(c.w.begin() + 1, c.w.end()));
  for (int64_t limit : {int64_t(1) << 24, int64_t(1), 2 * K * P}) {
    SCOPED_TRACE("scratch limit " + std::to_string(limit));
    const int64_t old = set_cpu_conv_scratch_limit(limit);
    Buf y = Buf::rand(ys, 5, 6, 9), dx = Buf::rand(c.x, 5, 6, 9), dw = Buf::rand(c.w, 5, 6, 9);  // garbage
    std::vector<Buf*> in = {&x, &w};
    if (c.bias) in.push_back(&b);
    run_ok(Opcode::Conv, in, {&y}, conv_attr(c));
    run_ok(Opcode::ConvGradInput, {&dy, &w}, {&dx}, conv_attr(c));
    run_ok(Opcode::ConvGradWeight, {&dy, &x}, {&dw}, conv_attr(c));
    set_cpu_conv_scratch_limit(old);
    expect_close(y.f, wy, 1e-5, "y");
    expect_close(dx.f, wdx, 1e-5, "dx");
    expect_close(dw.f, wdw, 1e-5, "dw");
  }
}

class ConvTest : public ::testing::TestWithParam<ConvCase> {};
TEST_P(ConvTest, ForwardAndGradsMatchDirectLoops) { check_conv(GetParam()); }

INSTANTIATE_TEST_SUITE_P(
    Cases, ConvTest,
    ::testing::Values(
        ConvCase{{2, 3, 5, 5}, {4, 3, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},     // 3x3 same
        ConvCase{{3, 3, 7, 10}, {5, 3, 3, 2}, false, {2, 3}, {1, 0, 2, 1}, {1, 1}, 1},   // strides, asym pads
        ConvCase{{3, 2, 9, 8}, {3, 2, 3, 3}, true, {1, 1}, {2, 2, 2, 2}, {2, 2}, 1},     // dilation 2
        ConvCase{{2, 2, 11, 9}, {2, 2, 2, 3}, false, {2, 1}, {0, 1, 1, 0}, {3, 2}, 1},   // mixed
        ConvCase{{3, 4, 6, 5}, {6, 2, 3, 3}, true, {2, 2}, {1, 1, 1, 1}, {1, 1}, 2},     // group 2
        ConvCase{{2, 4, 5, 7}, {8, 1, 3, 3}, false, {1, 1}, {1, 1, 1, 1}, {1, 1}, 4},    // depthwise x2
        ConvCase{{2, 3, 16, 16}, {8, 3, 7, 7}, false, {2, 2}, {3, 3, 3, 3}, {1, 1}, 1},  // ResNet stem
        ConvCase{{3, 8, 8, 8}, {16, 8, 1, 1}, false, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1},   // 1x1 stride 2
        ConvCase{{3, 8, 4, 4}, {8, 8, 3, 3}, true, {2, 2}, {1, 1, 1, 1}, {1, 1}, 1},     // 4x4 -> 2x2
        ConvCase{{1, 3, 6, 6}, {4, 3, 3, 3}, true, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1},     // one image
        ConvCase{{2, 2, 3, 3}, {3, 2, 5, 5}, true, {1, 1}, {2, 2, 2, 2}, {1, 1}, 1},     // kernel > input
        // 1-D (NCL)
        ConvCase{{3, 4, 13}, {6, 2, 3}, true, {2}, {1, 2}, {2}, 2},  // stride, asym pads, dilation, groups
        ConvCase{{2, 3, 9}, {3, 1, 4}, false, {1}, {0, 0}, {1}, 3},  // depthwise
        ConvCase{{2, 2, 5}, {4, 2, 1}, true, {3}, {0, 0}, {1}, 1},   // 1x1 stride 3
        // No window reads x's last position (a ConvTranspose's output_padding).
        ConvCase{{2, 2, 10}, {3, 2, 3}, false, {3}, {0, 0}, {1}, 1},
        // 3-D (NCDHW)
        ConvCase{{2, 3, 5, 6, 4}, {4, 3, 3, 2, 3}, true, {1, 2, 1}, {1, 0, 1, 1, 1, 0}, {1, 1, 2}, 1},
        ConvCase{{2, 4, 4, 5, 5}, {4, 2, 2, 3, 2}, false, {2, 1, 2}, {0, 1, 1, 1, 0, 0}, {2, 1, 1}, 2},
        ConvCase{{1, 2, 3, 3, 3}, {2, 1, 3, 3, 3}, true, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, {1, 1, 1}, 2}));

TEST(Conv, DefaultAttributes) {
  // No ConvAttrs: strides 1, no padding, dilation 1, group 1.
  ConvCase c{{2, 3, 5, 4}, {2, 3, 2, 2}, false, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1};
  Buf x = Buf::rand(c.x, -1, 1, 1), w = Buf::rand(c.w, -1, 1, 2), y = Buf::zeros(conv_out_shape(c));
  run_ok(Opcode::Conv, {&x, &w}, {&y}, nullptr);
  std::vector<double> want(y.f.size(), 0.0);
  conv_loops(c, [&](int64_t yi, int64_t xi, int64_t wi) { want[size_t(yi)] += double(x.f[size_t(xi)]) * w.f[size_t(wi)]; });
  expect_close(y.f, want, 1e-5, "y");
}

TEST(Conv, ValidationErrors) {
  ConvCase c{{2, 4, 8, 8}, {6, 2, 3, 3}, false, {2, 2}, {1, 1, 1, 1}, {1, 1}, 2};
  Buf x = Buf::rand(c.x), w = Buf::rand(c.w), y = Buf::zeros({2, 6, 4, 4}), b = Buf::zeros({5});
  EXPECT_TRUE(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(c)).ok());
  Buf bad_y = Buf::zeros({2, 6, 5, 5});
  expect_error(validate(Opcode::Conv, {&x, &w}, {&bad_y}, conv_attr(c)),
               "y [2, 6, 5, 5] does not match the convolution of x [2, 4, 8, 8] and w [6, 2, 3, 3] (strides [2, 2], "
               "pads [1, 1, 1, 1], dilations [1, 1], group 2): expected [2, 6, 4, 4]");
  expect_error(validate(Opcode::Conv, {&x, &w, &b}, {&y}, conv_attr(c)), "b [5] must be [6]");
  ConvCase g1 = c;
  g1.group = 1;
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(g1)), "w dimension 1 must be C/group = 4");
  ConvCase g3 = c;
  g3.group = 3;
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(g3)), "group 3 does not divide the channels");
  ConvCase s3 = c;
  s3.strides = {2, 2, 2};
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(s3)), "strides must have 2 entries");
  ConvCase s0 = c;
  s0.strides = {0, 1};
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(s0)), "strides [0, 1] must be >= 1");
  ConvCase neg = c;
  neg.pads = {1, -1, 1, 1};
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(neg)), "pads [1, -1, 1, 1] must be >= 0");
  ConvCase big = c;
  big.pads = {0, 0, 0, 0};
  big.dilations = {5, 1};
  expect_error(validate(Opcode::Conv, {&x, &w}, {&y}, conv_attr(big)), "dilated kernel is larger than the padded input");
  Buf x2 = Buf::rand({2, 4});
  expect_error(validate(Opcode::Conv, {&x2, &w}, {&y}, conv_attr(c)),
               "x must be 3-D to 5-D (NCL, NCHW or NCDHW), got [2, 4]");
  Buf x3 = Buf::rand({2, 4, 8});
  expect_error(validate(Opcode::Conv, {&x3, &w}, {&y}, conv_attr(c)),
               "w [6, 2, 3, 3] must have the rank of x [2, 4, 8]");
  // 1-D: lists of the input's rank, named as the attribute spells them.
  Buf x1 = Buf::rand({2, 4, 8}), w1 = Buf::rand({6, 2, 3}), y1 = Buf::zeros({2, 6, 4});
  ConvCase c1{{2, 4, 8}, {6, 2, 3}, false, {2}, {1, 2}, {1}, 2};
  expect_error(validate(Opcode::Conv, {&x1, &w1}, {&y1}, conv_attr(c1)),
               "y [2, 6, 4] does not match the convolution of x [2, 4, 8] and w [6, 2, 3] (strides [2], pads [1, 2], "
               "dilations [1], group 2): expected [2, 6, 5]");
  expect_error(validate(Opcode::Conv, {&x1, &w1}, {&y1}, conv_attr(c)), "strides must have 1 entries (1-D), got 2");
  // Gradients name their operands.
  Buf dx = Buf::zeros(c.x), dw = Buf::zeros(c.w);
  EXPECT_TRUE(validate(Opcode::ConvGradInput, {&y, &w}, {&dx}, conv_attr(c)).ok());
  EXPECT_TRUE(validate(Opcode::ConvGradWeight, {&y, &x}, {&dw}, conv_attr(c)).ok());
  expect_error(validate(Opcode::ConvGradInput, {&bad_y, &w}, {&dx}, conv_attr(c)), "dy [2, 6, 5, 5] does not match");
  Buf bad_dw = Buf::zeros({6, 4, 3, 3});
  expect_error(validate(Opcode::ConvGradWeight, {&y, &x}, {&bad_dw}, conv_attr(c)), "dw dimension 1 must be C/group");
  // Not in place.
  Buf sq = Buf::rand({1, 2, 3, 3}), k1 = Buf::rand({2, 2, 1, 1});
  expect_error(validate(Opcode::Conv, {&sq, &k1}, {&sq}, nullptr), "cannot overlap");
}

// A representative ResNet layer, forward and both gradients, timed.
TEST(Conv, TimingResNetLayer) {
  ConvCase c{{8, 64, 32, 32}, {64, 64, 3, 3}, false, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1};
  Buf x = Buf::rand(c.x), w = Buf::rand(c.w), y = Buf::zeros(conv_out_shape(c)), dx = Buf::zeros(c.x),
      dw = Buf::zeros(c.w);
  run_ok(Opcode::Conv, {&x, &w}, {&y}, conv_attr(c));  // warm up the scratch buffers
  const int reps = 3;
  double t[3] = {};
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run(Opcode::Conv, {&x, &w}, {&y}, conv_attr(c)).ok());
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run(Opcode::ConvGradInput, {&y, &w}, {&dx}, conv_attr(c)).ok());
    auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run(Opcode::ConvGradWeight, {&y, &x}, {&dw}, conv_attr(c)).ok());
    auto t3 = std::chrono::steady_clock::now();
    t[0] += std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
    t[1] += std::chrono::duration<double, std::milli>(t2 - t1).count() / reps;
    t[2] += std::chrono::duration<double, std::milli>(t3 - t2).count() / reps;
  }
  const double gflop = 2.0 * 8 * 64 * 32 * 32 * 64 * 9 / 1e9;
  std::printf("conv N=8 C=64 32x32 3x3->64: forward %.2f ms, grad input %.2f ms, grad weight %.2f ms, total %.2f ms "
              "(%.1f GFLOP/s)\n",
              t[0], t[1], t[2], t[0] + t[1] + t[2], 3 * gflop / ((t[0] + t[1] + t[2]) / 1e3));
}

// ---- pooling ---------------------------------------------------------------

// x [N, C, S...] over r = 1 to 3 spatial dimensions; no dilations: 1.
struct PoolCase {
  Shape x;
  Vec kernel, strides, pads;
  bool ceil = false;
  Vec dilations = {};
  int rank() const { return int(x.size()) - 2; }
  int64_t dilation(int a) const { return dilations.empty() ? 1 : dilations[size_t(a)]; }
};

AttrFn pool_attr(const PoolCase& c, bool include_pad = false) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::PoolAttrs,
                          plan::CreatePoolAttrsDirect(b, &c.kernel, &c.strides, &c.pads, include_pad, c.ceil,
                                                      c.dilations.empty() ? nullptr : &c.dilations)
                              .Union());
  };
}

// PyTorch's pooled size: ceil mode rounds up but drops a last window that
// would start in the end padding.
int64_t pool_out(int64_t in, int64_t p0, int64_t p1, int64_t k, int64_t s, bool ceil, int64_t d = 1) {
  const int64_t room = in + p0 + p1 - d * (k - 1) - 1;
  int64_t out = (ceil ? (room + s - 1) / s : room / s) + 1;
  if (ceil && (out - 1) * s >= in + p0) --out;
  return out;
}

Shape pool_out_shape(const PoolCase& c) {
  Shape y = {c.x[0], c.x[1]};
  const int r = c.rank();
  for (int a = 0; a < r; ++a)
    y.push_back(pool_out(c.x[2 + a], c.pads[a], c.pads[r + a], c.kernel[a], c.strides[a], c.ceil, c.dilation(a)));
  return y;
}

// Calls f(y_index, x_index) for each window tap, in row-major window order;
// x_index is -1 for padding and -2 past the end padding (ceil mode).
template <class F>
void pool_loops(const PoolCase& c, F f) {
  const Shape y = pool_out_shape(c);
  const int r = c.rank();
  const Vec xs(c.x.begin() + 2, c.x.end()), ys(y.begin() + 2, y.end());
  for (int64_t p = 0; p < c.x[0] * c.x[1]; ++p)
    for_each_position(ys, [&](const Vec& o) {
      for_each_position(c.kernel, [&](const Vec& k) {
        Vec in(static_cast<size_t>(r), 0);
        bool inside = true, past = false;
        for (int a = 0; a < r; ++a) {
          const int64_t i = o[size_t(a)] * c.strides[a] - c.pads[a] + k[size_t(a)] * c.dilation(a);
          inside = inside && i >= 0 && i < xs[size_t(a)];
          past = past || i >= xs[size_t(a)] + c.pads[r + a];
          in[size_t(a)] = i;
        }
        f(p * numel(ys) + flat(ys, o), inside ? p * numel(xs) + flat(xs, in) : past ? int64_t(-2) : int64_t(-1));
      });
    });
}

const std::vector<PoolCase> kPoolCases = {
    {{2, 3, 8, 8}, {3, 3}, {2, 2}, {1, 1, 1, 1}},  // ResNet max pool
    {{1, 2, 7, 6}, {2, 3}, {1, 2}, {0, 1, 1, 0}},  // non-square, asymmetric pads
    {{2, 2, 5, 9}, {3, 2}, {2, 3}, {2, 0, 1, 1}},
    {{2, 3, 4, 4}, {4, 4}, {1, 1}, {0, 0, 0, 0}},  // global
    // ceil mode: the last windows reach past the padding (4x4 from 8x6, not 3x3).
    {{2, 3, 8, 6}, {3, 3}, {2, 2}, {1, 1, 1, 1}, true},
    {{1, 2, 8, 6}, {3, 3}, {2, 2}, {0, 0, 0, 0}, true},
    // Rows round up (4, not 3); columns drop a last window starting in the
    // end padding (3, not 4).
    {{1, 2, 7, 9}, {3, 2}, {2, 3}, {1, 0, 0, 1}, true},
    // 1-D (NCL) and 3-D (NCDHW).
    {{2, 3, 11}, {3}, {2}, {1, 0}},
    {{2, 2, 10}, {4}, {3}, {2, 1}, true},
    {{2, 2, 5, 6, 4}, {2, 3, 2}, {2, 2, 1}, {1, 1, 0, 0, 1, 1}},
    {{1, 2, 6, 5, 7}, {3, 2, 3}, {2, 2, 2}, {1, 0, 1, 1, 1, 0}, true},
};

// Dilated windows (MaxPool only), where taps may step over x.
const std::vector<PoolCase> kDilatedPoolCases = {
    {{2, 3, 12}, {3}, {2}, {1, 1}, false, {2}},
    {{2, 2, 9, 10}, {2, 2}, {2, 2}, {0, 0, 0, 0}, true, {2, 3}},
    {{1, 2, 8, 8}, {3, 3}, {1, 2}, {1, 2, 2, 1}, false, {2, 2}},
    {{2, 2, 5, 6, 7}, {3, 2, 3}, {2, 2, 2}, {1, 1, 1, 1, 1, 1}, false, {1, 2, 1}},
};

TEST(MaxPool, ForwardArgmaxAndGrad) {
  std::vector<PoolCase> cases = kPoolCases;
  cases.insert(cases.end(), kDilatedPoolCases.begin(), kDilatedPoolCases.end());
  for (const PoolCase& c : cases) {
    SCOPED_TRACE("x " + ::testing::PrintToString(c.x));
    const Shape ys = pool_out_shape(c);
    Buf x = Buf::rand(c.x, -1, 1, 5);
    x.f[3] = x.f[4] = 2.f;  // a tie
    Buf y = Buf::zeros(ys), am = Buf::ints(ys), dy = Buf::rand(ys, -1, 1, 6), dx = Buf::rand(c.x, 5, 6, 7);
    std::vector<double> wy(y.f.size(), -INFINITY), wdx(x.f.size(), 0.0);
    std::vector<int64_t> wam(y.f.size(), -1);
    pool_loops(c, [&](int64_t yi, int64_t xi) {
      if (xi >= 0 && x.f[size_t(xi)] > wy[size_t(yi)]) {
        wy[size_t(yi)] = x.f[size_t(xi)];
        wam[size_t(yi)] = xi % numel(Vec(c.x.begin() + 2, c.x.end()));
      }
    });
    const int64_t hw = numel(Vec(c.x.begin() + 2, c.x.end())), ohw = numel(Vec(ys.begin() + 2, ys.end()));
    for (size_t o = 0; o < wy.size(); ++o) wdx[size_t(int64_t(o) / ohw * hw + wam[o])] += dy.f[o];
    run_ok(Opcode::MaxPool, {&x}, {&y, &am}, pool_attr(c));
    expect_close(y.f, wy, 0, "y");
    EXPECT_EQ(am.i, wam);
    run_ok(Opcode::MaxPoolGrad, {&dy, &am}, {&dx}, pool_attr(c));
    expect_close(dx.f, wdx, 1e-6, "dx");
    // y only.
    Buf y2 = Buf::zeros(ys);
    run_ok(Opcode::MaxPool, {&x}, {&y2}, pool_attr(c));
    EXPECT_EQ(y2.f, y.f);
  }
}

TEST(MaxPool, TiesTakeTheFirstAndPaddingNeverWins) {
  // All-negative input with padding: the padding (-inf) never wins; all
  // elements equal: the first in row-major window order wins.
  PoolCase c{{1, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1, 0, 0}};
  Buf x = Buf::zeros(c.x);
  for (float& v : x.f) v = -5.f;
  Buf y = Buf::zeros({1, 1, 3, 3}), am = Buf::ints({1, 1, 3, 3});
  run_ok(Opcode::MaxPool, {&x}, {&y, &am}, pool_attr(c));
  for (float v : y.f) EXPECT_EQ(v, -5.f);
  // Window (oh, ow) covers rows oh-1..oh and columns ow-1..ow: the first real
  // element is at (max(oh-1, 0), max(ow-1, 0)).
  for (int64_t oh = 0; oh < 3; ++oh)
    for (int64_t ow = 0; ow < 3; ++ow)
      EXPECT_EQ(am.i[size_t(oh * 3 + ow)], std::max<int64_t>(oh - 1, 0) * 3 + std::max<int64_t>(ow - 1, 0));
  // Overlapping windows accumulate in the gradient.
  Buf dy = Buf::zeros({1, 1, 3, 3}), dx = Buf::zeros(c.x);
  for (float& v : dy.f) v = 1.f;
  run_ok(Opcode::MaxPoolGrad, {&dy, &am}, {&dx}, pool_attr(c));
  EXPECT_EQ(dx.f, (std::vector<float>{4, 2, 0, 2, 1, 0, 0, 0, 0}));
  // NaN propagates.
  x.f[4] = NAN;
  run_ok(Opcode::MaxPool, {&x}, {&y, &am}, pool_attr(c));
  EXPECT_TRUE(std::isnan(y.f[4]) && std::isnan(y.f[8]));
  EXPECT_EQ(y.f[0], -5.f);
}

TEST(MaxPool, Errors) {
  PoolCase c{{2, 3, 8, 8}, {3, 3}, {2, 2}, {1, 1, 1, 1}};
  Buf x = Buf::rand(c.x), y = Buf::zeros({2, 3, 4, 4}), am = Buf::ints({2, 3, 4, 4});
  Buf bad = Buf::zeros({2, 3, 3, 3});
  expect_error(validate(Opcode::MaxPool, {&x}, {&bad}, pool_attr(c)),
               "y [2, 3, 3, 3] does not match pooling x [2, 3, 8, 8] (kernel_shape [3, 3], strides [2, 2], pads "
               "[1, 1, 1, 1]): expected [2, 3, 4, 4]");
  Buf am_f = Buf::zeros({2, 3, 4, 4});
  expect_error(validate(Opcode::MaxPool, {&x}, {&y, &am_f}, pool_attr(c)), "argmax must be I64");
  expect_error(validate(Opcode::MaxPool, {&x}, {&y}, nullptr), "missing PoolAttrs");
  PoolCase p = c;
  p.pads = {3, 0, 0, 0};
  expect_error(validate(Opcode::MaxPool, {&x}, {&y}, pool_attr(p)), "must be smaller than kernel_shape");
  PoolCase k = c;
  k.kernel = {3};
  expect_error(validate(Opcode::MaxPool, {&x}, {&y}, pool_attr(k)), "kernel_shape must have 2 entries");
  // ceil mode: 8 + 2 - 3 = 7 rounds up to 5 windows of stride 2, not 4.
  PoolCase ceil = c;
  ceil.ceil = true;
  expect_error(validate(Opcode::MaxPool, {&x}, {&y}, pool_attr(ceil)),
               "y [2, 3, 4, 4] does not match pooling x [2, 3, 8, 8] (kernel_shape [3, 3], strides [2, 2], pads "
               "[1, 1, 1, 1], ceil_mode): expected [2, 3, 5, 5]");
  // A dilated window whose taps all miss x (1 + 2 padded positions, taps 3 apart).
  PoolCase miss{{1, 1, 2}, {2}, {1}, {1, 1}, false, {3}};
  Buf xm = Buf::rand(miss.x), ym = Buf::zeros({1, 1, 1});
  expect_error(validate(Opcode::MaxPool, {&xm}, {&ym}, pool_attr(miss)),
               "output position 0 of spatial axis 0 has a window outside x [1, 1, 2] (kernel_shape [2], strides [1], "
               "pads [1, 1], dilations [3])");
  // A corrupt argmax is a step error.
  Buf dy = Buf::zeros({2, 3, 4, 4}), dx = Buf::zeros(c.x);
  am.i[5] = 64;
  EXPECT_TRUE(validate(Opcode::MaxPoolGrad, {&dy, &am}, {&dx}, pool_attr(c)).ok());
  expect_error(run(Opcode::MaxPoolGrad, {&dy, &am}, {&dx}, pool_attr(c)), "argmax 64 out of range [0, 64)");
}

TEST(AveragePool, BothPadModesAndGrad) {
  for (bool include_pad : {false, true})
    for (const PoolCase& c : kPoolCases) {
      SCOPED_TRACE(std::string("count_include_pad ") + (include_pad ? "1" : "0"));
      const Shape ys = pool_out_shape(c);
      Buf x = Buf::rand(c.x, -1, 1, 8), y = Buf::zeros(ys), dy = Buf::rand(ys, -1, 1, 9), dx = Buf::rand(c.x, 5, 6, 1);
      std::vector<double> sum(y.f.size(), 0.0), cnt(y.f.size(), 0.0), wdx(x.f.size(), 0.0);
      pool_loops(c, [&](int64_t yi, int64_t xi) {
        if (xi >= 0) sum[size_t(yi)] += x.f[size_t(xi)];
        if (xi >= 0 || (include_pad && xi == -1)) cnt[size_t(yi)] += 1;
      });
      std::vector<double> wy(y.f.size());
      for (size_t o = 0; o < wy.size(); ++o) wy[o] = sum[o] / cnt[o];
      pool_loops(c, [&](int64_t yi, int64_t xi) {
        if (xi >= 0) wdx[size_t(xi)] += dy.f[size_t(yi)] / cnt[size_t(yi)];
      });
      run_ok(Opcode::AveragePool, {&x}, {&y}, pool_attr(c, include_pad));
      expect_close(y.f, wy, 1e-6, "y");
      run_ok(Opcode::AveragePoolGrad, {&dy}, {&dx}, pool_attr(c, include_pad));
      expect_close(dx.f, wdx, 1e-6, "dx");
    }
}

TEST(AveragePool, Errors) {
  PoolCase c{{2, 3, 8, 8}, {2, 2}, {2, 2}, {0, 0, 0, 0}};
  Buf x = Buf::rand(c.x), y = Buf::zeros({2, 3, 4, 4}), bad = Buf::zeros({2, 3, 4, 5});
  expect_error(validate(Opcode::AveragePool, {&x}, {&bad}, pool_attr(c)), "does not match pooling");
  expect_error(validate(Opcode::AveragePoolGrad, {&bad}, {&x}, pool_attr(c)), "dy [2, 3, 4, 5] does not match pooling dx");
  PoolCase big{{2, 3, 8, 8}, {9, 2}, {1, 1}, {0, 0, 0, 0}};
  expect_error(validate(Opcode::AveragePool, {&x}, {&y}, pool_attr(big)), "kernel is larger than the padded input");
}

// ---- BatchNormalization ----------------------------------------------------

AttrFn bn_attr(float eps, float momentum) {
  return [=](flatbuffers::FlatBufferBuilder& b) {
    return std::make_pair(plan::Attrs::BatchNormAttrs, plan::CreateBatchNormAttrs(b, eps, momentum).Union());
  };
}

// Training-mode batch norm in double over x viewed as [n, c, inner].
void bn_ref(const std::vector<double>& x, const std::vector<double>& scale, const std::vector<double>& bias, int64_t n,
            int64_t c, int64_t inner, double eps, std::vector<double>* y, std::vector<double>* mean,
            std::vector<double>* var) {
  y->assign(x.size(), 0.0);
  mean->assign(size_t(c), 0.0);
  var->assign(size_t(c), 0.0);
  const double cnt = double(n * inner);
  for (int64_t ch = 0; ch < c; ++ch) {
    double m = 0, v = 0;
    for (int64_t a = 0; a < n; ++a)
      for (int64_t i = 0; i < inner; ++i) m += x[size_t((a * c + ch) * inner + i)];
    m /= cnt;
    for (int64_t a = 0; a < n; ++a)
      for (int64_t i = 0; i < inner; ++i) v += std::pow(x[size_t((a * c + ch) * inner + i)] - m, 2);
    v /= cnt;
    for (int64_t a = 0; a < n; ++a)
      for (int64_t i = 0; i < inner; ++i) {
        const size_t k = size_t((a * c + ch) * inner + i);
        (*y)[k] = (x[k] - m) / std::sqrt(v + eps) * scale[size_t(ch)] + bias[size_t(ch)];
      }
    (*mean)[size_t(ch)] = m;
    (*var)[size_t(ch)] = v;
  }
}

void check_batch_norm(const Shape& shape) {
  const int64_t n = shape[0], c = shape[1], inner = numel(shape) / (n * c);
  const float eps = 1e-5f, momentum = 0.1f;
  Buf x = Buf::rand(shape, -2, 3, 31), scale = Buf::rand({c}, 0.5, 1.5, 32), bias = Buf::rand({c}, -1, 1, 33);
  for (size_t k = 0; k < x.f.size(); k += 2) x.f[k] += 50.f;  // an offset the two-pass variance must survive
  Buf rm = Buf::rand({c}, -1, 1, 34), rv = Buf::rand({c}, 0.5, 2, 35), rm0 = rm, rv0 = rv;
  Buf y = Buf::zeros(shape), sm = Buf::zeros({c}), si = Buf::zeros({c});
  run_ok(Opcode::BatchNormalization, {&x, &scale, &bias, &rm, &rv}, {&y, &sm, &si}, bn_attr(eps, momentum));
  std::vector<double> wy, wm, wv;
  bn_ref(to_double(x.f), to_double(scale.f), to_double(bias.f), n, c, inner, eps, &wy, &wm, &wv);
  expect_close(y.f, wy, 2e-6, "y");
  expect_close(sm.f, wm, 1e-6, "saved_mean");
  const double cnt = double(n * inner);
  for (int64_t ch = 0; ch < c; ++ch) {
    const size_t k = size_t(ch);
    EXPECT_NEAR(si.f[k], 1 / std::sqrt(wv[k] + eps), 1e-6 / std::sqrt(wv[k] + eps));
    // PyTorch's update: running = (1 - momentum) * running + momentum * batch, unbiased variance.
    EXPECT_NEAR(rm.f[k], (1 - momentum) * rm0.f[k] + momentum * wm[k], 1e-5 * (1 + std::fabs(wm[k])));
    EXPECT_NEAR(rv.f[k], (1 - momentum) * rv0.f[k] + momentum * wv[k] * cnt / (cnt - 1), 1e-6 * (1 + wv[k]));
  }

  // Gradient against central finite differences of L = sum(w * y) in double.
  Buf w = Buf::rand(shape, -1, 1, 36), dx = Buf::zeros(shape), dscale = Buf::zeros({c}), dbias = Buf::zeros({c});
  run_ok(Opcode::BatchNormalizationGrad, {&w, &x, &scale, &sm, &si}, {&dx, &dscale, &dbias}, bn_attr(eps, momentum));
  std::vector<double> xd = to_double(x.f), sd = to_double(scale.f), bd = to_double(bias.f), wd = to_double(w.f);
  const auto loss = [&] {
    std::vector<double> yy, mm, vv;
    bn_ref(xd, sd, bd, n, c, inner, eps, &yy, &mm, &vv);
    double l = 0;
    for (size_t k = 0; k < yy.size(); ++k) l += wd[k] * yy[k];
    return l;
  };
  expect_fd_gradient(dx.f, xd, loss, 1e-4, 1e-4, "dx");
  expect_fd_gradient(dscale.f, sd, loss, 1e-4, 1e-4, "dscale");
  expect_fd_gradient(dbias.f, bd, loss, 1e-4, 1e-4, "dbias");

  // In place: y on x, dx on dy, statistics outputs omitted.
  Buf x2 = x, rm2 = rm0, rv2 = rv0;
  run_ok(Opcode::BatchNormalization, {&x2, &scale, &bias, &rm2, &rv2}, {&x2}, bn_attr(eps, momentum));
  EXPECT_EQ(x2.f, y.f);
  EXPECT_EQ(rm2.f, rm.f);
  EXPECT_EQ(rv2.f, rv.f);
  run_ok(Opcode::BatchNormalizationGrad, {&w, &x, &scale, &sm, &si}, {&w}, bn_attr(eps, momentum));
  EXPECT_EQ(w.f, dx.f);
}

TEST(BatchNorm, NCHWNonSquare) { check_batch_norm({3, 4, 5, 3}); }
TEST(BatchNorm, NC) { check_batch_norm({6, 3}); }
TEST(BatchNorm, SingleImage) { check_batch_norm({1, 2, 3, 4}); }

TEST(BatchNorm, Errors) {
  Buf x = Buf::rand({2, 3, 4, 4}), s = Buf::rand({3}), b = Buf::rand({3}), rm = Buf::rand({3}), rv = Buf::rand({3});
  Buf y = Buf::zeros({2, 3, 4, 4}), bad = Buf::zeros({4});
  expect_error(validate(Opcode::BatchNormalization, {&x, &s, &b, &rm, &rv}, {&y}, nullptr), "missing BatchNormAttrs");
  expect_error(validate(Opcode::BatchNormalization, {&x, &s, &b, &bad, &rv}, {&y}, bn_attr(1e-5f, 0.1f)),
               "running_mean [4] must have 3 elements (x's channels)");
  expect_error(validate(Opcode::BatchNormalization, {&x, &s, &b, &rm, &rv}, {&y, &bad}, bn_attr(1e-5f, 0.1f)),
               "saved_mean [4] must have 3 elements");
  expect_error(validate(Opcode::BatchNormalization, {&x, &s, &b, &rm, &rm}, {&y}, bn_attr(1e-5f, 0.1f)),
               "running_mean and running_var overlap");
  Buf one = Buf::rand({1, 3, 1, 1}), one_y = Buf::zeros({1, 3, 1, 1});
  expect_error(validate(Opcode::BatchNormalization, {&one, &s, &b, &rm, &rv}, {&one_y}, bn_attr(1e-5f, 0.1f)),
               "has 1 value(s) per channel");
  Buf x1 = Buf::rand({3});
  expect_error(validate(Opcode::BatchNormalization, {&x1, &s, &b, &rm, &rv}, {&x1}, bn_attr(1e-5f, 0.1f)),
               "x must be at least 2-D");
  Buf dx = Buf::zeros({2, 3, 4, 4});
  expect_error(validate(Opcode::BatchNormalizationGrad, {&y, &x, &s, &rm, &bad}, {&dx}, bn_attr(1e-5f, 0.1f)),
               "saved_inv_std [4] must have 3 elements");
  expect_error(validate(Opcode::BatchNormalizationGrad, {&y, &x, &s, &rm, &rv}, {&dx, &s}, bn_attr(1e-5f, 0.1f)),
               "scale and dscale overlap");
}

}  // namespace
}  // namespace zero
