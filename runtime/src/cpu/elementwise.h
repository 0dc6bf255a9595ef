// The CPU backend's kernels, registered per op family.
#ifndef ZERO_RUNTIME_CPU_ELEMENTWISE_H
#define ZERO_RUNTIME_CPU_ELEMENTWISE_H

#include "backend.h"

namespace zero {

// Every op of zero/elementwise_ops.h and the derivative kernels.
void add_cpu_elementwise_kernels(TableBackend& backend);

}  // namespace zero

#endif  // ZERO_RUNTIME_CPU_ELEMENTWISE_H
