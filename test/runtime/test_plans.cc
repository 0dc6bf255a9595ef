#include "test_plans.h"

#include "zero/plan_format.h"

namespace zero::test {

uint64_t PlanBuilder::reserve(uint64_t bytes) {
  const uint64_t at = arena_;
  arena_ += (bytes + 63) / 64 * 64;
  return at;
}

uint32_t PlanBuilder::value(const std::string& name, plan::DType dtype, const std::vector<int64_t>& shape,
                            plan::ValueKind kind, uint64_t offset, uint64_t rank_stride) {
  values_.push_back(plan::CreateValueDirect(fbb, name.c_str(), dtype, &shape, offset, rank_stride, kind));
  return uint32_t(values_.size() - 1);
}

uint32_t PlanBuilder::fresh(const std::string& name, plan::DType dtype, const std::vector<int64_t>& shape,
                            plan::ValueKind kind) {
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= uint64_t(d);
  return value(name, dtype, shape, kind, reserve(numel * (dtype == plan::DType::I64 ? 8 : 4)));
}

void PlanBuilder::op(plan::Opcode opcode, const std::vector<uint32_t>& in, const std::vector<uint32_t>& out,
                     plan::Attrs attrs_type, flatbuffers::Offset<void> attrs) {
  (evaluating_ ? eval_insts_ : insts_).push_back(plan::CreateInstructionDirect(fbb, opcode, &in, &out, attrs_type, attrs));
}

void PlanBuilder::init(uint32_t value, const void* data, size_t bytes, int rank) {
  fbb.ForceVectorAlignment(bytes, 1, 64);
  auto v = fbb.CreateVector(static_cast<const uint8_t*>(data), bytes);
  inits_.push_back(plan::CreateInitializer(fbb, value, rank, v));
}

void PlanBuilder::input(const std::string& name, uint32_t value) {
  (evaluating_ ? eval_inputs_ : inputs_).push_back(plan::CreateInputDirect(fbb, name.c_str(), value));
}

void PlanBuilder::parameter(const std::string& name, const std::vector<int64_t>& shape, uint32_t value, bool sharded,
                            uint64_t shard_numel, bool trainable) {
  params_.push_back(plan::CreateParameterDirect(fbb, name.c_str(), &shape, value, sharded, shard_numel, trainable));
}

void PlanBuilder::output(const std::string& name, uint32_t value) {
  outputs_.push_back(plan::CreateOutputDirect(fbb, name.c_str(), value));
}

std::vector<uint8_t> PlanBuilder::finish(uint32_t world_size, uint32_t loss, uint32_t version, plan::Backend backend,
                                         uint32_t zero_stage, const std::vector<uint8_t>* onnx_model) {
  flatbuffers::Offset<plan::Evaluation> evaluation;
  if (evaluating_) evaluation = plan::CreateEvaluationDirect(fbb, &eval_insts_, &eval_inputs_, eval_loss_);
  auto p = plan::CreatePlanDirect(fbb, version, backend, world_size, zero_stage, arena_, &values_, &insts_, &inits_,
                                  &inputs_, &params_, loss, onnx_model, &outputs_, /*weights_omitted=*/false,
                                  /*metrics=*/nullptr, evaluation);
  plan::FinishPlanBuffer(fbb, p);
  return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

std::vector<uint8_t> linreg_plan(const LinRegOptions& o) {
  using plan::DType;
  using plan::Opcode;
  using plan::ValueKind;
  PlanBuilder b;
  const int64_t B = o.batch, F = o.features, N = o.world_size;
  const uint32_t x = b.fresh("x", DType::F32, {B, F}, ValueKind::Input);
  const uint32_t y = b.fresh("y", DType::F32, {B, 1}, ValueKind::Input);
  std::vector<float> w0(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i) w0[size_t(i)] = 0.1f * float(i + 1);

  // W as the forward pass sees it, and the gradient it gets.
  uint32_t w, dw, w_param, dw_update, g_pad = 0, w_pad = 0;
  if (!o.sharded) {
    w = w_param = b.fresh("W", DType::F32, {F, 1}, ValueKind::Parameter);
    dw = dw_update = b.fresh("dW", DType::F32, {F, 1}, ValueKind::Gradient);
    b.init(w, w0.data(), w0.size() * 4);
  } else {
    // Shards of the flattened W padded to N * s; rank r's shard is chunk r of
    // the gathered buffer (in-place AllGather / ReduceScatter).
    const int64_t s = (F + N - 1) / N;
    const uint64_t wbuf = b.reserve(uint64_t(N * s) * 4), gbuf = b.reserve(uint64_t(N * s) * 4);
    w_pad = b.value("W.gathered", DType::F32, {N * s}, ValueKind::Communication, wbuf);
    w = b.value("W.full", DType::F32, {F, 1}, ValueKind::Communication, wbuf);
    w_param = b.value("W.shard", DType::F32, {s}, ValueKind::Parameter, wbuf, uint64_t(s) * 4);
    g_pad = b.value("dW.padded", DType::F32, {N * s}, ValueKind::Communication, gbuf);
    dw = b.value("dW.full", DType::F32, {F, 1}, ValueKind::Communication, gbuf);
    dw_update = b.value("dW.shard", DType::F32, {s}, ValueKind::Gradient, gbuf, uint64_t(s) * 4);
    std::vector<float> padded(size_t(N * s), 0.f);
    std::copy(w0.begin(), w0.end(), padded.begin());
    for (int64_t r = 0; r < N; ++r) b.init(w_param, padded.data() + r * s, size_t(s) * 4, int(r));
    b.op(Opcode::AllGather, {w_param}, {w_pad}, plan::Attrs::CollectiveAttrs,
         plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Sum, o.async ? 3 : 0).Union());
    b.op(Opcode::Fill, {}, {g_pad}, plan::Attrs::FillAttrs, plan::CreateFillAttrs(b.fbb, 0.f).Union());
  }
  const uint32_t pred = b.fresh("pred", DType::F32, {B, 1});
  const uint32_t diff = b.fresh("diff", DType::F32, {B, 1});
  const uint32_t sq = b.fresh("sq", DType::F32, {B, 1});
  const uint32_t local = b.fresh("loss.local", DType::F32, {});
  const uint32_t loss = b.fresh("loss", DType::F32, {});
  const uint32_t scale = b.fresh("two_over_b", DType::F32, {}, ValueKind::Constant);
  const float two_over_b = 2.f / float(B);
  b.init(scale, &two_over_b, 4);
  const auto mean = [&](uint32_t slot) {
    return plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Mean, o.async ? slot : 0).Union();
  };
  const auto wait = [&](uint32_t slot, uint32_t in, uint32_t out) {
    if (o.async) b.op(Opcode::Wait, {in, out}, {}, plan::Attrs::WaitAttrs, plan::CreateWaitAttrs(b.fbb, slot).Union());
  };

