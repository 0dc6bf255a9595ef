// Fuzzes the launcher's .npy parser (tools/zero-run/npy.h): parse_npy on
// arbitrary bytes must either fail with a Status or describe an array whose
// data lies inside the image and whose size matches its dtype and shape.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zero::NpyView view{};
  zero::Status st = zero::parse_npy(data, size, "fuzz.npy", &view);
  if (!st.ok()) return 0;
  if (view.dtype != zero::DType::F32 && view.dtype != zero::DType::I64) std::abort();
  uint64_t numel = 1;
  for (int64_t d : view.shape) {
    if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel)) std::abort();
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(numel, uint64_t(zero::dtype_size(view.dtype)), &bytes) || bytes != view.bytes)
    std::abort();
  if (view.bytes > 0) {
    const uintptr_t begin = uintptr_t(data), at = uintptr_t(view.data);
    if (at < begin || at > begin + size || view.bytes > begin + size - at) std::abort();
    // Touch every byte: an out-of-range view is an ASan report.
    volatile uint8_t sum = 0;
    for (uint64_t i = 0; i < view.bytes; ++i) sum = uint8_t(sum + view.data[i]);
  }
  return 0;
}
