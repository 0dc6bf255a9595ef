//===- GraphImporter.h - state of one ONNX graph's import -------*- C++ -*-===//
//
// Internal to the frontend. The importer is one class whose parts live by
// concern: the driver (OnnxImporter.cpp: inputs, outputs, value lookup), the
// constant evaluator (OnnxConstantEvaluator.cpp: shape subgraphs folded to
// int64 constants), the parameters (OnnxParameters.cpp: initializers to
// ml_program.global) and the handlers (OnnxHandlers.cpp: the table's
// builders, one per operator row, and the typed attribute readers).
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_GRAPHIMPORTER_H
#define ZERO_FRONTENDS_ONNX_GRAPHIMPORTER_H

#include "frontends/onnx/OnnxModelLoader.h"
#include "frontends/onnx/SupportedOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace zero::frontend {

/// An int64 tensor known at compile time (shapes, indices, masks).
struct IntTensor {
  llvm::SmallVector<int64_t> shape;
  llvm::SmallVector<int64_t> values;
};

class GraphImporter {
public:
  GraphImporter(mlir::MLIRContext &context, const std::string &path,
                const ::onnx::ModelProto &model, const ExternalData &external, bool forwardOnly);

  /// The module, or null after an error was emitted.
  mlir::OwningOpRef<mlir::ModuleOp> run();

  //===--------------------------------------------------------------------===//
  // Services for the handlers.
  //===--------------------------------------------------------------------===//

  mlir::OpBuilder builder;
  /// The model's opset of the default domain.
  int64_t opset = 0;

  mlir::Location nodeLoc(const ::onnx::NodeProto &node);
  /// An error on `node`, its message prefixed with the node, op and opset.
  mlir::InFlightDiagnostic nodeError(const ::onnx::NodeProto &node);

  /// The value named `name`: computed by an imported node, a graph input, a
  /// parameter read, a constant, or an int64 value folded at compile time.
  /// `node` (null for graph outputs) is the reader, for diagnostics.
  mlir::FailureOr<mlir::Value> lookup(const std::string &name, const ::onnx::NodeProto *node);
  /// The node's data operands (dataOperands): absent optional ones are null.
  mlir::FailureOr<llvm::SmallVector<mlir::Value>> dataInputs(const ::onnx::NodeProto &node);
  /// The static type ONNX shape inference gave the node's output `index`.
  mlir::FailureOr<mlir::RankedTensorType> outputType(const ::onnx::NodeProto &node, int index);
  /// Binds the node's output `index` to `value`; unless `index` names an
  /// absent optional output, which is fine.
  void setOutput(const ::onnx::NodeProto &node, int index, mlir::Value value);
  /// Binds output 0 to `value`, which must have the inferred type.
  mlir::LogicalResult setResult(const ::onnx::NodeProto &node, mlir::Value value,
                                mlir::Type inferred);
  /// True if the node has output `index` and it is not left out ("").
  static bool hasOutput(const ::onnx::NodeProto &node, int index);
  /// Whether any node reads value `name` or the graph returns it.
  bool isRead(const std::string &name) const;
  /// Whether the model is imported to be trained (not --forward-only).
  bool importsForTraining() const { return !forwardOnly; }
  /// The next training-mode Dropout's stream: its place among the model's
  /// training-mode Dropouts in node order, which keys its masks.
  int64_t takeDropoutStream() { return nextDropoutStream++; }
  /// The ONNX type of value `name`, or null.
  const ::onnx::TypeProto *valueType(const std::string &name) const {
    return valueTypes.lookup(name);
  }
  /// The tensor of an initializer that is not a parameter, or of a
  /// Constant's output; null otherwise.
  const ::onnx::TensorProto *constantTensor(const std::string &name) const {
    return constants.lookup(name);
  }
  /// The FLOAT values of `name` where they are known at compile time: an
  /// initializer, a Constant's output or a Concat of such (PyTorch writes
  /// nn.Upsample's scales that way).
  std::optional<llvm::SmallVector<float>> knownFloats(const std::string &name);
  /// The int64 values of `name`, which must be known at compile time.
  mlir::FailureOr<llvm::SmallVector<int64_t>> constantInts(const std::string &name,
                                                           const ::onnx::NodeProto &node);
  /// The int64 values of `name` where they are known at compile time.
  std::optional<llvm::SmallVector<int64_t>> knownInts(const std::string &name);
  mlir::FailureOr<mlir::DenseElementsAttr> convertTensor(const ::onnx::TensorProto &tensor,
                                                         mlir::Location loc);
  /// A tensor's raw bytes, in the model or mapped from its external data;
  /// none when its values are in a typed field.
  std::optional<llvm::StringRef> rawData(const ::onnx::TensorProto &tensor) const;

