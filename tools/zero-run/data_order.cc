#include "data_order.h"

#include <numeric>
#include <utility>

#include "zero/training_math.h"

namespace zero {

using training::splitmix64;

uint64_t DataOrder::row(uint64_t position) {
  if (!shuffle_) return position % rows_;
  const uint64_t epoch = position / rows_;
  if (epoch != epoch_) {
    permutation_.resize(rows_);
    std::iota(permutation_.begin(), permutation_.end(), uint64_t(0));
    const uint64_t key = splitmix64(splitmix64(seed_) + epoch);
    for (uint64_t t = rows_ - 1; t > 0; --t) {
      const uint64_t j = uint64_t((unsigned __int128)splitmix64(key + t) * (t + 1) >> 64);
      std::swap(permutation_[t], permutation_[j]);
    }
    epoch_ = epoch;
  }
  return permutation_[position % rows_];
}

}  // namespace zero
