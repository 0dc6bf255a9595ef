// Writing the trained model back as ONNX (only when built with ONNX).
#ifndef ZERO_RUN_ONNX_EXPORT_H
#define ZERO_RUN_ONNX_EXPORT_H

#include <cstdint>
#include <string>
#include <vector>

#include "zero/runtime.h"

namespace zero {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// Parses `model` (a serialized ModelProto), sets one FLOAT initializer per
// parameter (replacing any of the same name) and writes it to `path`.
Status export_onnx(const uint8_t* model, size_t size, const std::vector<NamedTensor>& params, const std::string& path);

}  // namespace zero

#endif  // ZERO_RUN_ONNX_EXPORT_H
