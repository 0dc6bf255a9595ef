// Operand checks and geometry shared by the backends: every backend's prepare
// validates an instruction's dtypes, shapes and attributes the same way (and
// reports the same errors) with these, and keeps the geometry they compute
// for its execute; what differs is only how it then runs the op.
#ifndef ZERO_RUNTIME_KERNEL_CHECKS_H
#define ZERO_RUNTIME_KERNEL_CHECKS_H

#include <cstdint>
#include <string>

#include "backend.h"
#include "zero/elementwise_ops.h"
#include "zero/kernel_scratch.h"
#include "zero/sliding_window.h"

namespace zero {

// An error naming the instruction's opcode and source location: in the plan
// (invalid argument), or in the data a step reads (out of range).
Status fail(const KernelCall& call, const std::string& what);
Status fail_data(const KernelCall& call, const std::string& what);

Status expect_f32(const KernelCall& call, const Tensor& t, const char* role);
Status expect_same_numel(const KernelCall& call, const Tensor& a, const Tensor& b, const char* what);
// t is F32 with exactly n elements (`what` says where n comes from).
Status expect_numel(const KernelCall& call, const Tensor& t, int64_t n, const char* role, const char* what);
// An I64 scalar (the optimizer step counter).
Status expect_step_scalar(const KernelCall& call, const Tensor& step);

// Normalizes a possibly negative axis into [0, ndim).
bool normalize_axis(int64_t axis, int ndim, int* out);
// Element strides of `t` broadcast (numpy rules, right-aligned) to `shape`;
// 0 along broadcast dimensions. False if not broadcastable.
bool broadcast_strides(const Tensor& t, const Tensor& shape, int64_t* strides);
bool same_shape(const Tensor& a, const Tensor& b);
// Contiguous element strides of t.
void contiguous_strides(const Tensor& t, int64_t* strides);
bool fits_int(int64_t v);

// AxisAttrs.axis, or `def` (the ONNX default) without attributes.
int64_t axis_attr_or(const KernelCall& call, int64_t def);
inline int64_t axis_attr(const KernelCall& call) { return axis_attr_or(call, -1); }

// ---- elementwise ---------------------------------------------------------

// (a, b) -> y, F32, a and b broadcast to y; their strides into sa and sb.
Status binary_geometry(const KernelCall& call, int64_t* sa, int64_t* sb);
// (a, b) -> y I64, broadcast as binary_geometry: a and b both F32 or both
// I64 (comparisons), or both I64 (logical).
Status predicate_geometry(const KernelCall& call, bool logical, int64_t* sa, int64_t* sb);
// (a, b) -> y, all F32 or all I64, broadcast as binary_geometry (Mod, FMod).
Status typed_binary_geometry(const KernelCall& call, int64_t* sa, int64_t* sb);
// x -> y, F32, same element count.
Status check_unary(const KernelCall& call);
// x -> y, I64, same element count (Not).
Status check_logical_unary(const KernelCall& call);
// (dy, x or y) -> dx, F32, all the same element count.
Status check_unary_grad(const KernelCall& call);
// The prepares of an elementwise op with attributes (check_unary) and of its
// derivative (check_unary_grad): the checks, then the attributes (the
// loader has checked that the instruction carries its ElementwiseAttrs).
Status prepare_parameterized_unary(const KernelCall& call, elementwise::Params* p);
Status prepare_parameterized_derivative(const KernelCall& call, elementwise::Params* p);
// x -> y, any dtype, the same for both, same element count.
Status check_copy(const KernelCall& call);
// x -> y, F32 or I64 each, same element count.
Status check_cast(const KernelCall& call);

// ---- Gemm / MatMul -------------------------------------------------------

struct GemmGeom {
  bool ta = false, tb = false;
  float alpha = 1.f, beta = 1.f;
  int64_t m = 0, n = 0, k = 0;
  bool with_c = false;  // a C operand that contributes (beta != 0)
};

// A, B, Y and C against GemmAttrs; with C, its strides broadcast to Y in sc.
Status gemm_geometry(const KernelCall& call, GemmGeom* g, int64_t* sc);

struct MatMulGeom {
  int64_t m, n, k;
  Tensor batch;                        // broadcast batch shape
  int64_t sa[kMaxRank], sb[kMaxRank];  // A's and B's batch strides into batch
  int64_t batch_a, batch_b;            // batches of A and of B
};

// numpy matmul of A and B into Y.
Status matmul_geometry(const KernelCall& call, MatMulGeom* g);

// ---- softmax family, losses ----------------------------------------------

struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};

