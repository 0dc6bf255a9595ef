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

#include <math.h>

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

// ---- unary with attributes and a derivative kernel ------------------------
// ONNX's float attributes, in the plan's ElementwiseAttrs (alpha, beta); each
// op lists the ones it reads with their ONNX defaults.

struct Params {
  float alpha, beta;
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
#define ZERO_ELEMENTWISE_BINARY_OPS(X) X(Add) X(Sub) X(Mul) X(Div) X(Pow)
#define ZERO_ELEMENTWISE_UNARY_OPS(X) X(Neg) X(Sqrt) X(Exp) X(Log)
#define ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(X) X(Relu) X(Tanh) X(Sigmoid) X(Erf) X(Reciprocal) X(Abs) X(Softplus)
#define ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(X) X(HardSigmoid) X(Elu) X(LeakyRelu)
#define ZERO_ELEMENTWISE_COMPARISON_OPS(X) X(Equal) X(Greater) X(Less)
#define ZERO_ELEMENTWISE_LOGICAL_OPS(X) X(And) X(Or) X(Xor)
#define ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(X) X(Not)

}  // namespace zero::elementwise

#endif  // ZERO_ELEMENTWISE_OPS_H
