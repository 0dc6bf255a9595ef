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

#endif // ZERO_DIALECTS_ONNX_ONNXDIALECT_H
