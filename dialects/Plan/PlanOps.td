//===- PlanOps.td - the executable plan, one op per schema table -*- tablegen -*-===//
//
// The plan dialect mirrors runtime/schema/plan.fbs one to one, so printing it
// shows exactly what the runtime will do: values (typed views of arena
// buffers), instructions naming schema opcodes, initializers, input bindings,
// parameters and the loss. Buffers carry the memory planner's decisions and
// the accounting kind; they fold into Value.offset when serialized.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_PLAN_OPS
#define ZERO_PLAN_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"

def Plan_Dialect : Dialect {
  let name = "plan";
  let summary = "Executable ZeRO plans (mirrors the FlatBuffer schema)";
  let cppNamespace = "::zero::plan";
}

class Plan_Op<string mnemonic, list<Trait> traits = []>
    : Op<Plan_Dialect, mnemonic, traits>;

// The memory accounting class of a buffer: parameter, gradient,
// optimizer_state, activation, communication, input, constant or
// model_state.


def Plan_ProgramOp : Plan_Op<"program", [
    SymbolTable, SingleBlock, NoTerminator, IsolatedFromAbove,
    HasOnlyGraphRegion, RegionKindInterface]> {
  let summary = "one rank's training step; every rank runs the same program";
  let arguments = (ins StrAttr:$backend, UI32Attr:$world_size, UI32Attr:$zero_stage,
                       OptionalAttr<I64Attr>:$arena_bytes, UnitAttr:$weights_omitted);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "attr-dict-with-keyword $body";
  let hasVerifier = 1;
}

def Plan_BufferOp : Plan_Op<"buffer", [Symbol, HasParent<"ProgramOp">]> {
  let summary = "a region of the arena; `offset` is set by memory planning";
  let description = [{
    Persistent buffers (parameters, optimizer state, inputs, constants, the
    loss) live for the whole run; the others live from their first to their
    last use in program order and may share memory with buffers whose
    lifetimes do not overlap.
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$bytes, StrAttr:$kind,
                       UnitAttr:$persistent, OptionalAttr<I64Attr>:$offset);
  let assemblyFormat = "$sym_name $kind attr-dict";
  let hasVerifier = 1;
}

def Plan_ValueOp : Plan_Op<"value", [Symbol, HasParent<"ProgramOp">,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "a typed view at buffer + byte_offset + rank * rank_stride";
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<AnyRankedTensor>:$type,
                       FlatSymbolRefAttr:$buffer,
                       DefaultValuedAttr<I64Attr, "0">:$byte_offset,
                       DefaultValuedAttr<I64Attr, "0">:$rank_stride,
                       OptionalAttr<StrAttr>:$name);
  let assemblyFormat = "$sym_name `:` $type `in` $buffer attr-dict";
  let hasVerifier = 1;
}

def Plan_InstrOp : Plan_Op<"instr", [HasParent<"ProgramOp">,
    DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "one kernel or collective call, named by its schema opcode";
  let arguments = (ins StrAttr:$opcode, SymbolRefArrayAttr:$inputs,
                       SymbolRefArrayAttr:$outputs,
                       DefaultValuedAttr<DictionaryAttr, "{}">:$attrs);
  let assemblyFormat = "$opcode $inputs `->` $outputs attr-dict";
  let hasVerifier = 1;
}

def Plan_InitOp : Plan_Op<"init", [HasParent<"ProgramOp">]> {
  let summary = "initial contents of a value on one rank (or every rank: -1)";
  let description = [{
    The value's bytes are `data` from element `data_offset` on, zero-padded
    when `data` ends first (the last shard of a padded parameter).
  }];
  let arguments = (ins FlatSymbolRefAttr:$value, DefaultValuedAttr<SI32Attr, "-1">:$rank,
                       ElementsAttr:$data, DefaultValuedAttr<I64Attr, "0">:$data_offset);
  let assemblyFormat = "$value attr-dict";
}

