// The elementwise ops, written once. Each op is a functor whose math the CPU
// loops (cpu/elementwise.cc) and the CUDA kernels (cuda/elementwise.cu) both
// instantiate, and the lists below drive everything else that names them: the
// plan opcode descriptors (plan_ops.h), both backends' kernel tables, the
// importer's table of supported ONNX ops, the training-step gradients and the
// lowering to plan instructions. An op's name is its ONNX op type and its plan
// opcode; an op with a derivative kernel also has the opcode <Name>Grad.
//
// Adding a unary op: a functor and a list entry here, its opcodes in
// schema/plan.fbs, one line in dialects/Onnx/OnnxOps.td (docs/adding-an-op.md).
//
// Dependency-free (C math only) so that nvcc, the host compiler and the MLIR
// side all read it.
#ifndef ZERO_ELEMENTWISE_OPS_H
#define ZERO_ELEMENTWISE_OPS_H

#include <float.h>
#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define ZERO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define ZERO_HOST_DEVICE inline
#endif

namespace zero::elementwise {

// The forward tensor a derivative kernel reads besides dy: (dy, saved) -> dx.
enum class Saved { Input, Result };

// ---- binary: y = f(a, b), numpy broadcasting --------------------------------
// Their gradients are compositions of forward ops (passes/GradientRules.cpp).

struct Add {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a + b; }
};
struct Sub {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a - b; }
};
struct Mul {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a * b; }
};
struct Div {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a / b; }
};
struct Pow {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return powf(a, b); }
};
// NaN wins, as in torch.maximum and np.maximum (fmaxf would drop it).
struct Max {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a > b || a != a ? a : b; }
};
struct Min {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a < b || a != a ? a : b; }
};
// b is the slope, broadcast to a (ONNX's unidirectional broadcasting).
struct PRelu {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return a > 0.f ? a : b * a; }
};

// ---- unary whose gradient is a composition of forward ops -------------------

struct Neg {
  ZERO_HOST_DEVICE static float forward(float x) { return -x; }
};
struct Sqrt {
  ZERO_HOST_DEVICE static float forward(float x) { return sqrtf(x); }
};
struct Exp {
  ZERO_HOST_DEVICE static float forward(float x) { return expf(x); }
};
struct Log {
  ZERO_HOST_DEVICE static float forward(float x) { return logf(x); }
};

// ---- unary without a gradient: piecewise constant, zero derivative where
// it exists (PyTorch's gradient, also at the steps) ------------------------

struct Floor {
  ZERO_HOST_DEVICE static float forward(float x) { return floorf(x); }
};
struct Ceil {
  ZERO_HOST_DEVICE static float forward(float x) { return ceilf(x); }
};
struct Sign {
  // x itself at +-0 and NaN.
  ZERO_HOST_DEVICE static float forward(float x) { return x > 0.f ? 1.f : x < 0.f ? -1.f : x; }
};

// ---- unary with a derivative kernel: dx = derivative(dy, saved) -------------

struct Relu {
  static constexpr Saved kSaved = Saved::Input;
  ZERO_HOST_DEVICE static float forward(float x) { return x > 0.f ? x : 0.f; }
  ZERO_HOST_DEVICE static float derivative(float dy, float x) { return x > 0.f ? dy : 0.f; }
};
struct Tanh {
  static constexpr Saved kSaved = Saved::Result;
  ZERO_HOST_DEVICE static float forward(float x) { return tanhf(x); }
  ZERO_HOST_DEVICE static float derivative(float dy, float y) { return dy * (1.f - y * y); }
};
struct Sigmoid {
  static constexpr Saved kSaved = Saved::Result;
  ZERO_HOST_DEVICE static float forward(float x) { return 1.f / (1.f + expf(-x)); }
  ZERO_HOST_DEVICE static float derivative(float dy, float y) { return dy * y * (1.f - y); }
};
struct Erf {
  static constexpr Saved kSaved = Saved::Input;
  ZERO_HOST_DEVICE static float forward(float x) { return erff(x); }
  ZERO_HOST_DEVICE static float derivative(float dy, float x) {
    constexpr float k2OverSqrtPi = 1.12837916709551257390f;
    return dy * k2OverSqrtPi * expf(-x * x);
  }
};

