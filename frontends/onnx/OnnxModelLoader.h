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
#include <memory>
#include <string>
#include <unordered_map>
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

/// The float initializers of a model whose data lies in external files
/// (`onnx.save_model(..., save_as_external_data=True)`, which models over
/// 2 GB need), memory-mapped: a page of weights is read only when the
/// compiler first uses it, so `--omit-weights` reads none, and the weights
/// are never copied in memory to build the IR.
class ExternalData {
public:
  struct Bytes {
    const char *data;
    size_t size;
    std::shared_ptr<const void> mapping; // keeps `data` mapped
  };
  /// The mapped bytes of initializer `name`; null when they are in the model.
  const Bytes *find(const std::string &name) const;
  void add(const std::string &name, Bytes bytes) { initializers[name] = std::move(bytes); }

private:
  std::unordered_map<std::string, Bytes> initializers;
};

/// Reads the file at `path` (ONNX's text syntax if it ends in .onnxtxt) and
/// parses it as parseOnnxModel does. Tensors with external data are read
/// from files named relative to the model's directory, which must lie in
/// it: tensors the ONNX library or the constant evaluator read (all but
/// large float initializers) are copied into the model; large float
/// initializers stay in `external`, mapped.
bool loadOnnxModel(const std::string &path, ::onnx::ModelProto &model, ExternalData &external,
                   std::string &error);

/// What zero requires of a model before anything else reads it: an opset
/// of the default domain zero imports; graph inputs, initializers and node
/// outputs named once each; nodes in topological order, each reading only
/// values defined before it; graph outputs that exist; and every node a
/// supported operator of its opset, with an accepted number of inputs and
/// outputs and only known attributes of the expected types.
/// Initializers in `external` may have external data; no other tensor may.
bool checkOnnxModel(const ::onnx::ModelProto &model, std::string &error,
                    const ExternalData *external = nullptr);

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
