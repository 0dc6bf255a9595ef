// .npy (NumPy format 1.0 / 2.0 / 3.0) reading and writing for little-endian
// float32 and int64 arrays in C order. Files are memory-mapped and read in
// place, so a dataset may be larger than memory; the header is checked
// against the file's size before anything is read.
#ifndef ZERO_RUN_NPY_H
#define ZERO_RUN_NPY_H

#include <cstdint>
#include <string>
#include <vector>

#include "zero/files.h"
#include "zero/runtime.h"

namespace zero {

// An array inside a .npy image; `data` points into the image.
struct NpyView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;  // numel * dtype_size
};

// Parses a complete .npy image of `size` bytes; `what` (the file's path)
// starts every error. Fails unless the data is exactly the header's shape.
Status parse_npy(const uint8_t* image, size_t size, const std::string& what, NpyView* view);

// A .npy file, mapped read-only.
class NpyFile {
 public:
  Status open(const std::string& path);
  const NpyView& array() const { return view_; }

 private:
  MappedFile file_;
  NpyView view_;
};

// Writes atomically (zero/files.h): `path` is complete or unchanged.
Status write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data);

}  // namespace zero

#endif  // ZERO_RUN_NPY_H
