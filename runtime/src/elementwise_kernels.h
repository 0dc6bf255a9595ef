// Fills a backend's kernel table with every op of zero/elementwise_ops.h.
// Both backends name their elementwise kernel templates alike, each
// template<class Op, bool kRun> (kRun false: the operand checks only, run at
// load), so one list registers them: binary, unary, derivative (the <Op>Grad
// opcode), parameterized_unary and parameterized_derivative (ops with
// attributes), comparison, logical and logical_unary.
#ifndef ZERO_RUNTIME_ELEMENTWISE_KERNELS_H
#define ZERO_RUNTIME_ELEMENTWISE_KERNELS_H

#include "backend.h"
#include "zero/elementwise_ops.h"

#define ZERO_ELEMENTWISE_SET_(opcode, kernel, op) \
  backend.set(::zero::plan::Opcode::opcode, kernel<elementwise::op, true>, kernel<elementwise::op, false>);
#define ZERO_ELEMENTWISE_BINARY_(op) ZERO_ELEMENTWISE_SET_(op, binary, op)
#define ZERO_ELEMENTWISE_UNARY_(op) ZERO_ELEMENTWISE_SET_(op, unary, op)
#define ZERO_ELEMENTWISE_DERIVATIVE_(op) \
  ZERO_ELEMENTWISE_SET_(op, unary, op) ZERO_ELEMENTWISE_SET_(op##Grad, derivative, op)
#define ZERO_ELEMENTWISE_ATTRIBUTES_(op) \
  ZERO_ELEMENTWISE_SET_(op, parameterized_unary, op) ZERO_ELEMENTWISE_SET_(op##Grad, parameterized_derivative, op)
#define ZERO_ELEMENTWISE_COMPARISON_(op) ZERO_ELEMENTWISE_SET_(op, comparison, op)
#define ZERO_ELEMENTWISE_LOGICAL_(op) ZERO_ELEMENTWISE_SET_(op, logical, op)
#define ZERO_ELEMENTWISE_LOGICAL_UNARY_(op) ZERO_ELEMENTWISE_SET_(op, logical_unary, op)

// Expands, where a TableBackend& `backend` and the kernel templates are in
// scope, to one backend.set per elementwise opcode.
#define ZERO_SET_ELEMENTWISE_KERNELS()                                     \
  ZERO_ELEMENTWISE_BINARY_OPS(ZERO_ELEMENTWISE_BINARY_)                    \
  ZERO_ELEMENTWISE_UNARY_OPS(ZERO_ELEMENTWISE_UNARY_)                      \
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_DERIVATIVE(ZERO_ELEMENTWISE_DERIVATIVE_) \
  ZERO_ELEMENTWISE_UNARY_OPS_WITH_ATTRIBUTES(ZERO_ELEMENTWISE_ATTRIBUTES_) \
  ZERO_ELEMENTWISE_COMPARISON_OPS(ZERO_ELEMENTWISE_COMPARISON_)            \
  ZERO_ELEMENTWISE_LOGICAL_OPS(ZERO_ELEMENTWISE_LOGICAL_)                  \
  ZERO_ELEMENTWISE_LOGICAL_UNARY_OPS(ZERO_ELEMENTWISE_LOGICAL_UNARY_)

#endif  // ZERO_RUNTIME_ELEMENTWISE_KERNELS_H