  /// Typed attribute readers: each returns the attribute's value, or
  /// `fallback` if the node leaves it out; an attribute of another type is
  /// an error naming node, attribute and both types. Every read must be of
  /// an attribute the node's row lists, with that type.
  mlir::FailureOr<int64_t> intAttr(const ::onnx::NodeProto &node, llvm::StringRef name,
                                   int64_t fallback);
  /// An INT attribute without a default: nullopt if left out.
  mlir::FailureOr<std::optional<int64_t>> optionalIntAttr(const ::onnx::NodeProto &node,
                                                          llvm::StringRef name);
  mlir::FailureOr<float> floatAttr(const ::onnx::NodeProto &node, llvm::StringRef name,
                                   float fallback);
  mlir::FailureOr<std::string> stringAttr(const ::onnx::NodeProto &node, llvm::StringRef name,
                                          llvm::StringRef fallback);
  mlir::FailureOr<llvm::SmallVector<int64_t>>
  intsAttr(const ::onnx::NodeProto &node, llvm::StringRef name,
           llvm::ArrayRef<int64_t> fallback = {});
  mlir::FailureOr<llvm::SmallVector<float>> floatsAttr(const ::onnx::NodeProto &node,
                                                       llvm::StringRef name);
  mlir::FailureOr<llvm::SmallVector<std::string>> stringsAttr(const ::onnx::NodeProto &node,
                                                              llvm::StringRef name);
  /// A TENSOR attribute: null if left out.
  mlir::FailureOr<const ::onnx::TensorProto *> tensorAttr(const ::onnx::NodeProto &node,
                                                          llvm::StringRef name);

private:
  mlir::FailureOr<const ::onnx::AttributeProto *>
  attribute(const ::onnx::NodeProto &node, llvm::StringRef name,
            ::onnx::AttributeProto::AttributeType type);

  // OnnxImporter.cpp: the driver.
  mlir::FailureOr<mlir::RankedTensorType> convertType(const ::onnx::TypeProto &type,
                                                      llvm::StringRef what);
  mlir::FailureOr<mlir::Type> convertElementType(int32_t dataType, llvm::StringRef what);
  void collectNeededNodes(const std::string &output);
  void storeSourceModel(mlir::ModuleOp module);
  mlir::Value materialize(const IntTensor &tensor, mlir::Location loc);

  /// The type of output `index` from ONNX's inference of `node` alone on
  /// the static types (and compile-time values) of its inputs, where ONNX's
  /// inference of the graph could not see them (values folded at import:
  /// Pad's pads, Resize's scales); null if that gives no static type.
  const ::onnx::TypeProto *reinferOutputType(const ::onnx::NodeProto &node, int index);

  // OnnxParameters.cpp.
  mlir::LogicalResult importParameters(mlir::ModuleOp module);

  // OnnxConstantEvaluator.cpp.
  /// Evaluates an int64 value computed from constants and static shapes
  /// (Shape, Gather, Concat, arithmetic, Range, ...); nullopt if it is not
  /// a compile-time constant.
  std::optional<IntTensor> evaluate(const std::string &name, int depth = 0);
  std::optional<IntTensor> evaluateNode(const ::onnx::NodeProto &node, int depth);

  // OnnxHandlers.cpp.
  mlir::LogicalResult importNode(const ::onnx::NodeProto &node);

  mlir::MLIRContext &context;
  std::string path;
  const ::onnx::ModelProto &model;
  const ExternalData &external;
  bool forwardOnly;
  mlir::Location fileLoc;

  llvm::StringMap<mlir::Value> values;
  llvm::StringMap<const ::onnx::TypeProto *> valueTypes;
  llvm::StringMap<const ::onnx::TensorProto *> constants; // initializers and Constant nodes
  llvm::StringMap<int> producer;                          // value name -> node index
  llvm::StringMap<mlir::RankedTensorType> parameters;
  llvm::DenseSet<int> neededNodes;
  llvm::StringMap<IntTensor> evaluated;
  std::vector<std::unique_ptr<::onnx::TypeProto>> ownedTypes;
  int64_t nextDropoutStream = 0;
};

/// LSTM, GRU and RNN, unrolled over the sequence (OnnxRecurrent.cpp).
mlir::LogicalResult importRecurrent(GraphImporter &im, const ::onnx::NodeProto &node);

/// Pad, Resize and Upsample, composed of Slice, Concat, Gather and
/// elementwise ops (OnnxResampling.cpp).
mlir::LogicalResult importPadAttributes(GraphImporter &im, const ::onnx::NodeProto &node);
mlir::LogicalResult importPad(GraphImporter &im, const ::onnx::NodeProto &node);
mlir::LogicalResult importUpsampleScalesAttribute(GraphImporter &im, const ::onnx::NodeProto &node);
mlir::LogicalResult importUpsampleScalesInput(GraphImporter &im, const ::onnx::NodeProto &node);
mlir::LogicalResult importResize(GraphImporter &im, const ::onnx::NodeProto &node);
/// Einsum, composed of Transpose, Reshape, MatMul, Mul and ReduceSum
/// (OnnxEinsum.cpp).
mlir::LogicalResult importEinsum(GraphImporter &im, const ::onnx::NodeProto &node);

/// Operand positions that carry data (as opposed to shapes or axes that
/// shape inference and constant folding consume at compile time).
llvm::SmallVector<int> dataOperands(const ::onnx::NodeProto &node);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_GRAPHIMPORTER_H