struct Reciprocal {
  static constexpr Saved kSaved = Saved::Result;
  ZERO_HOST_DEVICE static float forward(float x) { return 1.f / x; }
  ZERO_HOST_DEVICE static float derivative(float dy, float y) { return -dy * y * y; }
};
struct Abs {
  static constexpr Saved kSaved = Saved::Input;
  ZERO_HOST_DEVICE static float forward(float x) { return fabsf(x); }
  // sign(x), 0 at 0 (PyTorch's subgradient).
  ZERO_HOST_DEVICE static float derivative(float dy, float x) { return x > 0.f ? dy : x < 0.f ? -dy : 0.f; }
};
struct Softplus {
  static constexpr Saved kSaved = Saved::Input;
  // ln(1 + e^x) without overflow for large x.
  ZERO_HOST_DEVICE static float forward(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }
  ZERO_HOST_DEVICE static float derivative(float dy, float x) { return dy / (1.f + expf(-x)); }
};
struct Softsign {
  static constexpr Saved kSaved = Saved::Input;
  ZERO_HOST_DEVICE static float forward(float x) { return x / (1.f + fabsf(x)); }
  ZERO_HOST_DEVICE static float derivative(float dy, float x) {
    const float d = 1.f + fabsf(x);
    return dy / (d * d);
  }
};

// ---- unary with attributes and a derivative kernel ------------------------
// ONNX's float attributes, in the plan's ElementwiseAttrs under their ONNX
// names (one field per name any op uses); each op lists the ones it reads
// with their ONNX defaults.

struct Params {
  float alpha, beta, gamma, min, max;
};
struct Attribute {
  const char* name;
  float default_value;
};

struct HardSigmoid {
  static constexpr Saved kSaved = Saved::Input;
  static constexpr Attribute kAttributes[] = {{"alpha", 0.2f}, {"beta", 0.5f}};
  ZERO_HOST_DEVICE static float forward(float x, Params p) { return fmaxf(0.f, fminf(1.f, p.alpha * x + p.beta)); }
  ZERO_HOST_DEVICE static float derivative(float dy, float x, Params p) {
    const float t = p.alpha * x + p.beta;
    return t > 0.f && t < 1.f ? dy * p.alpha : 0.f;
  }
};
struct Elu {
  static constexpr Saved kSaved = Saved::Input;
  static constexpr Attribute kAttributes[] = {{"alpha", 1.f}};
  ZERO_HOST_DEVICE static float forward(float x, Params p) { return x > 0.f ? x : p.alpha * expm1f(x); }
  ZERO_HOST_DEVICE static float derivative(float dy, float x, Params p) {
    return x > 0.f ? dy : dy * p.alpha * expf(x);
  }
};
struct LeakyRelu {
  static constexpr Saved kSaved = Saved::Input;
  static constexpr Attribute kAttributes[] = {{"alpha", 0.01f}};
  ZERO_HOST_DEVICE static float forward(float x, Params p) { return x < 0.f ? p.alpha * x : x; }
  ZERO_HOST_DEVICE static float derivative(float dy, float x, Params p) { return x > 0.f ? dy : dy * p.alpha; }
};
struct Selu {
  static constexpr Saved kSaved = Saved::Input;
  static constexpr Attribute kAttributes[] = {{"alpha", 1.67326319217681884765625f},
                                              {"gamma", 1.05070102214813232421875f}};
  ZERO_HOST_DEVICE static float forward(float x, Params p) {
    return x > 0.f ? p.gamma * x : p.gamma * p.alpha * expm1f(x);
  }
  ZERO_HOST_DEVICE static float derivative(float dy, float x, Params p) {
    return x > 0.f ? dy * p.gamma : dy * p.gamma * p.alpha * expf(x);
  }
};
// ONNX's attribute form (before opset 11; from 11 the importer folds the
// constant min and max inputs into these, +-infinity where one is absent).
// min > max gives max everywhere (np.clip, torch.clamp); NaN stays NaN.
struct Clip {
  static constexpr Saved kSaved = Saved::Input;
  static constexpr Attribute kAttributes[] = {{"min", -FLT_MAX}, {"max", FLT_MAX}};
  ZERO_HOST_DEVICE static float forward(float x, Params p) {
    const float lower = x < p.min ? p.min : x;
    return lower > p.max ? p.max : lower;
  }
  // torch.clamp's: dy where min <= x <= max, the bounds included.
  ZERO_HOST_DEVICE static float derivative(float dy, float x, Params p) { return x >= p.min && x <= p.max ? dy : 0.f; }
};

