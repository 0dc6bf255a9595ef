//===- OnnxModelLoader.cpp ------------------------------------------------===//

#include "frontends/onnx/OnnxModelLoader.h"

#include <onnx/defs/parser.h>
#include <onnx/shape_inference/implementation.h>

#include <fstream>
#include <sstream>

namespace zero::frontend {

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

bool loadOnnxModel(const std::string &path, onnx::ModelProto &model, std::string &error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot open '" + path + "'";
    return false;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string bytes = buffer.str();

  if (endsWith(path, ".onnxtxt")) {
    onnx::OnnxParser parser(bytes.c_str());
    auto status = parser.Parse(model);
    if (!status.IsOK()) {
      std::string message = status.ErrorMessage();
      std::replace(message.begin(), message.end(), '\n', ' ');
      error = "not valid ONNX text: " + message;
      return false;
    }
  } else if (!model.ParseFromString(bytes) || !model.has_graph()) {
    error = "not a valid ONNX model (truncated or not an ONNX protobuf)";
    return false;
  }

  try {
    onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0,
                                        /*data_prop=*/true);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception &e) {
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    error = "ONNX shape inference failed: " + message;
    return false;
  }
  return true;
}

} // namespace zero::frontend