Status split_axis(const KernelCall& call, const Tensor& t, int64_t axis, AxisSplit* s);
// x -> y split at the AxisAttrs axis.
Status softmax_geometry(const KernelCall& call, AxisSplit* s);
// (dy, y) -> dx split at the AxisAttrs axis.
Status softmax_grad_geometry(const KernelCall& call, AxisSplit* s);

struct LossGeometry {
  int64_t n = 0, c = 0, inner = 1;  // scores [n, c, inner...], labels [n, inner...]
  plan::Reduction reduction = plan::Reduction::Mean;
  bool has_ignore = false;
  int64_t ignore_index = 0;

  bool ignored(int64_t label) const { return has_ignore && label == ignore_index; }
};

Status loss_geometry(const KernelCall& call, const Tensor& scores, const Tensor& labels, LossGeometry* g);
// The loss (or dloss) operand: one element, or one per label without reduction.
Status check_loss_output(const KernelCall& call, const LossGeometry& g, const Tensor& loss, const Tensor& labels,
                         const char* role);
// The optional class weights (nullptr when absent): F32 [C].
Status check_loss_weights(const KernelCall& call, const LossGeometry& g, const Tensor* weights);
// The optional log_prob output (nullptr when absent) of SoftmaxCrossEntropyLoss.
Status check_log_prob(const KernelCall& call, const Tensor& scores, const Tensor* log_prob);
// All of a loss's operands: (scores, labels, [weights]) -> (loss,
// [log_prob: softmax only]).
Status validate_loss(const KernelCall& call, bool softmax, LossGeometry* g);
template <bool kSoftmax>
Status prepare_loss(const KernelCall& call, LossGeometry* g) {
  return validate_loss(call, kSoftmax, g);
}
// (dloss, scores or log_probs, labels, [weights]) -> dinput.
Status validate_loss_grad(const KernelCall& call, LossGeometry* g);

// ---- reductions, layout --------------------------------------------------

// x reduced over ReduceAttrs.axes (all without) into y: which dimensions are
// reduced, the output's element count and the elements per output.
Status reduce_geometry(const KernelCall& call, bool* reduced, int64_t* out_numel, int64_t* count);
// y = x transposed by PermAttrs: strides into x per dimension of y.
Status transpose_geometry(const KernelCall& call, int64_t* src_strides);
// y = x broadcast: strides into x per dimension of y.
Status expand_geometry(const KernelCall& call, int64_t* strides);
// Fill's value (FillAttrs.value, 0 without attributes); y is any dtype.
Status fill_value(const KernelCall& call, float* value);

// ArgMax/ArgMin: x F32 [outer, n, inner] split at ArgReduceAttrs.axis (n >=
// 1) into y I64 of outer * inner elements (keepdims or not).
struct ArgReduceGeom {
  int64_t outer = 1, n = 1, inner = 1;
  bool last = false;  // select_last_index
};
Status arg_reduce_geometry(const KernelCall& call, ArgReduceGeom* g);
// CumSum: x [outer, n, inner] split at CumSumAttrs.axis into y of the same
// shape and dtype (F32 or I64); each row is read before it is written, so y
// may be x.
struct CumSumGeom {
  int64_t outer = 1, n = 1, inner = 1;
  bool exclusive = false, reverse = false;
};
Status cumsum_geometry(const KernelCall& call, CumSumGeom* g);

// ---- Gather, Slice, Concat, Where, LayerNormalization ----------------------
//
// The validate_* functions check everything but the data (index values) and
// return the geometry.

// Gather geometry: data [outer, n, inner] gathered by q indices to
// y [outer, q, inner].
struct GatherSplit {
  int64_t outer = 1, n = 1, inner = 1, q = 1;
};

// `data` is the full tensor (data for Gather, ddata for GatherGrad) and `y`
// the gathered one (y or dy).
Status gather_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const Tensor& y,
                       const char* data_role, const char* y_role, GatherSplit* g);
Status validate_gather(const KernelCall& call, GatherSplit* g);
Status validate_gather_grad(const KernelCall& call, GatherSplit* g);

// ---- GatherElements, ScatterElements, GatherND, ScatterND, TopK -----------
//
// As Gather's, the validate_* functions check everything but the index
// values (each kernel checks those as it reads them: a step error).

// The index tensor of GatherElements, ScatterElements and their gradients
// (updates and dy of GatherElements have its shape) picks for each of its
// positions the data element at that position but for the coordinate along
// `axis`. A row is the index positions that differ only along the axis:
// `rows` is their shape (the indices' with 1 at the axis; only its ndim,
// dims and numel are set), `istrides` and `dstrides` the element strides of
// the indices and of data along each of its dimensions. A row has `len`
// indices, `istep` apart, into `n` data elements `dstep` apart.
struct ElementsGeom {
  Tensor rows;
  int64_t istrides[kMaxRank] = {}, dstrides[kMaxRank] = {};
  int64_t len = 1, istep = 1, n = 1, dstep = 1;
};
// `data` is the indexed tensor (data, ddata), `indexed` the indices' shape
// (indices, updates, y, dy); the roles name them in errors.
Status elements_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const char* data_role,
                         ElementsGeom* g);