// ---- (a, b) -> y, all F32 or all I64, numpy broadcasting -----------------
// ONNX's Mod: Mod is its fmod = 0 (the remainder takes the divisor's sign,
// Python's %), FMod its fmod = 1 (the dividend's sign, C's fmod). Integer
// division by 0 gives 0 (numpy's result) instead of trapping, and so does
// INT64_MIN by -1. Not in the kElementwiseOps table (plan_ops.h): one ONNX
// op, two opcodes chosen by fmod, lowered explicitly.

struct FMod {
  ZERO_HOST_DEVICE static float forward(float a, float b) { return fmodf(a, b); }
  ZERO_HOST_DEVICE static int64_t forward(int64_t a, int64_t b) { return b == 0 || b == -1 ? 0 : a % b; }
};
struct Mod {
  template <class T>
  ZERO_HOST_DEVICE static T forward(T a, T b) {
    const T r = FMod::forward(a, b);
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
  }
};

// ---- comparisons: (a, b) -> I64 0/1, a and b both F32 or both I64 --------
// No gradient (their results are integers). BOOL is carried as I64.

struct Equal {
  template <class T>
  ZERO_HOST_DEVICE static bool compare(T a, T b) {
    return a == b;
  }
};
struct Greater {
  template <class T>
  ZERO_HOST_DEVICE static bool compare(T a, T b) {
    return a > b;
  }
};
struct Less {
  template <class T>
  ZERO_HOST_DEVICE static bool compare(T a, T b) {
    return a < b;
  }
};

// ---- logical: I64 0/1 operands (nonzero is true) -> I64 0/1 ----------------

struct And {
  ZERO_HOST_DEVICE static bool logical(bool a, bool b) { return a && b; }
};
struct Or {
  ZERO_HOST_DEVICE static bool logical(bool a, bool b) { return a || b; }
};
struct Xor {
  ZERO_HOST_DEVICE static bool logical(bool a, bool b) { return a != b; }
};
struct Not {
  ZERO_HOST_DEVICE static bool logical(bool a) { return !a; }
};

// X(Name) for every op of a kind; the order is irrelevant (tables are keyed
// by opcode). Ops with attributes also have derivative kernels.
#define ZERO_ELEMENTWISE_BINARY_OPS(X) X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Max) X(Min) X(PRelu)
#define ZERO_ELEMENTWISE_UNARY_OPS(X) X(Neg) X(Sqrt) X(Exp) X(Log) X(Floor) X(Ceil) X(Sign)
#define ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(X) \
  X(Relu) X(Tanh) X(Sigmoid) X(Erf) X(Reciprocal) X(Abs) X(Softplus) X(Softsign)
#define ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(X) X(HardSigmoid) X(Elu) X(LeakyRelu) X(Selu) X(Clip)
#define ZERO_ELEMENTWISE_TYPED_BINARY_OPS(X) X(Mod) X(FMod)
#define ZERO_ELEMENTWISE_COMPARISON_OPS(X) X(Equal) X(Greater) X(Less)
#define ZERO_ELEMENTWISE_LOGICAL_OPS(X) X(And) X(Or) X(Xor)
#define ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(X) X(Not)

}  // namespace zero::elementwise

#endif  // ZERO_ELEMENTWISE_OPS_H
