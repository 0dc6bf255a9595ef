// Launchers of the CUDA kernels (one .cu file per op family, as the CPU
// kernels), called by the CUDA backend's
// host code (backend.cc) after it has validated the operands. Plain
// C++ types only, so backend.cc compiles with the host compiler. Every
// launcher enqueues on `stream` and returns the launch error.
#ifndef ZERO_RUNTIME_CUDA_KERNELS_H
#define ZERO_RUNTIME_CUDA_KERNELS_H

#include <cuda_runtime.h>

#include <cstdint>

#include "zero/elementwise_ops.h"
#include "zero/index_ops.h"
#include "zero/reduce_ops.h"
#include "zero/sliding_window.h"

namespace zero::cuda {

constexpr int kRank = 8;

// Data errors the kernels report through the device error word: the first
// one wins, encoded as code * 1024 + opcode.
enum ErrorCode : int { kErrIndex = 1, kErrLabel = 2, kErrStep = 3, kErrTopK = 4 };

// An output shape and up to three operands' element strides into it (0 along
// broadcast dimensions).
struct Strided {
  int ndim = 0;
  int64_t dims[kRank] = {};
  int64_t s[3][kRank] = {};
};

// The elementwise ops of zero/elementwise_ops.h, instantiated for every
// listed op in cuda/elementwise.cu. y = Op(a, b); g == nullptr: same shape
// (or b_scalar: b is one element).
template <class Op>
cudaError_t binary(cudaStream_t st, const float* a, const float* b, float* y, int64_t n, bool b_scalar,
                   const Strided* g);
template <class Op>
cudaError_t unary(cudaStream_t st, const float* x, float* y, int64_t n);
// dx = Op::derivative(dy, saved).
template <class Op>
cudaError_t derivative(cudaStream_t st, const float* dy, const float* saved, float* dx, int64_t n);
// Comparisons and logical ops: y (I64 0/1) over g's shape, a along g.s[0]
// and b along g.s[1]; comparisons read F32 (f32) or I64 operands.
template <class Op>
cudaError_t comparison(cudaStream_t st, const void* a, const void* b, bool f32, int64_t* y, int64_t n,
                       const Strided& g);
template <class Op>
cudaError_t logical(cudaStream_t st, const int64_t* a, const int64_t* b, int64_t* y, int64_t n, const Strided& g);
template <class Op>
cudaError_t logical_unary(cudaStream_t st, const int64_t* x, int64_t* y, int64_t n);
// Mod and FMod: y over g's shape as comparison, F32 (f32) or I64 throughout.
template <class Op>
cudaError_t typed_binary(cudaStream_t st, const void* a, const void* b, bool f32, void* y, int64_t n, const Strided& g);
// The ops with attributes.
template <class Op>
cudaError_t parameterized_unary(cudaStream_t st, const float* x, float* y, int64_t n, elementwise::Params p);
template <class Op>
cudaError_t parameterized_derivative(cudaStream_t st, const float* dy, const float* saved, float* dx, int64_t n,
                                     elementwise::Params p);
cudaError_t cast_i64_f32(cudaStream_t st, const int64_t* x, float* y, int64_t n);
cudaError_t cast_f32_i64(cudaStream_t st, const float* x, int64_t* y, int64_t n);
cudaError_t fill_f32(cudaStream_t st, float* y, float v, int64_t n);
// y = x * scale where zero/training_math.h's dropout_keeps(key(step), i,
// ratio), else 0; the key from the device step counter and the host's parts.
cudaError_t dropout(cudaStream_t st, const float* x, float* y, int64_t n, const int64_t* step, uint64_t seed,
                    uint64_t micro_step, uint32_t rank, uint64_t stream, float ratio, float scale);
cudaError_t fill_i64(cudaStream_t st, int64_t* y, int64_t v, int64_t n);
cudaError_t scale(cudaStream_t st, float* y, float v, int64_t n);

// dst[o] = src[sum_d idx_d(o) * g.s[0][d]] over g's shape; elem 4 or 8 bytes.
cudaError_t strided_gather(cudaStream_t st, const void* src, void* dst, int elem, const Strided& g, int64_t n);
// dst[sum_d idx_d(o) * g.s[0][d]] = src[o] (SliceGrad; the caller zeroes dst).
cudaError_t strided_scatter(cudaStream_t st, const float* src, float* dst, const Strided& g, int64_t n);
// out[o] = cond[..] != 0 ? x[..] : y[..], strides s[0] cond, s[1] x, s[2] y.
cudaError_t where(cudaStream_t st, const int64_t* cond, const void* x, const void* y, void* out, int elem,
                  const Strided& g, int64_t n);

// The reduction `kind` (zero/reduce_ops.h) over the reduced dims. `kept` is the output's shape over the
// kept input dims with their input strides in s[0]; `red` the reduced dims
// with their input strides in s[0]. Few outputs over many elements split
// each output's elements into kernel_scratch::reduce_slices() blocks
// (zero/kernel_scratch.h) whose double partial sums go to `partial`
// (out_numel * slices doubles; unused for 1 slice).
cudaError_t reduce(cudaStream_t st, const float* x, float* y, const Strided& kept, int64_t out_numel,
                   const Strided& red, int64_t count, reduce::Kind kind, double* partial);

// ArgMax (max) or ArgMin of each [o, :, i] row of x [outer, n >= 1, inner]
// into y [outer, inner]: the first index of the extreme, the last with `last`.
cudaError_t arg_reduce(cudaStream_t st, const float* x, int64_t* y, int64_t outer, int64_t n, int64_t inner, bool max,
                       bool last);
// The running sum of each row of x [outer, n, inner] into y (may be x), F32
// (f32, accumulated in double) or I64.
cudaError_t cumsum(cudaStream_t st, const void* x, void* y, bool f32, int64_t outer, int64_t n, int64_t inner,
                   bool exclusive, bool reverse);

// Softmax family over [outer, n, inner].
cudaError_t softmax(cudaStream_t st, const float* x, float* y, int64_t outer, int64_t n, int64_t inner, bool log);
cudaError_t softmax_grad(cudaStream_t st, const float* dy, const float* y, float* dx, int64_t outer, int64_t n,
                         int64_t inner, bool log);

// Losses over scores [n, c, inner], labels [n, inner], optional class
// weights [c] (nullptr: all 1). reduction: 0 sum, 1 mean (divided by the
// summed weight of counted labels), 2 none. `scratch` holds n * inner
// doubles + 2 doubles.
struct LossArgs {
  int64_t n, c, inner;
  int reduction;
  bool has_ignore;
  int64_t ignore_index;
  int opcode;
};
cudaError_t loss(cudaStream_t st, const LossArgs& a, bool softmax, const float* x, const int64_t* labels,
                 const float* weights, float* out, float* log_prob, double* scratch, int* err);
cudaError_t loss_grad(cudaStream_t st, const LossArgs& a, bool softmax, const float* dloss, const float* x,
                      const int64_t* labels, const float* weights, float* dx, double* scratch, int* err);

// Gather over data [outer, n, inner] with q indices; elem 4 or 8 bytes.
cudaError_t gather(cudaStream_t st, const void* data, const int64_t* idx, void* y, int elem, int64_t outer, int64_t n,
                   int64_t inner, int64_t q, int opcode, int* err);
// ddata (zeroed by the caller) += dy scattered by the indices (atomicAdd).
cudaError_t gather_grad(cudaStream_t st, const float* dy, const int64_t* idx, float* dd, int64_t outer, int64_t n,
                        int64_t inner, int64_t q, int opcode, int* err);

// GatherElements, ScatterElements and their gradients, one thread per row
// of `rows` (kernel_checks.h's ElementsGeom: rows.s[0] the indices'
// strides, rows.s[1] data's), each walking its `len` indices in order, so
// repeated indices combine in index order as on the CPU.
struct ElementsArgs {
  Strided rows;
  int64_t nrows, len, istep, n, dstep;
  int opcode;
};
// y[at] = data[d]; elem 4 or 8 bytes.
cudaError_t gather_elements(cudaStream_t st, const ElementsArgs& a, const void* data, const int64_t* idx, void* y,
                            int elem, int* err);
// y (holding data already) [d] = combine(kind, y[d], updates[at]), or 0
// where updates is null (ScatterElementsGrad); F32 (f32) or I64.
cudaError_t scatter_elements(cudaStream_t st, const ElementsArgs& a, const int64_t* idx, const void* updates, void* y,
                             bool f32, index::Scatter kind, int* err);
// dd (zeroed by the caller) [d] += dy[at].
cudaError_t gather_elements_grad(cudaStream_t st, const ElementsArgs& a, const float* dy, const int64_t* idx, float* dd,
                                 int* err);

// GatherND, ScatterND and their gradients, one thread per element of the
// slices (kernel_checks.h's NDGeom). Repeated tuples race on a write
// (reduction none: one of them wins) and combine atomically otherwise.
struct NDArgs {
  int64_t tuples, k, slice;
  int64_t dims[kRank], strides[kRank];
  int opcode;
};
cudaError_t gather_nd(cudaStream_t st, const NDArgs& a, const void* data, const int64_t* idx, void* y, int elem,
                      int* err);
// y (holding data already) at each slice = combine(kind, y, updates), or 0
// where updates is null (ScatterNDGrad); F32 (f32) or I64.
cudaError_t scatter_nd(cudaStream_t st, const NDArgs& a, const int64_t* idx, const void* updates, void* y, bool f32,
                       index::Scatter kind, int* err);

// TopK over x [outer, n, inner], one thread per row inserting into the
// outputs [outer, k, inner] (O(n k) per row); `k_in` (or null) is the K
// input, checked against k.
cudaError_t top_k(cudaStream_t st, const float* x, float* values, int64_t* indices, int64_t outer, int64_t n,
                  int64_t inner, int64_t k, bool largest, const int64_t* k_in, int opcode, int* err);

cudaError_t layer_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* y, float* mean,
                       float* inv, int64_t outer, int64_t inner, float eps);
