//===- OnnxParameters.cpp - initializers to ml_program globals ------------===//
//
// Float initializers become mutable ml_program.globals holding their data in
// a resource blob; the others (and a loss's class weights) stay constants.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/GraphImporter.h"

#include "dialects/Onnx/OnnxDialect.h"

#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/StringSet.h"

using namespace mlir;

namespace zero::frontend {

LogicalResult GraphImporter::importParameters(ModuleOp module) {
  builder.setInsertionPointToEnd(module.getBody());
  // A loss's class weights are data, not weights (PyTorch's loss `weight` is
  // a buffer): such initializers become constants, kept in the exported model.
  // So do the inputs read only at compile time (dataOperands), where nothing
  // else reads them: Clip's bounds (torch.clamp's are numbers), Pad's value,
  // Resize's scales.
  llvm::StringSet<> classWeights, compileTimeInputs, otherUses, runningStatistics;
  for (const auto &node : model.graph().node()) {
    bool loss = node.op_type() == "SoftmaxCrossEntropyLoss" ||
                node.op_type() == "NegativeLogLikelihoodLoss";
    SmallVector<int> data = dataOperands(node);
    for (int i = 0; i < node.input_size(); ++i) {
      auto &uses = loss && i == 2                 ? classWeights
                   : !llvm::is_contained(data, i) ? compileTimeInputs
                                                  : otherUses;
      uses.insert(node.input(i));
    }
    if (node.op_type() == "BatchNormalization" && node.input_size() == 5) {
      runningStatistics.insert(node.input(3));
      runningStatistics.insert(node.input(4));
    }
  }
  for (const auto &init : model.graph().initializer()) {
    if (init.data_type() != ::onnx::TensorProto::FLOAT) {
      constants[init.name()] = &init;
      continue;
    }
    if (classWeights.contains(init.name())) {
      if (otherUses.contains(init.name()))
        return emitError(fileLoc) << "initializer '" << init.name()
                                  << "' is a loss's class weights and also used by other "
                                     "nodes, which is not supported";
      constants[init.name()] = &init;
      continue;
    }
    if (compileTimeInputs.contains(init.name()) && !otherUses.contains(init.name())) {
      constants[init.name()] = &init;
      continue;
    }
    SmallVector<int64_t> shape(init.dims().begin(), init.dims().end());
    if (llvm::is_contained(shape, 0))
      return emitError(fileLoc) << "initializer '" << init.name()
                                << "' has a zero-size dimension, which is not supported";
    auto type = RankedTensorType::get(shape, builder.getF32Type());
    size_t bytes = type.getNumElements() * sizeof(float);
    // Weights go straight into a resource blob, never an attribute: one copy
    // of the model's bytes, or none of mapped external data (the blob keeps
    // the mapping).
    AsmResourceBlob blob;
    std::optional<StringRef> raw = rawData(init);
    if (const ExternalData::Bytes *mapped = external.find(init.name());
        mapped && mapped->size == bytes) {
      blob = AsmResourceBlob(
          ArrayRef<char>(mapped->data, bytes), alignof(float),
          [mapping = mapped->mapping](void *, size_t, size_t) {}, /*dataIsMutable=*/false);
    } else if (raw && raw->size() == bytes) {
      blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(ArrayRef<char>(raw->data(), bytes),
                                                           alignof(float));
    } else if (!raw && init.float_data_size() == type.getNumElements()) {
      blob = HeapAsmResourceBlob::allocateAndCopyInferAlign(
          ArrayRef<float>(init.float_data().data(), init.float_data_size()));
    } else {
      return emitError(fileLoc) << "initializer '" << init.name()
                                << "' has no data of its declared size";
    }
    auto value = DenseResourceElementsAttr::get(type, init.name(), std::move(blob));
    auto global = ml_program::GlobalOp::create(
        builder, NameLoc::get(builder.getStringAttr(init.name()), fileLoc),
        builder.getStringAttr(init.name()), TypeAttr::get(type), builder.getUnitAttr(), value,
        builder.getStringAttr("private"));
    // What ONNX says of the initializer; what that means for training is
    // the training-step pass's decision.
    if (runningStatistics.contains(init.name()))
      global->setAttr(onnx::kRunningStatisticsAttr, builder.getUnitAttr());
    parameters[init.name()] = type;
  }
  return success();
}

} // namespace zero::frontend
