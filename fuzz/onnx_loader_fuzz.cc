// Fuzzes the ONNX model loader (frontends/onnx/OnnxModelLoader.h): what
// zero-opt does to a model file before any MLIR — parse, check operators,
// graph structure and attributes, then ONNX shape inference. On arbitrary
// bytes parseOnnxModel must return, never crash or throw, and a rejection
// must say why on one line (zero-opt prints it as one diagnostic).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "frontends/onnx/OnnxModelLoader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // ONNX's text syntax starts with '<' (the model's header); a binary
  // ModelProto never does (0x3c would be an end-group tag), so each input is
  // read one way, as zero-opt reads .onnxtxt and .onnx files.
  bool text = size > 0 && data[0] == '<';
  onnx::ModelProto model;
  std::string error;
  if (!zero::frontend::parseOnnxModel(bytes, text, model, error) &&
      (error.empty() || error.find('\n') != std::string::npos))
    std::abort();
  return 0;
}