// `partial`: kernel_scratch::cuda_layer_norm_grad_bytes(outer, inner, true)
// for the partial sums of dscale and dbias over chunks of rows.
cudaError_t layer_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t outer, int64_t inner,
                            double* partial);

// Convolution over 1 to 3 spatial dimensions held as 3-D
// (zero/sliding_window.h): x [n, c, in...] * w [m, c/group, win.k...] ->
// y [n, m, out...].
struct ConvArgs {
  int64_t n, c, m, group;
  int64_t in[sliding_window::kMaxSpatial], out[sliding_window::kMaxSpatial];
  sliding_window::Window win;
};
// col [C/group * kd * kh * kw, nc * od * oh * ow] of images [n0, n0 + nc),
// group gi (the CPU's im2col layout, 0 in the padding).
cudaError_t im2col(cudaStream_t st, const ConvArgs& a, const float* x, int64_t n0, int64_t nc, int64_t gi, float* col);
// Its adjoint as a gather: overwrites dx's channels of group gi for images
// [n0, n0 + nc) with the sums of the columns that read them (no atomics).
cudaError_t col2im(cudaStream_t st, const ConvArgs& a, const float* col, int64_t n0, int64_t nc, int64_t gi, float* dx);
// y [n, m, plane] += b[m].
cudaError_t conv_bias(cudaStream_t st, float* y, const float* b, int64_t n, int64_t m, int64_t plane);

