//===- OnnxModelLoader.h - read, check and shape-infer an ONNX model ------===//
//
// The part of the frontend that talks to the ONNX library (which throws and
// needs RTTI); it hands the importer a model whose value types are inferred.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H
#define ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H

#include <onnx/onnx_pb.h>
#include <string>

namespace zero::frontend {

/// Reads a binary ModelProto (.onnx) or ONNX's text syntax (.onnxtxt), then
/// runs ONNX shape inference with data propagation so shape subgraphs resolve
/// to static types. On failure returns false and sets `error` to one line.
bool loadOnnxModel(const std::string &path, ::onnx::ModelProto &model, std::string &error);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H
