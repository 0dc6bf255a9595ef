//===- Passes.td - zero's code generation passes -----------*- tablegen -*-===//

#ifndef ZERO_CODEGEN_PASSES
#define ZERO_CODEGEN_PASSES

include "mlir/Pass/PassBase.td"

def WritePlan : Pass<"zero-write-plan", "mlir::ModuleOp"> {
  let summary = "Write the module's plan.program as a FlatBuffer plan";
  let description = [{
    What `zero-opt model.onnx -o model.zplan` does last, as a pass: a plan
    printed with `--emit=plan`, edited or produced by another pipeline, is
    written to `output` in the format of runtime/schema/plan.fbs, for zero-run.
    The file is written to a temporary name and renamed; on an error
    (anything the schema cannot express, an incomplete instruction) nothing
    is written and the module is left as it was.
  }];
  let options = [
    Option<"output", "output", "std::string", "", "the plan file to write">,
  ];
}

#endif // ZERO_CODEGEN_PASSES