// Pooling over planes of 1 to 3 spatial dimensions held as 3-D; the end pads
// bound the count_include_pad divisor of a ceil_mode window reaching past
// them.
struct PoolArgs {
  int64_t planes;
  int64_t in[sliding_window::kMaxSpatial], out[sliding_window::kMaxSpatial];
  sliding_window::Window win;
  bool include_pad;
};
// argmax (may be nullptr): the index within the plane, first maximum wins.
cudaError_t max_pool(cudaStream_t st, const PoolArgs& a, const float* x, float* y, int64_t* argmax);
// Zeroes dx, then scatters dy by argmax (atomicAdd); an argmax outside the
// plane is a step error.
cudaError_t max_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, const int64_t* argmax, float* dx,
                          int opcode, int* err);
cudaError_t average_pool(cudaStream_t st, const PoolArgs& a, const float* x, float* y);
// Overwrites dx (a gather over the windows, no atomics).
cudaError_t average_pool_grad(cudaStream_t st, const PoolArgs& a, const float* dy, float* dx);

// Training-mode BatchNormalization over x [n, c, inner], one block per
// channel; smean and sinv may be nullptr.
cudaError_t batch_norm(cudaStream_t st, const float* x, const float* scale, const float* bias, float* rmean,
                       float* rvar, float* y, float* smean, float* sinv, int64_t n, int64_t c, int64_t inner,
                       double eps, double momentum);
cudaError_t batch_norm_grad(cudaStream_t st, const float* dy, const float* x, const float* scale, const float* mean,
                            const float* inv, float* dx, float* dscale, float* dbias, int64_t n, int64_t c,
                            int64_t inner);

// The optimizers take the plan's scheduled rate (lr_ptr, a device scalar,
// replacing lr) and the gradient's scale (scale_ptr) where they are not null.
cudaError_t sgd(cudaStream_t st, float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd,
                const float* lr_ptr, const float* scale_ptr);
cudaError_t adamw(cudaStream_t st, float* p, const float* g, float* m, float* v, const int64_t* step, int64_t n,
                  double lr, double b1, double b2, float eps, double wd, const float* lr_ptr, const float* scale_ptr,
                  int opcode, int* err);
cudaError_t increment(cudaStream_t st, int64_t* step);
// zero/training_math.h on the device: *rate from *step; (*coefficient, *norm)
// from *sum_squares.
cudaError_t learning_rate(cudaStream_t st, const int64_t* step, float* rate, int schedule, double lr, int64_t warmup,
                          int64_t total, double min_ratio);
cudaError_t clip_coefficient(cudaStream_t st, const float* sum_squares, float* coefficient, float* norm,
                             double max_norm);

}  // namespace zero::cuda

#endif  // ZERO_RUNTIME_CUDA_KERNELS_H