def Plan_InputOp : Plan_Op<"input", [HasParent<"ProgramOp">]> {
  let summary = "a micro-batch input the launcher binds by name (and micro-step)";
  let description = [{
    `eval` marks an input of the evaluation program (plan.evaluation).
  }];
  let arguments = (ins StrAttr:$name, FlatSymbolRefAttr:$value,
                       DefaultValuedAttr<UI32Attr, "0">:$micro_step, UnitAttr:$eval);
  let assemblyFormat = "$name $value attr-dict";
}

def Plan_ParameterOp : Plan_Op<"parameter", [HasParent<"ProgramOp">]> {
  let summary = "a trainable tensor as the user names it, and where it lives";
  let description = [{
    `optimizer_state` names the values of the parameter's optimizer state by
    PyTorch's state_dict keys (`exp_avg`, `exp_avg_sq`, `momentum_buffer`);
    with `state_sharded` each holds this rank's shard of `shard_numel`
    elements, else the whole tensor, flattened. A checkpoint saves them.
  }];
  let arguments = (ins StrAttr:$name, TypeAttrOf<AnyRankedTensor>:$type,
                       FlatSymbolRefAttr:$value, UnitAttr:$sharded, I64Attr:$shard_numel,
                       DefaultValuedAttr<BoolAttr, "true">:$trainable,
                       OptionalAttr<DictionaryAttr>:$optimizer_state, UnitAttr:$state_sharded);
  let assemblyFormat = "$name `:` $type `in` $value attr-dict";
}

def Plan_LossOp : Plan_Op<"loss", [HasParent<"ProgramOp">]> {
  let summary = "the global mean loss after a step (`eval`: after an evaluation)";
  let arguments = (ins FlatSymbolRefAttr:$value, UnitAttr:$eval);
  let assemblyFormat = "$value attr-dict";
}

def Plan_OutputOp : Plan_Op<"output", [HasParent<"ProgramOp">]> {
  let summary = "a named result of a forward-only plan";
  let arguments = (ins StrAttr:$name, FlatSymbolRefAttr:$value);
  let assemblyFormat = "$name $value attr-dict";
}

def Plan_MetricOp : Plan_Op<"metric", [HasParent<"ProgramOp">]> {
  let summary = "a named scalar a training step reports (\"lr\", \"grad_norm\")";
  let arguments = (ins StrAttr:$name, FlatSymbolRefAttr:$value);
  let assemblyFormat = "$name $value attr-dict";
}

def Plan_StepCounterOp : Plan_Op<"step_counter", [HasParent<"ProgramOp">]> {
  let summary = "the optimizer steps done (an i64 scalar the plan increments)";
  let description = [{
    Part of the training state a checkpoint saves: the schedule, AdamW's bias
    correction and Dropout's masks all read it.
  }];
  let arguments = (ins FlatSymbolRefAttr:$value);
  let assemblyFormat = "$value attr-dict";
}

def Plan_EvaluationOp : Plan_Op<"evaluation", [HasParent<"ProgramOp">]> {
  let summary = "starts the evaluation program: the instructions after this op";
  let description = [{
    A training plan compiled with `zero-opt --eval` holds a second instruction
    stream, the forward-only evaluation program, which the runtime runs on
    its own (Session::evaluate), never within a step. The step's
    instructions precede this op and the evaluation's follow it; the inputs
    and the loss marked `eval` are the evaluation's. Scheduling passes keep
    each stream's collectives within it.
  }];
  let assemblyFormat = "attr-dict";
}

def Plan_SourceModelOp : Plan_Op<"source_model", [HasParent<"ProgramOp">]> {
  let summary = "the ONNX model without its trainable initializers, for export";
  let arguments = (ins ElementsAttr:$bytes);
  let assemblyFormat = "attr-dict";
}

#endif // ZERO_PLAN_OPS