// (data, indices) -> y.
Status validate_gather_elements(const KernelCall& call, ElementsGeom* g);
// (data, indices, updates) -> y; y may be data (exactly).
Status validate_scatter_elements(const KernelCall& call, ElementsGeom* g);
// (dy, indices) -> ddata, F32.
Status validate_gather_elements_grad(const KernelCall& call, ElementsGeom* g);
// (dy, indices) -> ddata, F32, dy's shape; ddata may be dy (exactly).
Status validate_scatter_elements_grad(const KernelCall& call, ElementsGeom* g);

// GatherND, ScatterND and their gradients: indices [..., k] holds `tuples`
// tuples of k indices into data's first k dimensions (`dims`, their element
// strides `strides`); each picks a contiguous slice of `slice` elements.
struct NDGeom {
  int64_t tuples = 1, k = 1, slice = 1;
  int64_t dims[kMaxRank] = {}, strides[kMaxRank] = {};
};
// `data` is the indexed tensor (data, ddata), `slices` the one of
// indices.shape[:-1] + data.shape[k:] (y, updates, dy).
Status nd_geometry(const KernelCall& call, const Tensor& data, const Tensor& indices, const Tensor& slices,
                   const char* data_role, const char* slices_role, NDGeom* g);
// (data, indices) -> y.
Status validate_gather_nd(const KernelCall& call, NDGeom* g);
// (data, indices, updates) -> y; y may be data (exactly).
Status validate_scatter_nd(const KernelCall& call, NDGeom* g);
// (dy, indices) -> ddata, F32.
Status validate_gather_nd_grad(const KernelCall& call, NDGeom* g);
// (dy, indices) -> ddata, F32, dy's shape; ddata may be dy (exactly).
Status validate_scatter_nd_grad(const KernelCall& call, NDGeom* g);

// TopK: x F32 [outer, n, inner] split at TopKAttrs.axis into values F32 and
// indices I64 of [outer, k, inner]; 1 <= k <= n; with a k input (I64, one
// element) the kernel checks its value against k.
struct TopKGeom {
  int64_t outer = 1, n = 1, inner = 1, k = 1;
  bool largest = true;
};
Status validate_top_k(const KernelCall& call, TopKGeom* g);

// Slice geometry between the full tensor x and the slice y: strides into x
// per dimension of y and the element offset of y[0...] in x.
struct SliceGeom {
  int64_t strides[kMaxRank];
  int64_t base;
};
Status slice_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, int64_t* strides, int64_t* base);
Status slice_grad_geometry(const KernelCall& call, int64_t* strides, int64_t* base);
// With the in-place checks (only a slice of all of x may alias it).
Status validate_slice(const KernelCall& call, SliceGeom* g);
Status validate_slice_grad(const KernelCall& call, SliceGeom* g);

// y [outer, sum of the inputs' axis dimensions, inner] from inputs
// [outer, their axis dimension, inner].
struct ConcatGeom {
  int axis;
  int64_t outer, inner;
};
Status validate_concat(const KernelCall& call, ConcatGeom* g);
// Strides of cond, x and y broadcast to the output.
Status where_geometry(const KernelCall& call, int64_t* sc, int64_t* sx, int64_t* sy);

struct LayerNormSplit {
  int64_t outer = 1, inner = 1;
  float eps = 1e-5f;
};

// x is [outer, inner] split at LayerNormAttrs.axis.
Status layer_norm_split(const KernelCall& call, const Tensor& x, LayerNormSplit* s);
Status validate_layer_norm(const KernelCall& call, LayerNormSplit* s);
Status validate_layer_norm_grad(const KernelCall& call, LayerNormSplit* s);

// ---- Conv, pooling (1-D to 3-D), BatchNormalization (F32) -----------------
//
// Each validate_* checks the operands (their shapes, attributes, overlaps)
// and returns the geometry, held as 3-D (zero/sliding_window.h).

// True when the byte ranges of a and b intersect.
bool overlaps(const Tensor& a, const Tensor& b);

using sliding_window::kMaxSpatial;
using sliding_window::Window;

