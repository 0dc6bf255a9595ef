// Fills a backend's kernel table with every op of zero/elementwise_ops.h.
// Both backends name their elementwise kernels alike, each an execute
// template<class Op> with its prepare: binary (prepare_binary), unary,
// derivative (the <Op>Grad opcode), parameterized_unary and
// parameterized_derivative (ops with attributes; prepares shared in
// kernel_checks.h), comparison (prepare_comparison), logical
// (prepare_logical), logical_unary and typed_binary (prepare_typed_binary). So one list registers them.
#ifndef ZERO_RUNTIME_ELEMENTWISE_KERNELS_H
#define ZERO_RUNTIME_ELEMENTWISE_KERNELS_H

#include "backend.h"
#include "kernel_checks.h"
#include "zero/elementwise_ops.h"

#define ZERO_ELEMENTWISE_SET_(opcode, prepare, kernel, op) \
  backend.set(::zero::plan::Opcode::opcode, ::zero::define_kernel<prepare, kernel<elementwise::op>>());
#define ZERO_ELEMENTWISE_BINARY_(op) ZERO_ELEMENTWISE_SET_(op, prepare_binary, binary, op)
#define ZERO_ELEMENTWISE_UNARY_(op) ZERO_ELEMENTWISE_SET_(op, ::zero::check_only<::zero::check_unary>, unary, op)
#define ZERO_ELEMENTWISE_DERIVATIVE_(op) \
  ZERO_ELEMENTWISE_UNARY_(op)            \
  ZERO_ELEMENTWISE_SET_(op##Grad, ::zero::check_only<::zero::check_unary_grad>, derivative, op)
#define ZERO_ELEMENTWISE_ATTRIBUTES_(op)                                                  \
  ZERO_ELEMENTWISE_SET_(op, ::zero::prepare_parameterized_unary, parameterized_unary, op) \
  ZERO_ELEMENTWISE_SET_(op##Grad, ::zero::prepare_parameterized_derivative, parameterized_derivative, op)
#define ZERO_ELEMENTWISE_TYPED_BINARY_(op) ZERO_ELEMENTWISE_SET_(op, prepare_typed_binary, typed_binary, op)
#define ZERO_ELEMENTWISE_COMPARISON_(op) ZERO_ELEMENTWISE_SET_(op, prepare_comparison, comparison, op)
#define ZERO_ELEMENTWISE_LOGICAL_(op) ZERO_ELEMENTWISE_SET_(op, prepare_logical, logical, op)
#define ZERO_ELEMENTWISE_LOGICAL_UNARY_(op) \
  ZERO_ELEMENTWISE_SET_(op, ::zero::check_only<::zero::check_logical_unary>, logical_unary, op)

// Expands, where a TableBackend& `backend` and the kernel templates are in
// scope, to one backend.set per elementwise opcode.
#define ZERO_SET_ELEMENTWISE_KERNELS()                                     \
  ZERO_ELEMENTWISE_BINARY_OPS(ZERO_ELEMENTWISE_BINARY_)                    \
  ZERO_ELEMENTWISE_UNARY_OPS(ZERO_ELEMENTWISE_UNARY_)                      \
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_ELEMENTWISE_DERIVATIVE_) \
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ELEMENTWISE_ATTRIBUTES_) \
  ZERO_ELEMENTWISE_TYPED_BINARY_OPS(ZERO_ELEMENTWISE_TYPED_BINARY_)        \
  ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_ELEMENTWISE_COMPARISON_)            \
  ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_ELEMENTWISE_LOGICAL_)                  \
  ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_ELEMENTWISE_LOGICAL_UNARY_)

#endif  // ZERO_RUNTIME_ELEMENTWISE_KERNELS_H
