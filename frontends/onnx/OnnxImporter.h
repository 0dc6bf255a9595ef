//===- OnnxImporter.h - ONNX model to the onnx dialect --------------------===//

#ifndef ZERO_FRONTENDS_ONNX_ONNXIMPORTER_H
#define ZERO_FRONTENDS_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace zero::frontend {

/// Imports the ONNX model at `path` (.onnx or .onnxtxt) as
///
///   module attributes {zero.source_model = dense_resource<...>} {
///     ml_program.global private mutable @"<initializer>"(dense_resource<...>)
///     func.func @main(%input: tensor<...> {zero.input = "<name>"}, ...) -> tensor<f32>
///   }
///
/// Float initializers become mutable globals (the trainable parameters); the
/// function computes the first graph output, which must be a scalar float
/// loss. Only nodes the loss depends on through data operands are imported,
/// so shape subgraphs that ONNX shape inference resolved never reach the IR.
/// Errors are emitted as diagnostics naming the file, node, op and opset;
/// returns null on failure. With `forwardOnly`, @main returns every graph
/// output (named by `zero.output` result attributes) and need not return a
/// loss: the model is evaluated, not trained.
mlir::OwningOpRef<mlir::ModuleOp> importOnnxModel(mlir::MLIRContext &context,
                                                  const std::string &path,
                                                  bool forwardOnly = false);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_ONNXIMPORTER_H
