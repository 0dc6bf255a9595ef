//===- OnnxModelLoader.h - read, check and shape-infer an ONNX model ------===//
//
// The part of the frontend that talks to the ONNX library (which throws and
// needs RTTI); it hands the importer a well-formed model of supported
// operators whose value types are inferred. No MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H
#define ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace zero::frontend {

/// Parses a model from memory: a binary ModelProto, or ONNX's text syntax
/// with `text`. Then checks that the graph is well formed and uses only
/// supported operators and attributes (checkOnnxModel, which also admits
/// operators with an ONNX function body), and only then runs ONNX shape
/// inference with data propagation so shape subgraphs resolve to static
/// types. Nodes of operators zero implements through their function bodies
/// are then replaced by their bodies, which are checked and typed in turn.
/// Never throws; on failure returns false and sets `error` to one line.
bool parseOnnxModel(const std::string &bytes, bool text, ::onnx::ModelProto &model,
                    std::string &error);

/// Reads the file at `path` (ONNX's text syntax if it ends in .onnxtxt) and
/// parses it with parseOnnxModel.
bool loadOnnxModel(const std::string &path, ::onnx::ModelProto &model, std::string &error);

/// What zero requires of a model before anything else reads it: an opset
/// of the default domain zero imports; graph inputs, initializers and node
/// outputs named once each; nodes in topological order, each reading only
/// values defined before it; graph outputs that exist; and every node a
/// supported operator of its opset, with an accepted number of inputs and
/// outputs and only known attributes of the expected types.
bool checkOnnxModel(const ::onnx::ModelProto &model, std::string &error);

/// An input of a node as ONNX inference reads it: its type, and its value
/// where that is known (null otherwise); both null for an absent input.
struct NodeInput {
  const ::onnx::TypeProto *type = nullptr;
  const ::onnx::TensorProto *data = nullptr;
};

/// ONNX's type and shape inference of one node at `opset` from its inputs:
/// its output types, or none where its schema has no inference or throws.
/// For a node whose inputs' static types only zero found (a Pad whose pads
/// fold, a Resize whose scales do), which ONNX's inference of the whole
/// graph left dynamic. Never throws.
std::vector<::onnx::TypeProto> inferNodeTypes(const ::onnx::NodeProto &node, int64_t opset,
                                              const std::vector<NodeInput> &inputs);

/// The opset the model imports for the default domain ("" or "ai.onnx"),
/// 0 if none.
int64_t onnxOpset(const ::onnx::ModelProto &model);

/// How diagnostics name a node: "node 'NAME' (OP, opset N)", or by its first
/// output when it has no name, as exporters often leave nodes unnamed.
std::string describeNode(const ::onnx::NodeProto &node, int64_t opset);

/// "attribute 'NAME' of OP must be EXPECTED, got GIVEN": a type mismatch.
std::string attributeTypeError(const ::onnx::NodeProto &node,
                               const ::onnx::AttributeProto &attribute,
                               ::onnx::AttributeProto::AttributeType expected);

} // namespace zero::frontend

#endif // ZERO_FRONTENDS_ONNX_ONNXMODELLOADER_H