  if (o.sharded) wait(3, w_param, w_pad);
  b.op(Opcode::MatMul, {x, w}, {pred});
  b.op(Opcode::Sub, {pred, y}, {diff});
  b.op(Opcode::Mul, {diff, diff}, {sq});
  b.op(Opcode::ReduceMean, {sq}, {local}, plan::Attrs::ReduceAttrs, plan::CreateReduceAttrs(b.fbb).Union());
  b.op(Opcode::AllReduce, {local}, {loss}, plan::Attrs::CollectiveAttrs, mean(1));
  b.op(Opcode::Mul, {diff, scale}, {diff});  // in place: dpred
  b.op(Opcode::Gemm, {x, diff}, {dw}, plan::Attrs::GemmAttrs, plan::CreateGemmAttrs(b.fbb, true, false).Union());
  if (!o.sharded) {
    b.op(Opcode::AllReduce, {dw}, {dw}, plan::Attrs::CollectiveAttrs, mean(2));
    wait(2, dw, dw);
  } else {
    b.op(Opcode::ReduceScatter, {g_pad}, {dw_update}, plan::Attrs::CollectiveAttrs, mean(2));
    wait(2, g_pad, dw_update);
  }
  b.op(Opcode::SgdUpdate, {w_param, dw_update}, {w_param}, plan::Attrs::SgdAttrs,
       plan::CreateSgdAttrs(b.fbb, o.lr, 0.f, 0.f).Union());
  wait(1, local, loss);

