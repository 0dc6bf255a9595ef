//===- WritePlan.cpp - plan.program to a .zplan file, as a pass -----------===//

#include "codegen/Passes.h"
#include "codegen/PlanSerializer.h"
#include "zero/files.h"

#include "mlir/IR/BuiltinOps.h"

namespace zero::codegen {
#define GEN_PASS_DEF_WRITEPLAN
#include "codegen/Passes.h.inc"
} // namespace zero::codegen

using namespace mlir;

namespace {

struct WritePlanPass : public zero::codegen::impl::WritePlanBase<WritePlanPass> {
  using WritePlanBase::WritePlanBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (output.empty()) {
      module.emitError("zero-write-plan needs output=FILE");
      return signalPassFailure();
    }
    auto programs = module.getOps<zero::plan::ProgramOp>();
    if (std::distance(programs.begin(), programs.end()) != 1) {
      module.emitError("expected one plan.program; run zero-lower-to-plan and zero-plan-memory "
                       "first");
      return signalPassFailure();
    }
    // Serialized whole before the file is touched: an instruction the
    // serializer refuses leaves no partial plan behind.
    std::string bytes;
    llvm::raw_string_ostream os(bytes);
    if (failed(zero::codegen::serializePlan(*programs.begin(), os)))
      return signalPassFailure();
    if (zero::Status status = zero::write_file_atomically(output, bytes.data(), bytes.size());
        !status.ok()) {
      module.emitError(status.message());
      return signalPassFailure();
    }
    markAllAnalysesPreserved();
  }
};

} // namespace
