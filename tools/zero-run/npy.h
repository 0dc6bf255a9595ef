// Minimal .npy (NumPy format 1.0 / 2.0 / 3.0) reading and writing for
// little-endian float32 and int64 arrays in C order.
#ifndef ZERO_RUN_NPY_H
#define ZERO_RUN_NPY_H

#include <cstdint>
#include <string>
#include <vector>

#include "zero/runtime.h"

namespace zero {

struct NpyArray {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // numel * dtype_size bytes
};

Status read_npy(const std::string& path, NpyArray* array);
Status write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data);

}  // namespace zero

#endif  // ZERO_RUN_NPY_H
