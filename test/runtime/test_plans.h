// Plans for tests, built with the FlatBuffers builder: a tiny generic
// builder and a linear-regression training step.
#ifndef ZERO_TEST_PLANS_H
#define ZERO_TEST_PLANS_H

#include <cstdint>
#include <string>
#include <vector>

#include "zero/plan_generated.h"

namespace zero::test {

class PlanBuilder {
 public:
  // Allocates `bytes` of arena (64-byte aligned) and returns the offset.
  uint64_t reserve(uint64_t bytes);
  uint32_t value(const std::string& name, plan::DType dtype, const std::vector<int64_t>& shape,
                 plan::ValueKind kind, uint64_t offset, uint64_t rank_stride = 0);
  // reserve() + value() for a rank-independent value.
  uint32_t fresh(const std::string& name, plan::DType dtype, const std::vector<int64_t>& shape,
                 plan::ValueKind kind = plan::ValueKind::Activation);
  void op(plan::Opcode opcode, const std::vector<uint32_t>& in, const std::vector<uint32_t>& out,
          plan::Attrs attrs_type = plan::Attrs::NONE, flatbuffers::Offset<void> attrs = 0);
  void init(uint32_t value, const void* data, size_t bytes, int rank = -1);
  void input(const std::string& name, uint32_t value);
  void parameter(const std::string& name, const std::vector<int64_t>& shape, uint32_t value, bool sharded = false,
                 uint64_t shard_numel = 0, bool trainable = true);
  void output(const std::string& name, uint32_t value);
  // From here on op() and input() build the evaluation program, whose loss
  // is `eval_loss`.
  void begin_evaluation(uint32_t eval_loss) {
    evaluating_ = true;
    eval_loss_ = eval_loss;
  }
  std::vector<uint8_t> finish(uint32_t world_size, uint32_t loss, uint32_t version, plan::Backend backend,
                              uint32_t zero_stage = 0, const std::vector<uint8_t>* onnx_model = nullptr);

  flatbuffers::FlatBufferBuilder fbb;

 private:
  uint64_t arena_ = 0;
  std::vector<flatbuffers::Offset<plan::Value>> values_;
  std::vector<flatbuffers::Offset<plan::Instruction>> insts_;
  std::vector<flatbuffers::Offset<plan::Initializer>> inits_;
  std::vector<flatbuffers::Offset<plan::Input>> inputs_;
  std::vector<flatbuffers::Offset<plan::Parameter>> params_;
  std::vector<flatbuffers::Offset<plan::Output>> outputs_;
  bool evaluating_ = false;
  uint32_t eval_loss_ = 0;
  std::vector<flatbuffers::Offset<plan::Instruction>> eval_insts_;
  std::vector<flatbuffers::Offset<plan::Input>> eval_inputs_;
};

struct LinRegOptions {
  uint32_t world_size = 1;
  int64_t batch = 4;      // per-rank micro-batch
  int64_t features = 3;
  bool sharded = false;   // ZeRO-3 style: W lives as shards, gathered each step
  float lr = 0.1f;
  // Collectives asynchronous (CollectiveAttrs.slot), each waited right before
  // the first instruction that touches its operands, as
  // zero-overlap-collectives places them.
  bool async = false;
  uint32_t version = 1;   // format_version written (to test rejection)
  plan::Backend backend = plan::Backend::Cpu;
  std::vector<uint8_t> onnx_model;  // embedded as Plan.onnx_model
  // An evaluation program: the global mean MSE of its own inputs "x" and
  // "y" with the current W (gathered again when sharded), nothing updated.
  bool evaluation = false;
};

// One SGD step of y ~ x @ W on the mean squared error, data-parallel:
// inputs "x" [b, F] F32 and "y" [b, 1] F32, parameter "W" [F, 1] starting at
// W[i] = 0.1 * (i + 1), loss = global mean MSE.
std::vector<uint8_t> linreg_plan(const LinRegOptions& o);

// A forward-only plan (Plan.outputs, no loss, no parameters):
// inputs "x" F32 [B, F], "idx" I64 [K] (rank 1) and "scale" F32 [] (rank 0);
// outputs "out/y" F32 [B, F] = layer_norm(x, axis -1, eps 1e-5) * scale,
// "out/g" F32 [B, K] = gather(x, idx, axis 1) and "ids" I64 [K] = idx.
std::vector<uint8_t> forward_plan(int64_t batch = 2, int64_t features = 4, int64_t k = 3);

// A BatchNorm training step with model state, data-parallel: input "x" F32
// [b, 2, 3, 3]; trainable "bn.weight" = [1, 0.5] and "bn.bias" = [0, 0.1]
// (SGD, lr); model state (Parameter.trainable = false, ValueKind::ModelState)
// "bn.running_mean" = [0, 0] and "bn.running_var" = [1, 1], updated in place
// by BatchNormalization (momentum 0.1, eps 1e-5, per rank from its own
// micro-batch); loss = global mean of y². `onnx_model` is embedded if given.
std::vector<uint8_t> batchnorm_plan(uint32_t world_size = 1, int64_t batch = 4, float lr = 0.1f,
                                    const std::vector<uint8_t>* onnx_model = nullptr,
                                    plan::Backend backend = plan::Backend::Cpu);

}  // namespace zero::test

#endif  // ZERO_TEST_PLANS_H
