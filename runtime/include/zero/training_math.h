// The per-step math of a training run, written once for the CPU kernels, the
// CUDA kernels, zero-run and the tests: a learning-rate schedule's rate,
// gradient clipping's coefficient and dropout's masks (docs/plan-format.md:
// LearningRate, ClipCoefficient, Dropout), and the counter-based generator
// behind the masks and zero-run's shuffled epochs. examples/zero_random.py
// is the same generator in Python. Dependency-free; host and device.
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

// splitmix64 (Steele, Lea and Flood): a counter-based generator, one 64-bit
// value per counter, the same on every machine.
ZERO_TRAINING_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  uint64_t z = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The key of one Dropout's masks in one micro-step: chained through
// splitmix64 from the run's seed, the optimizer step, the micro-step, the
// rank and the Dropout's stream (its place among the model's Dropouts), so
// masks are independent across all five and reproducible from them.
ZERO_TRAINING_HD uint64_t dropout_key(uint64_t seed, uint64_t step, uint64_t micro_step, uint64_t rank,
                                      uint64_t stream) {
  uint64_t key = splitmix64(seed);
  key = splitmix64(key + step);
  key = splitmix64(key + micro_step);
  key = splitmix64(key + rank);
  return splitmix64(key + stream);
}

// Whether element i survives: its uniform number in [0, 1) (the top 24 bits
// of splitmix64(key + i), exact in float) is at least the ratio.
ZERO_TRAINING_HD bool dropout_keeps(uint64_t key, uint64_t i, float ratio) {
  return float(splitmix64(key + i) >> 40) * (1.0f / 16777216.0f) >= ratio;
}

}  // namespace zero::training

#endif  // ZERO_TRAINING_MATH_H
