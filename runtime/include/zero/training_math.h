// The per-step scalars of a training run, written once for the CPU kernels,
// the CUDA kernels and the tests: a learning-rate schedule's rate and
// gradient clipping's coefficient (docs/plan-format.md, LearningRate and
// ClipCoefficient). Dependency-free; host and device.
#ifndef ZERO_TRAINING_MATH_H
#define ZERO_TRAINING_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define ZERO_TRAINING_HD __host__ __device__ inline
#else
#define ZERO_TRAINING_HD inline
#endif

namespace zero::training {

// plan::LrSchedule's values, so device code needs no FlatBuffers header.
enum Schedule : int { kConstant = 0, kLinear = 1, kCosine = 2 };

// The rate of optimizer step `step` (the steps completed before it):
// HuggingFace's get_{linear,cosine}_schedule_with_warmup under LambdaLR,
// floored at min_ratio * lr after warmup and held at its value for step =
// total after that (a constant schedule has no end).
ZERO_TRAINING_HD double scheduled_rate(int schedule, double lr, int64_t warmup, int64_t total, double min_ratio,
                                       int64_t step) {
  const int64_t s = schedule != kConstant && step > total ? total : step;
  if (s < warmup) return lr * double(s) / double(warmup > 1 ? warmup : 1);
  const double span = double(total - warmup > 1 ? total - warmup : 1);
  double f = 1.0;
  if (schedule == kLinear) {
    f = double(total - s) / span;
  } else if (schedule == kCosine) {
    f = 0.5 * (1.0 + cos(3.14159265358979323846 * double(s - warmup) / span));
  }
  if (f < 0) f = 0;
  return lr * (min_ratio + (1.0 - min_ratio) * f);
}

// torch.nn.utils.clip_grad_norm_: the total norm and the factor every
// gradient is multiplied by (its 1e-6 keeps a zero norm finite).
struct Clip {
  double norm, coefficient;
};
ZERO_TRAINING_HD Clip clip_coefficient(double sum_squares, double max_norm) {
  const double norm = sqrt(sum_squares);
  const double c = max_norm / (norm + 1e-6);
  return {norm, c < 1.0 ? c : 1.0};
}

}  // namespace zero::training

#endif  // ZERO_TRAINING_MATH_H