  b.input("x", x);
  b.input("y", y);
  if (o.sharded) b.parameter("W", {F, 1}, w_param, true, uint64_t((F + N - 1) / N));
  else b.parameter("W", {F, 1}, w_param);

  if (o.evaluation) {
    const uint32_t ex = b.fresh("eval.x", DType::F32, {B, F}, ValueKind::Input);
    const uint32_t ey = b.fresh("eval.y", DType::F32, {B, 1}, ValueKind::Input);
    const uint32_t eloss = b.fresh("eval.loss", DType::F32, {});
    b.begin_evaluation(eloss);
    if (o.sharded) {
      b.op(Opcode::AllGather, {w_param}, {w_pad}, plan::Attrs::CollectiveAttrs,
           plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Sum, o.async ? 3 : 0).Union());
      wait(3, w_param, w_pad);
    }
    b.op(Opcode::MatMul, {ex, w}, {pred});
    b.op(Opcode::Sub, {pred, ey}, {diff});
    b.op(Opcode::Mul, {diff, diff}, {sq});
    b.op(Opcode::ReduceMean, {sq}, {local}, plan::Attrs::ReduceAttrs, plan::CreateReduceAttrs(b.fbb).Union());
    b.op(Opcode::AllReduce, {local}, {eloss}, plan::Attrs::CollectiveAttrs, mean(1));
    wait(1, local, eloss);
    b.input("x", ex);
    b.input("y", ey);
  }
  return b.finish(o.world_size, loss, o.version, o.backend, o.sharded ? 3 : 0, &o.onnx_model);
}

std::vector<uint8_t> forward_plan(int64_t batch, int64_t features, int64_t k) {
  using plan::DType;
  using plan::Opcode;
  using plan::ValueKind;
  PlanBuilder b;
  const uint32_t x = b.fresh("x", DType::F32, {batch, features}, ValueKind::Input);
  const uint32_t idx = b.fresh("idx", DType::I64, {k}, ValueKind::Input);
  const uint32_t scale = b.fresh("scale", DType::F32, {}, ValueKind::Input);
  const uint32_t ones = b.fresh("ones", DType::F32, {features}, ValueKind::Constant);
  const uint32_t zeros = b.fresh("zeros", DType::F32, {features}, ValueKind::Constant);
  const uint32_t norm = b.fresh("norm", DType::F32, {batch, features});
  const uint32_t y = b.fresh("y", DType::F32, {batch, features});
  const uint32_t g = b.fresh("g", DType::F32, {batch, k});
  const uint32_t ids = b.fresh("ids", DType::I64, {k});
  const std::vector<float> one(size_t(features), 1.f);
  b.init(ones, one.data(), one.size() * 4);
  b.op(Opcode::Fill, {}, {zeros}, plan::Attrs::FillAttrs, plan::CreateFillAttrs(b.fbb, 0.f).Union());
  b.op(Opcode::LayerNormalization, {x, ones, zeros}, {norm}, plan::Attrs::LayerNormAttrs,
       plan::CreateLayerNormAttrs(b.fbb, -1, 1e-5f).Union());
  b.op(Opcode::Mul, {norm, scale}, {y});
  b.op(Opcode::Gather, {x, idx}, {g}, plan::Attrs::AxisAttrs, plan::CreateAxisAttrs(b.fbb, 1).Union());
  b.op(Opcode::Copy, {idx}, {ids});
  b.input("x", x);
  b.input("idx", idx);
  b.input("scale", scale);
  b.output("out/y", y);
  b.output("out/g", g);
  b.output("ids", ids);
  return b.finish(1, 0, kPlanFormatVersion, plan::Backend::Cpu);
}

