// The order zero-run reads a dataset's rows in. Rank r of N at step s reads
// the global positions i = (s*N + r)*b + j, j < b; position i is row i mod D
// as stored, or with --shuffle row perm_e[i mod D] of epoch e = i / D, where
// perm_e is a permutation of the D rows drawn from the seed and e (every row
// once per epoch, the same on every rank). The generator, written down so
// that Python can reproduce it (examples/zero_random.py), with splitmix64
// of zero/training_math.h (all arithmetic mod 2^64):
//
//   key = splitmix64(splitmix64(seed) + e)
//   perm = [0, 1, ..., D-1]; for t = D-1 down to 1:
//     j = (splitmix64(key + t) * (t + 1)) >> 64;  swap(perm[t], perm[j])      (Fisher-Yates)
#ifndef ZERO_RUN_DATA_ORDER_H
#define ZERO_RUN_DATA_ORDER_H

#include <cstdint>
#include <vector>

namespace zero {

class DataOrder {
 public:
  DataOrder(uint64_t rows, bool shuffle, uint64_t seed) : rows_(rows), shuffle_(shuffle), seed_(seed) {}

  // The row at global position i. Shuffled, an epoch's permutation is built
  // when one of its positions is first asked for (a rank's positions only
  // grow, so one epoch is kept: 8 bytes a row).
  uint64_t row(uint64_t position);
  uint64_t rows() const { return rows_; }

 private:
  uint64_t rows_;
  bool shuffle_;
  uint64_t seed_;
  uint64_t epoch_ = UINT64_MAX;
  std::vector<uint64_t> permutation_;
};

}  // namespace zero

#endif  // ZERO_RUN_DATA_ORDER_H