struct ConvGeom {
  int64_t n = 0, c = 0;                  // input batch and channels
  int64_t m = 0;                         // output channels
  int64_t in[kMaxSpatial] = {1, 1, 1};   // input spatial size (D, H, W)
  int64_t out[kMaxSpatial] = {1, 1, 1};  // output spatial size
  int64_t group = 1;
  Window win;
  int64_t cg() const { return c / group; }
  int64_t mg() const { return m / group; }
  int64_t kdim() const { return cg() * win.volume(); }  // GEMM inner dimension
  int64_t plane() const { return out[0] * out[1] * out[2]; }
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
};

// Checks x [N,C,...] * w [M,C/group,k...] -> y [N,M,...] (1 to 3 spatial
// dimensions) against ConvAttrs; the roles name the operands as the
// instruction has them (x or dx, w or dw, y or dy).
Status conv_geometry(const KernelCall& call, const Tensor& x, const Tensor& w, const Tensor& y, const char* xr,
                     const char* wr, const char* yr, ConvGeom* g);
Status validate_conv(const KernelCall& call, ConvGeom* g);
Status validate_conv_grad_input(const KernelCall& call, ConvGeom* g);
Status validate_conv_grad_weight(const KernelCall& call, ConvGeom* g);
// The dimensions zero/kernel_scratch.h sizes the Conv kernels' scratch by.
kernel_scratch::ConvDims conv_dims(const ConvGeom& g);

struct PoolGeom {
  int64_t planes = 0;                    // N * C
  int64_t in[kMaxSpatial] = {1, 1, 1};   // input spatial size (D, H, W)
  int64_t out[kMaxSpatial] = {1, 1, 1};  // output spatial size
  Window win;
  bool include_pad = false;
  bool ceil_mode = false;  // windows may reach past the end padding
  int64_t plane() const { return out[0] * out[1] * out[2]; }
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
};

// Checks x [N,C,...] pooled to y [N,C,...] (1 to 3 spatial dimensions)
// against PoolAttrs (every window holds at least one element of x).
Status pool_geometry(const KernelCall& call, const Tensor& x, const Tensor& y, const char* xr, const char* yr,
                     PoolGeom* g);
Status validate_max_pool(const KernelCall& call, PoolGeom* g);
Status validate_max_pool_grad(const KernelCall& call, PoolGeom* g);
Status validate_average_pool(const KernelCall& call, PoolGeom* g);
Status validate_average_pool_grad(const KernelCall& call, PoolGeom* g);

struct BatchNormGeom {
  int64_t n = 1, c = 1, inner = 1;  // x viewed as [n, c, inner]
  double eps = 1e-5, momentum = 0.1;
  int64_t count() const { return n * inner; }
};

// x [N, C, ...] against BatchNormAttrs (training mode).
Status batch_norm_geometry(const KernelCall& call, const Tensor& x, BatchNormGeom* g);
Status validate_batch_norm(const KernelCall& call, BatchNormGeom* g);
Status validate_batch_norm_grad(const KernelCall& call, BatchNormGeom* g);

// ---- optimizers ----------------------------------------------------------

// The optional scalar inputs that follow an optimizer's own (has_scheduled_lr,
// has_grad_scale): F32 scalars in the arena, nullptr when absent.
struct OptimizerScalars {
  const float* lr = nullptr;
  const float* grad_scale = nullptr;
};

// The attributes (in the plan, which outlives the session), the momentum
// buffer (nullptr without momentum) and the optional scalars.
struct SgdGeom {
  const plan::SgdAttrs* attrs;
  float* momentum_buffer;
  OptimizerScalars scalars;
};
struct AdamWGeom {
  const plan::AdamWAttrs* attrs;
  OptimizerScalars scalars;
};
Status sgd_geometry(const KernelCall& call, SgdGeom* g);
Status adamw_geometry(const KernelCall& call, AdamWGeom* g);
// IncrementStep's operand: the I64 step scalar.
Status check_step_counter(const KernelCall& call);
// LearningRate: (step I64 scalar) -> F32 scalar against ScheduleAttrs.
Status learning_rate_geometry(const KernelCall& call, const plan::ScheduleAttrs** attrs);
// SumSquares: (x F32) -> F32 scalar.
Status check_sum_squares(const KernelCall& call);
// ClipCoefficient: (F32 scalar) -> (F32 scalar, F32 scalar) against ClipAttrs.
Status clip_geometry(const KernelCall& call, float* max_norm);

// Dropout and DropoutGrad: (x, step I64 scalar) -> y, F32, same element
// count, against DropoutAttrs.
struct DropoutGeom {
  float ratio, scale;  // scale = 1 / (1 - ratio)
  uint64_t stream, micro_step;
};
Status dropout_geometry(const KernelCall& call, DropoutGeom* g);

}  // namespace zero

#endif  // ZERO_RUNTIME_KERNEL_CHECKS_H
