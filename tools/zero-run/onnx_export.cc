#include "onnx_export.h"

#include <onnx/onnx_pb.h>

#include "zero/files.h"

namespace zero {

Status export_onnx(const uint8_t* model, size_t size, const std::vector<NamedTensor>& params, const std::string& path) {
  onnx::ModelProto proto;
  if (size == 0 || size > size_t(INT32_MAX) || !proto.ParseFromArray(model, int(size)))
    return Status::invalid_argument("the plan carries no valid ONNX model to export");
  auto* graph = proto.mutable_graph();
  for (const NamedTensor& p : params) {
    onnx::TensorProto* t = nullptr;
    for (auto& existing : *graph->mutable_initializer())
      if (existing.name() == p.name) t = &existing;
    if (!t) t = graph->add_initializer();
    t->Clear();
    t->set_name(p.name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : p.shape) t->add_dims(d);
    // raw_data is little-endian, which is the host order on every target.
    t->set_raw_data(p.values.data(), p.values.size() * sizeof(float));
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes))
    return Status::resource_exhausted(path + ": the ONNX model does not serialize (over 2 GiB?)");
  return write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace zero
