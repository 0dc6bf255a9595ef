// Operand checks and geometry shared by the CPU and CUDA backends: Gemm and MatMul.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "kernel_checks.h"
#include "zero/shape_rules.h"

namespace zero {

// ---- Gemm / MatMul -------------------------------------------------------

Status gemm_geometry(const KernelCall& call, GemmGeom* g, int64_t* sc) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  const auto* attrs = call.inst->attrs_as_GemmAttrs();
  g->ta = attrs && attrs->trans_a();
  g->tb = attrs && attrs->trans_b();
  g->alpha = attrs ? attrs->alpha() : 1.f;
  g->beta = attrs ? attrs->beta() : 1.f;
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  if (a.ndim != 2 || b.ndim != 2 || y.ndim != 2)
    return fail(call, "A, B and Y must be 2-D, got " + tensor_shape_string(a) + ", " + tensor_shape_string(b) + ", " +
                          tensor_shape_string(y));
  shape_rules::MatrixProduct product;
  if (!shape_rules::matrix_product(a.dims[0], a.dims[1], g->ta, b.dims[0], b.dims[1], g->tb, &product) ||
      y.dims[0] != product.m || y.dims[1] != product.n)
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  if (!fits_int(product.m) || !fits_int(product.n) || !fits_int(product.k))
    return fail(call, "dimensions exceed BLAS int range");
  g->m = product.m;
  g->n = product.n;
  g->k = product.k;
  g->with_c = call.num_in > 2 && g->beta != 0.f;
  if (g->with_c) {
    const Tensor& c = call.in[2];
    ZERO_RETURN_IF_ERROR(expect_f32(call, c, "C"));
    if (!broadcast_strides(c, y, sc))
      return fail(call, "C " + tensor_shape_string(c) + " does not broadcast to " + tensor_shape_string(y));
  }
  return Status();
}

Status matmul_geometry(const KernelCall& call, MatMulGeom* g) {
  const Tensor &a = call.in[0], &b = call.in[1], &y = call.out[0];
  ZERO_RETURN_IF_ERROR(expect_f32(call, a, "A"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, b, "B"));
  ZERO_RETURN_IF_ERROR(expect_f32(call, y, "Y"));
  const auto mismatch = [&] {
    return fail(call, "shapes " + tensor_shape_string(a) + " x " + tensor_shape_string(b) + " -> " +
                          tensor_shape_string(y) + " do not match");
  };
  if (a.ndim < 1 || b.ndim < 1) return mismatch();
  // numpy: a 1-D A is a row vector, a 1-D B a column vector; both extra
  // dimensions are dropped from the result.
  g->m = a.ndim == 1 ? 1 : a.dims[a.ndim - 2];
  g->k = a.dims[a.ndim - 1];
  const int64_t kb = b.ndim == 1 ? b.dims[0] : b.dims[b.ndim - 2];
  g->n = b.ndim == 1 ? 1 : b.dims[b.ndim - 1];
  if (g->k != kb) return mismatch();
  // Batch dims: A's and B's leading dims broadcast against each other.
  Tensor ba, bb;
  ba.ndim = std::max(a.ndim - 2, 0);
  bb.ndim = std::max(b.ndim - 2, 0);
  std::copy(a.dims, a.dims + ba.ndim, ba.dims);
  std::copy(b.dims, b.dims + bb.ndim, bb.dims);
  Tensor& batch = g->batch;
  batch.ndim = std::max(ba.ndim, bb.ndim);
  batch.numel = 1;
  for (int i = 0; i < batch.ndim; ++i) {
    int ia = i - (batch.ndim - ba.ndim), ib = i - (batch.ndim - bb.ndim);
    int64_t da = ia >= 0 ? ba.dims[ia] : 1, db = ib >= 0 ? bb.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return mismatch();
    batch.dims[i] = std::max(da, db);
    if (da == 0 || db == 0) batch.dims[i] = 0;
    batch.numel *= batch.dims[i];
  }
  // Expected output shape.
  Tensor expect;
  expect.ndim = batch.ndim;
  std::copy(batch.dims, batch.dims + batch.ndim, expect.dims);
  if (a.ndim > 1) expect.dims[expect.ndim++] = g->m;
  if (b.ndim > 1) expect.dims[expect.ndim++] = g->n;
  if (expect.ndim > kMaxRank || !same_shape(expect, y)) return mismatch();
  if (!fits_int(g->m) || !fits_int(g->n) || !fits_int(g->k)) return fail(call, "dimensions exceed BLAS int range");
  g->batch_a = g->batch_b = 1;
  for (int i = 0; i < ba.ndim; ++i) g->batch_a *= ba.dims[i];
  for (int i = 0; i < bb.ndim; ++i) g->batch_b *= bb.dims[i];
  ba.numel = g->batch_a;
  bb.numel = g->batch_b;
  broadcast_strides(ba, batch, g->sa);
  broadcast_strides(bb, batch, g->sb);
  return Status();
}

}  // namespace zero
