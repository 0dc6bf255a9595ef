//===- MemoryReport.cpp - per-rank memory and traffic of a plan -----------===//

#include "codegen/MemoryReport.h"
#include "dialects/Zero/ZeroDialect.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/JSON.h"

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

} // namespace

void writeMemoryReport(plan::ProgramOp program, llvm::raw_ostream &os) {
  // Lifetimes in instruction indices, as zero-plan-memory computes them.
  llvm::MapVector<llvm::StringRef, std::pair<int64_t, int64_t>> lifetime;
  mlir::SymbolTable symbols(program);
  int64_t count = 0;
  double sent = 0;
  for (auto instr : program.getOps<plan::InstrOp>()) {
    for (mlir::Attribute ref : llvm::concat<const mlir::Attribute>(instr.getInputs(), instr.getOutputs())) {
      auto value = symbols.lookup<plan::ValueOp>(llvm::cast<mlir::FlatSymbolRefAttr>(ref).getAttr());
      auto [it, inserted] = lifetime.try_emplace(value.getBuffer(), count, count);
      it->second.second = count;
    }
    sent += sentBytes(program, symbols, instr);
    ++count;
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
    auto where = [](int64_t shards) {
      return shards == PlacementAttr::kReplicated ? "replicated" : "sharded";
    };
    placements.push_back(
        llvm::json::Object{{"name", param.getName()},
                           {"bytes", plan::getTensorBytes(type)},
                           {"weights", where(placement.getWeights())},
                           {"grad", where(placement.getGrad())},
                           {"optimizer_state", where(placement.getOptimizerState())}});
  }

  llvm::json::Array ranks;
  for (uint32_t rank = 0; rank < program.getWorldSize(); ++rank) {
    // Every rank runs the same program over equally sized shards.
    llvm::json::Object entry{{"rank", rank}};
    for (llvm::StringRef kind : kKinds)
      entry[(kind + "_bytes").str()] = persistent.lookup(kind) + peak.lookup(kind);
    entry["peak_bytes"] = program.getArenaBytes() ? *program.getArenaBytes() : 0;
    entry["sent_bytes_per_step"] = static_cast<int64_t>(sent + 0.5);
    ranks.push_back(std::move(entry));
  }
  llvm::json::Object report{
      {"world_size", program.getWorldSize()}, {"zero_stage", program.getZeroStage()},
      {"backend", program.getBackend()},      {"parameters", parameters},
      {"placement", std::move(placements)},   {"ranks", std::move(ranks)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(report))) << "\n";
}

} // namespace zero::codegen
