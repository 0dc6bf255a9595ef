// The plan format version shared by the compiler's serializer and the
// runtime. Deliberately dependency-free so both sides can include it.
#ifndef ZERO_PLAN_FORMAT_H
#define ZERO_PLAN_FORMAT_H

namespace zero {

// Bump on any incompatible change to runtime/schema/plan.fbs or to the
// semantics in docs/plan-format.md. The runtime refuses other versions.
constexpr unsigned kPlanFormatVersion = 1;

// FlatBuffers file identifier of a plan.
constexpr const char kPlanFileIdentifier[] = "ZPLN";

}  // namespace zero

#endif  // ZERO_PLAN_FORMAT_H
