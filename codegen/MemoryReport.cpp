//===- MemoryReport.cpp - per-rank memory and traffic of a plan -----------===//

#include "codegen/MemoryReport.h"
#include "dialects/Zero/ZeroDialect.h"
#include "zero/kernel_scratch.h"
#include "zero/shape_rules.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/JSON.h"

#include <algorithm>
#include <array>

namespace zero::codegen {

namespace {

constexpr llvm::StringLiteral kKinds[] = {"parameter", "gradient",      "optimizer_state",
                                          "activation", "communication", "input",
                                          "constant",  "model_state"};

/// Bytes one rank sends for `instr` under ring algorithms: all-reduce of S
/// bytes sends 2S(N-1)/N; reduce-scatter of a full S-byte buffer and
/// all-gather into one send S(N-1)/N.
double sentBytes(plan::ProgramOp program, mlir::SymbolTable &symbols, plan::InstrOp instr) {
  auto bytesOf = [&](mlir::Attribute ref) {
    auto value = symbols.lookup<plan::ValueOp>(llvm::cast<mlir::FlatSymbolRefAttr>(ref).getAttr());
    return static_cast<double>(plan::getTensorBytes(llvm::cast<mlir::RankedTensorType>(value.getType())));
  };
  double n = program.getWorldSize();
  llvm::StringRef opcode = instr.getOpcode();
  if (opcode == "AllReduce")
    return 2 * bytesOf(instr.getInputs()[0]) * (n - 1) / n;
  if (opcode == "ReduceScatter")
    return bytesOf(instr.getInputs()[0]) * (n - 1) / n;
  if (opcode == "AllGather")
    return bytesOf(instr.getOutputs()[0]) * (n - 1) / n;
  return 0;
}

/// The scratch `instr`'s kernel needs beyond its operands on `backend`: the
/// formulas of zero/kernel_scratch.h, which the runtime's prepare uses too.
uint64_t kernelScratchBytes(llvm::StringRef backend, mlir::SymbolTable &symbols,
                            plan::InstrOp instr) {
  namespace ks = zero::kernel_scratch;
  auto valueOf = [&](mlir::Attribute ref) {
    return symbols.lookup<plan::ValueOp>(llvm::cast<mlir::FlatSymbolRefAttr>(ref).getAttr());
  };
  auto shapeOf = [&](mlir::Attribute ref) {
    return llvm::cast<mlir::RankedTensorType>(valueOf(ref).getType()).getShape();
  };
  auto numelOf = [&](mlir::Attribute ref) {
    int64_t n = 1;
    for (int64_t d : shapeOf(ref))
      n *= d;
    return n;
  };
  auto intAttr = [&](llvm::StringRef name, int64_t def) {
    auto attr = instr.getAttrs().getAs<mlir::IntegerAttr>(name);
    return attr ? attr.getInt() : def;
  };
  llvm::StringRef opcode = instr.getOpcode();
  mlir::ArrayAttr in = instr.getInputs(), out = instr.getOutputs();
  const bool cuda = backend == "cuda";

  if (opcode == "Conv" || opcode == "ConvGradInput" || opcode == "ConvGradWeight") {
    // (x, w) -> y; (dy, w) -> dx; (dy, x) -> dw.
    auto x = shapeOf(opcode == "Conv" ? in[0] : opcode == "ConvGradInput" ? out[0] : in[1]);
    auto w = shapeOf(opcode == "ConvGradWeight" ? out[0] : in[1]);
    auto y = shapeOf(opcode == "Conv" ? out[0] : in[0]);
    const int64_t group = intAttr("group", 1);
    if (x.size() < 3 || x.size() > 5 || w.size() != x.size() || y.size() != x.size() || group < 1)
      return 0;
    // Spatial sizes multiply out: the scratch depends only on their products.
    auto spatial = [](llvm::ArrayRef<int64_t> shape) {
      int64_t n = 1;
      for (int64_t d : shape.drop_front(2))
        n *= d;
      return n;
    };
    const ks::ConvDims d{x[0], x[1], spatial(x), w[0], spatial(y), group, spatial(w)};
    if (!cuda)
      return ks::cpu_conv_bytes(d);
    return opcode == "Conv"            ? ks::cuda_conv_bytes(d)
           : opcode == "ConvGradInput" ? ks::cuda_conv_grad_input_bytes(d)
                                       : ks::cuda_conv_grad_weight_bytes(d);
  }
  if (opcode == "Gather" || opcode == "GatherGrad")
    return cuda ? 0 : ks::cpu_gather_bytes(numelOf(in[1]));
  if (opcode == "TopK") {
    auto x = shapeOf(in[0]);
    int64_t axis;
    if (cuda || !zero::shape_rules::normalize_axis(intAttr("axis", -1), x.size(), &axis))
      return 0;
    return ks::cpu_top_k_bytes(x[axis]);
  }
  if (opcode == "ReduceSum" || opcode == "ReduceMean" || opcode == "ReduceMax" ||
      opcode == "ReduceMin" || opcode == "ReduceProd" || opcode == "ReduceL2") {
    auto x = shapeOf(in[0]);
    llvm::SmallVector<bool> reduced(x.size(), true);
    auto axes = instr.getAttrs().getAs<mlir::DenseI64ArrayAttr>("axes");
    if (axes && !axes.empty()) {
      reduced.assign(x.size(), false);
      for (int64_t axis : axes.asArrayRef()) {
        int64_t a;
        if (zero::shape_rules::normalize_axis(axis, x.size(), &a))
          reduced[a] = true;
      }
    }
    int64_t outNumel = 1, count = 1;
    for (size_t i = 0; i < x.size(); ++i)
      (reduced[i] ? count : outNumel) *= x[i];
    if (!cuda)
      return ks::cpu_reduce_bytes(outNumel);
    // In place: the output is the input's bytes (one buffer, one offset).
    plan::ValueOp xv = valueOf(in[0]), yv = valueOf(out[0]);
    const bool inPlace = xv.getBuffer() == yv.getBuffer() &&
                         xv.getByteOffset() == yv.getByteOffset() &&
                         xv.getRankStride() == yv.getRankStride();
    return ks::cuda_reduce_bytes(numelOf(in[0]), outNumel, count, inPlace);
  }
  if (opcode == "LayerNormalizationGrad") {
    auto x = shapeOf(in[1]);
    int64_t axis;
    if (!zero::shape_rules::normalize_axis(intAttr("axis", -1), x.size(), &axis))
      return 0;
    int64_t outer = 1, inner = 1;
    for (size_t i = 0; i < x.size(); ++i)
      (int64_t(i) < axis ? outer : inner) *= x[i];
    return cuda ? ks::cuda_layer_norm_grad_bytes(outer, inner, out.size() > 1)
                : ks::cpu_layer_norm_grad_bytes(inner);
  }
  if (opcode == "SoftmaxCrossEntropyLoss" || opcode == "NegativeLogLikelihoodLoss")
    return cuda ? ks::cuda_loss_bytes(numelOf(in[1])) : ks::cpu_loss_bytes(numelOf(in[1]));
  if (opcode == "SoftmaxCrossEntropyLossGrad" || opcode == "NegativeLogLikelihoodLossGrad")
    return cuda ? ks::cuda_loss_grad_bytes() : 0;
  return 0;
}

} // namespace

void writeMemoryReport(plan::ProgramOp program, llvm::raw_ostream &os) {
  // Lifetimes in instruction indices, as zero-plan-memory computes them.
  llvm::MapVector<llvm::StringRef, std::pair<int64_t, int64_t>> lifetime;
  mlir::SymbolTable symbols(program);
  int64_t count = 0;
  double sent[2] = {0, 0}; // per step, per evaluation
  // One scratch serves every instruction (they run one at a time): the largest.
  uint64_t scratch = 0;
  plan::InstructionStreams streams = plan::getInstructionStreams(program);
  for (auto [stream, instrs] : llvm::enumerate(
           std::array<llvm::ArrayRef<plan::InstrOp>, 2>{streams.step, streams.evaluation})) {
    for (plan::InstrOp instr : instrs) {
      scratch = std::max(scratch, kernelScratchBytes(program.getBackend(), symbols, instr));
      for (mlir::Attribute ref :
           llvm::concat<const mlir::Attribute>(instr.getInputs(), instr.getOutputs())) {
        auto value =
            symbols.lookup<plan::ValueOp>(llvm::cast<mlir::FlatSymbolRefAttr>(ref).getAttr());
        auto [it, inserted] = lifetime.try_emplace(value.getBuffer(), count, count);
        it->second.second = count;
      }
      sent[stream] += sentBytes(program, symbols, instr);
      ++count;
    }
  }

  llvm::StringMap<int64_t> persistent, peak;
  std::vector<llvm::StringMap<int64_t>> live(count);
  for (auto buffer : program.getOps<plan::BufferOp>()) {
    if (buffer.getPersistent()) {
      persistent[buffer.getKind()] += buffer.getBytes();
      continue;
    }
    auto it = lifetime.find(buffer.getSymName());
    if (it == lifetime.end())
      continue;
    for (int64_t i = it->second.first; i <= it->second.second; ++i)
      live[i][buffer.getKind()] += buffer.getBytes();
  }
  for (const auto &atInstr : live)
    for (const auto &entry : atInstr)
      peak[entry.getKey()] = std::max(peak[entry.getKey()], entry.getValue());

  int64_t parameters = 0;
  llvm::json::Array placements;
  for (auto param : program.getOps<plan::ParameterOp>()) {
    auto type = llvm::cast<mlir::RankedTensorType>(param.getType());
    parameters += type.getNumElements();
    if (!param.getTrainable())
      continue;
    // Which tensors a sharding policy (zero-partition) split, per parameter.
    PlacementAttr placement = getPlacement(param);
    // A frozen weight (zero-opt --freeze) has no gradient or optimizer state.
    const bool frozen = param->hasAttr(kFrozenAttr);
    auto where = [&](int64_t shards, bool trained) {
      return !trained ? "none" : shards == PlacementAttr::kReplicated ? "replicated" : "sharded";
    };
    placements.push_back(
        llvm::json::Object{{"name", param.getName()},
                           {"bytes", plan::getTensorBytes(type)},
                           {"weights", where(placement.getWeights(), true)},
                           {"grad", where(placement.getGrad(), !frozen)},
                           {"optimizer_state", where(placement.getOptimizerState(), !frozen)}});
  }

  // zero-run --checkpoint-dir: each rank writes a slice of shard_numel
  // elements of every parameter and of each of its optimizer state tensors,
  // its whole copy of model state, and rank 0 the step counter.
  const bool hasStepCounter = !program.getBody().getOps<plan::StepCounterOp>().empty();
  auto checkpointBytes = [&](uint32_t rank) {
    int64_t bytes = rank == 0 && hasStepCounter ? 8 : 0;
    for (auto param : program.getOps<plan::ParameterOp>()) {
      const int64_t numel = llvm::cast<mlir::RankedTensorType>(param.getType()).getNumElements();
      if (!param.getTrainable()) {
        bytes += numel * 4;
        continue;
      }
      const int64_t slice = param.getShardNumel();
      const int64_t count = std::clamp<int64_t>(numel - int64_t(rank) * slice, 0, slice);
      const int64_t tensors = 1 + (param.getOptimizerState() ? int64_t(param.getOptimizerState()->size()) : 0);
      bytes += count * 4 * tensors;
    }
    return bytes;
  };

  llvm::json::Array ranks;
  for (uint32_t rank = 0; rank < program.getWorldSize(); ++rank) {
    // Every rank runs the same program over equally sized shards.
    llvm::json::Object entry{{"rank", rank}};
    for (llvm::StringRef kind : kKinds)
      entry[(kind + "_bytes").str()] = persistent.lookup(kind) + peak.lookup(kind);
    // The runtime allocates the arena and the kernel scratch at load and
    // nothing during a step: together they are the peak.
    const int64_t arena = program.getArenaBytes() ? *program.getArenaBytes() : 0;
    entry["kernel_scratch_bytes"] = static_cast<int64_t>(scratch);
    entry["peak_bytes"] = arena + static_cast<int64_t>(scratch);
    entry["sent_bytes_per_step"] = static_cast<int64_t>(sent[0] + 0.5);
    entry["checkpoint_bytes"] = checkpointBytes(rank);
    if (!streams.evaluation.empty())
      entry["sent_bytes_per_evaluation"] = static_cast<int64_t>(sent[1] + 0.5);
    ranks.push_back(std::move(entry));
  }
  llvm::json::Object report{
      {"world_size", program.getWorldSize()}, {"zero_stage", program.getZeroStage()},
      {"backend", program.getBackend()},      {"parameters", parameters},
      {"placement", std::move(placements)},   {"ranks", std::move(ranks)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(report))) << "\n";
}

} // namespace zero::codegen