std::vector<uint8_t> batchnorm_plan(uint32_t world_size, int64_t batch, float lr,
                                    const std::vector<uint8_t>* onnx_model, plan::Backend backend) {
  using plan::DType;
  using plan::Opcode;
  using plan::ValueKind;
  PlanBuilder b;
  const int64_t C = 2;
  const std::vector<int64_t> xs = {batch, C, 3, 3}, cs = {C};
  const uint32_t x = b.fresh("x", DType::F32, xs, ValueKind::Input);
  const uint32_t scale = b.fresh("bn.weight", DType::F32, cs, ValueKind::Parameter);
  const uint32_t bias = b.fresh("bn.bias", DType::F32, cs, ValueKind::Parameter);
  const uint32_t rmean = b.fresh("bn.running_mean", DType::F32, cs, ValueKind::ModelState);
  const uint32_t rvar = b.fresh("bn.running_var", DType::F32, cs, ValueKind::ModelState);
  const float scale0[] = {1.f, 0.5f}, bias0[] = {0.f, 0.1f}, rvar0[] = {1.f, 1.f};
  b.init(scale, scale0, sizeof(scale0));
  b.init(bias, bias0, sizeof(bias0));
  b.init(rvar, rvar0, sizeof(rvar0));  // running_mean starts zeroed
  const uint32_t y = b.fresh("y", DType::F32, xs), smean = b.fresh("saved_mean", DType::F32, cs);
  const uint32_t sinv = b.fresh("saved_inv_std", DType::F32, cs), sq = b.fresh("sq", DType::F32, xs);
  const uint32_t local = b.fresh("loss.local", DType::F32, {}), loss = b.fresh("loss", DType::F32, {});
  const uint32_t two_over_n = b.fresh("two_over_n", DType::F32, {}, ValueKind::Constant);
  const float k = 2.f / float(batch * C * 9);
  b.init(two_over_n, &k, 4);
  const uint32_t dx = b.fresh("dx", DType::F32, xs);
  const uint32_t dscale = b.fresh("dscale", DType::F32, cs, ValueKind::Gradient);
  const uint32_t dbias = b.fresh("dbias", DType::F32, cs, ValueKind::Gradient);
  const auto mean = [&] { return plan::CreateCollectiveAttrs(b.fbb, plan::Reduction::Mean).Union(); };
  const auto bn = [&] { return plan::CreateBatchNormAttrs(b.fbb, 1e-5f, 0.1f).Union(); };

  b.op(Opcode::BatchNormalization, {x, scale, bias, rmean, rvar}, {y, smean, sinv}, plan::Attrs::BatchNormAttrs, bn());
  b.op(Opcode::Mul, {y, y}, {sq});
  b.op(Opcode::ReduceMean, {sq}, {local}, plan::Attrs::ReduceAttrs, plan::CreateReduceAttrs(b.fbb).Union());
  b.op(Opcode::AllReduce, {local}, {loss}, plan::Attrs::CollectiveAttrs, mean());
  b.op(Opcode::Mul, {y, two_over_n}, {y});  // in place: dy
  b.op(Opcode::BatchNormalizationGrad, {y, x, scale, smean, sinv}, {dx, dscale, dbias}, plan::Attrs::BatchNormAttrs,
       bn());
  b.op(Opcode::AllReduce, {dscale}, {dscale}, plan::Attrs::CollectiveAttrs, mean());
  b.op(Opcode::AllReduce, {dbias}, {dbias}, plan::Attrs::CollectiveAttrs, mean());
  for (auto [p, g] : {std::pair{scale, dscale}, std::pair{bias, dbias}})
    b.op(Opcode::SgdUpdate, {p, g}, {p}, plan::Attrs::SgdAttrs, plan::CreateSgdAttrs(b.fbb, lr, 0.f, 0.f).Union());

  b.input("x", x);
  b.parameter("bn.weight", cs, scale);
  b.parameter("bn.bias", cs, bias);
  b.parameter("bn.running_mean", cs, rmean, false, 0, /*trainable=*/false);
  b.parameter("bn.running_var", cs, rvar, false, 0, /*trainable=*/false);
  return b.finish(world_size, loss, kPlanFormatVersion, backend, 0, onnx_model);
}

}  // namespace zero::test
