//===- OnnxDialect.h - ONNX operators with static shapes ------------------===//

#ifndef ZERO_DIALECTS_ONNX_ONNXDIALECT_H
#define ZERO_DIALECTS_ONNX_ONNXDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Onnx/OnnxDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/Onnx/OnnxOps.h.inc"

namespace zero::onnx {

/// Marks an ml_program.global whose ONNX initializer a BatchNormalization
/// reads as its running mean or variance (inputs 3 and 4). The importer
/// records what ONNX says; zero-build-train-step decides what that means
/// for training.
inline constexpr llvm::StringLiteral kRunningStatisticsAttr = "onnx.running_statistics";

/// Inference-mode batch normalization as elementwise ops:
/// (x - mean) / sqrt(var + epsilon) * scale + bias, the per-channel vectors
/// broadcast along dimension 1 of x (of type `type`).
mlir::Value buildBatchNormalizationInference(mlir::OpBuilder &b, mlir::Location loc,
                                             mlir::RankedTensorType type, mlir::Value x,
                                             mlir::Value scale, mlir::Value bias,
                                             mlir::Value mean, mlir::Value var, float epsilon);

} // namespace zero::onnx

#endif // ZERO_DIALECTS_ONNX_ONNXDIALECT_H
