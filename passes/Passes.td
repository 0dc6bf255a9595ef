//===- Passes.td - the zero compilation pipeline -----------*- tablegen -*-===//

#ifndef ZERO_PASSES
#define ZERO_PASSES

include "mlir/Pass/PassBase.td"

def BuildTrainStep : Pass<"zero-build-train-step", "mlir::ModuleOp"> {
  let summary = "Append reverse-mode autodiff and optimizer updates to @main";
  let description = [{
    Turns the imported forward function `@main`, which returns a scalar loss,
    into one training step: the loss's seed gradient, each op's gradient rule
    (its GradientOpInterface, GradientRules.cpp) applied in reverse,
    gradients summed over uses, and one optimizer update
    per parameter (`ml_program.global`) that the loss depends on. Parameter
    reads are re-issued in the backward pass so later passes can see where
    each parameter is needed (ZeRO-3 gathers it again there).

    The pass decides which globals are model state rather than weights and
    marks them `zero.model_state`: those `@main` writes itself (a
    training-mode BatchNormalization's running statistics) and those the
    importer marks `onnx.running_statistics` (also read in inference mode).
    Model state gets no gradient and no update.

    `freeze` and `trainable` are regular expressions matched against the
    whole name of each parameter (as Python's `re.fullmatch`): a weight whose
    name matches `freeze`, or does not match a given `trainable`, is frozen
    (`zero.frozen`): a float buffer such as a causal mask or a rotary table,
    which PyTorch never trains. A pattern that matches no parameter is an
    error (a typo would otherwise train what the user meant to freeze).
  }];
  let options = [
    Option<"optimizer", "optimizer", "std::string", "\"adamw\"",
           "sgd, adam or adamw">,
    Option<"lr", "lr", "double", "1e-3", "learning rate">,
    Option<"momentum", "momentum", "double", "0.0", "SGD momentum">,
    Option<"beta1", "beta1", "double", "0.9", "Adam beta1">,
    Option<"beta2", "beta2", "double", "0.999", "Adam beta2">,
    Option<"eps", "eps", "double", "1e-8", "Adam epsilon">,
    Option<"weightDecay", "weight-decay", "double", "-1.0",
           "weight decay (default: 0.01 for adamw, 0 otherwise)">,
    Option<"microSteps", "micro-steps", "int64_t", "1",
           "gradient accumulation: forward and backward passes per optimizer step">,
    Option<"freeze", "freeze", "std::string", "\"\"",
           "parameters whose whole name matches this regex are not trained">,
    Option<"trainable", "trainable", "std::string", "\"\"",
           "only parameters whose whole name matches this regex are trained">,
  ];
  let dependentDialects = ["::zero::onnx::OnnxDialect", "::zero::ZeroDialect"];
}

def BuildEvalStep : Pass<"zero-build-eval-step", "mlir::ModuleOp"> {
  let summary = "Add @eval_step: @main's loss in evaluation mode";
  let description = [{
    Copies the forward function @main, before zero-build-train-step makes it
    the training step, into @eval_step in evaluation mode, as PyTorch's
    `model.eval()` runs it: Dropout is the identity, and a training-mode
    BatchNormalization normalizes with its running statistics and updates
    none. @eval_step reads the parameter globals and writes none;
    zero-partition gathers its sharded weights and averages its loss over
    the ranks, and zero-lower-to-plan lowers it to the plan's evaluation
    program.
  }];
  let dependentDialects = ["::zero::onnx::OnnxDialect"];
}

def MarkModelState : Pass<"zero-mark-model-state", "mlir::ModuleOp"> {
  let summary = "Mark the globals that are model state, not weights";
  let description = [{
    A global that @main writes (a training-mode BatchNormalization's running
    statistics) or that ONNX reads as running statistics
    (`onnx.running_statistics`) gets `zero.model_state`: no gradient, no
    update, whole on every rank. zero-build-train-step decides the same
    itself; a forward-only pipeline, which has no training step, runs this.
  }];
}

def ScheduleLearningRate : Pass<"zero-schedule-learning-rate", "mlir::ModuleOp"> {
  let summary = "Give every optimizer update the rate of a warmup and decay schedule";
  let description = [{
    Adds one `zero.learning_rate` before the first update of @train_step,
    from the updates' (common) `lr` and this pass's schedule, passes it to
    every update as `lr(...)`, and reports it as the metric "lr". The plan
    evaluates the schedule each step from the optimizer step counter, so one
    plan serves the whole run.
  }];
  let options = [
    Option<"schedule", "schedule", "std::string", "\"constant\"", "constant, linear or cosine">,
    Option<"warmupSteps", "warmup-steps", "int64_t", "0", "steps of linear warmup from 0">,
    Option<"totalSteps", "total-steps", "int64_t", "0",
           "the step at which linear and cosine reach their end">,
    Option<"minLrRatio", "min-lr-ratio", "double", "0.0",
           "the fraction of lr the decay ends at">,
  ];
}

def ClipGradNorm : Pass<"zero-clip-grad-norm", "mlir::ModuleOp"> {
  let summary = "Scale every gradient by torch.nn.utils.clip_grad_norm_'s coefficient";
  let description = [{
    Runs after zero-partition, on the gradients the updates read: the global
    L2 norm over all of them is the square root of the summed squares, where
    a sharded gradient's squares are summed over ranks (one scalar
    all-reduce) and a replicated one's are the same on every rank. Each
    update then reads its gradient scaled by min(1, max_norm / (norm +
    1e-6)). Reduce-scatters that zero-partition placed after the first update
    (stage 1) move before it, so the norm is complete before any update; the
    collective order stays the same on every rank. The norm before clipping
    is the metric "grad_norm".
  }];
  let options = [
    Option<"maxNorm", "max-norm", "double", "1.0", "the largest global gradient norm">,
  ];
  let statistics = [
    Statistic<"numShardedGradients", "sharded-gradients", "gradients whose squares are summed over ranks">,
    Statistic<"numMovedCollectives", "moved-collectives", "reduce-scatters moved before the first update">
  ];
  let dependentDialects = ["::zero::onnx::OnnxDialect"];
}

def Partition : Pass<"zero-partition", "mlir::ModuleOp"> {
  let summary = "Insert ZeRO collectives and sharded updates for a stage and world size";
  let description = [{
    Records each trainable parameter's placement, a `#zero.placement` in the
    discardable attribute `zero.placement` of its `ml_program.global`
    (replicated or sharded weights, gradient and optimizer state), unless a
    pass before this one set it; then rewrites the step for those placements.
    zero-lower-to-plan reads the placements, not the stage.

    Stage 0 all-reduces gradients. Stage 1 reduce-scatters them, updates
    this rank's shard of each parameter and its optimizer state, and
    all-gathers the parameter. Stage 2 is stage 1 with reduce-scatters placed
    right after each gradient is complete, so full gradients die early.
    Stage 3 keeps parameters as shards: every read becomes an all-gather
    placed just before its first use. With `persist-below`, stage-3
    parameters of fewer bytes stay whole on every rank (weights, gradient
    and optimizer state, as at stage 0): no gathers for biases and norm
    scales. The loss is averaged over ranks. An @eval_step
    (zero-build-eval-step) gets the same: its loss averaged, its reads of
    sharded weights gathered.
  }];
  let options = [
    Option<"stage", "stage", "int64_t", "0", "ZeRO stage (0-3)">,
    Option<"worldSize", "world-size", "int64_t", "1", "number of ranks">,
    Option<"persistBelow", "persist-below", "int64_t", "0",
           "stage 3: parameters of fewer bytes stay replicated (0: none)">,
  ];
  let statistics = [
    Statistic<"numShardedWeights", "sharded-weights", "parameters stored as shards">,
    Statistic<"numPersistent", "persistent", "stage-3 parameters kept whole by persist-below">,
    Statistic<"numAllReduces", "all-reduces", "gradient all-reduces inserted">,
    Statistic<"numReduceScatters", "reduce-scatters", "gradient reduce-scatters inserted">,
    Statistic<"numAllGathers", "all-gathers", "parameter all-gathers inserted">
  ];
  let dependentDialects = ["::zero::ZeroDialect"];
}

def PrefetchGathers : Pass<"zero-prefetch-gathers", "mlir::ModuleOp"> {
  let summary = "Issue each parameter all-gather earlier, so it overlaps compute";
  let description = [{
    At ZeRO stage 3 every parameter read is an all-gather placed just before
    its first use. This pass moves each gather (with its load_shard) up to
    the first use of the gather `distance` places before it, so a backend that
    runs collectives on their own stream fetches the next layer's
    parameters while the current layer computes. Shards change only in the
    updates at the end of the step, so moving reads earlier keeps the
    program's meaning; the gathered copies live longer, which the memory
    plan and the report show. The collective order stays the same on every
    rank.
  }];
  let options = [
    Option<"distance", "distance", "int64_t", "1", "how many gathers ahead to issue each one">,
  ];
  let statistics = [
    Statistic<"numMoved", "moved", "parameter gathers issued earlier">
  ];
}

def LowerToPlan : Pass<"zero-lower-to-plan", "mlir::ModuleOp"> {
  let summary = "Bufferize the partitioned step and select kernels and collectives";
  let description = [{
    Replaces the module's contents with one `plan.program`: every tensor
    becomes a `plan.value` view of a `plan.buffer` (views for reshapes,
    in-place updates and collectives where the schema allows them), every op
    becomes `plan.instr`s naming runtime opcodes, and parameters, optimizer
    state, inputs and the loss become persistent buffers.
  }];
  let options = [
    Option<"backend", "backend", "std::string", "\"cpu\"", "cpu or cuda">,
    Option<"omitWeights", "omit-weights", "bool", "false",
           "leave trainable parameters without initial values (the launcher supplies them)">,
  ];
  let dependentDialects = ["::zero::plan::PlanDialect"];
  let statistics = [
    Statistic<"numInstructions", "instructions", "plan instructions">,
    Statistic<"numBuffers", "buffers", "plan buffers">,
    Statistic<"numViews", "views", "values that view a buffer another value also views (reshapes, in-place collectives and updates)">
  ];
}

def BucketCollectives : Pass<"zero-bucket-collectives", "mlir::ModuleOp"> {
  let summary = "Issue all-reduces together once a bucket of them is pending";
  let description = [{
    Holds each all-reduce of a lowered plan back until `bytes` of them are
    pending (or an instruction touches one's bytes), then issues them as one
    consecutive run, which zero-overlap-collectives turns into one group
    launch: fewer, larger collectives, as DDP's gradient buckets. Only issue
    points move; the collective order is the same on every rank. Runs before
    zero-overlap-collectives and zero-plan-memory. `bytes = 0` leaves the
    plan unchanged.
  }];
  let options = [
    Option<"bytes", "bytes", "int64_t", "26214400", "bucket size in bytes (DDP's 25 MiB)">,
  ];
  let statistics = [
    Statistic<"numBuckets", "buckets", "runs of all-reduces issued together">,
    Statistic<"numHeldBack", "held-back", "all-reduces moved later to join a bucket">
  ];
}

def OverlapCollectives : Pass<"zero-overlap-collectives", "mlir::ModuleOp"> {
  let summary = "Run collectives asynchronously: start where issued, wait before first use";
  let description = [{
    Makes every collective of a lowered plan asynchronous: it gets a slot,
    and a `Wait` on that slot is inserted right before the first later
    instruction that touches one of its buffers (or at the end of the step),
    so the kernels in between run while the transfer does. A collective
    whose input buffer would otherwise die where it starts (a stage 2-3
    gradient reduce-scatter) keeps that buffer alive until its Wait; at most
    `window` of those are in flight at once, each waited before the one
    `window` places later starts, which bounds the memory overlap costs.
    The Wait names the collective's operands, so memory planning keeps them
    live. Runs of consecutive collectives form groups (one NCCL group
    launch). `window = 0` leaves every collective synchronous.
  }];
  let options = [
    Option<"window", "window", "int64_t", "2",
           "collectives that keep an otherwise dead buffer alive, in flight at once">,
  ];
  let statistics = [
    Statistic<"numAsync", "asynchronous", "collectives given a slot">,
    Statistic<"numWaits", "waits", "Wait instructions inserted">,
    Statistic<"numSlots", "slots", "slots used at most at once">,
    Statistic<"numGroups", "groups", "runs of collectives issued as one group">
  ];
}

def PlanMemory : Pass<"zero-plan-memory", "mlir::ModuleOp"> {
  let summary = "Assign arena offsets by liveness";
  let description = [{
    Persistent buffers get their own offsets; every other buffer lives from
    the instruction that first touches it to the last and is placed, largest
    first, at the lowest offset no placed buffer of overlapping lifetime
    occupies (greedy by size), so buffers whose lifetimes do not overlap share
    memory. Sets the program's arena size.
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", "64", "byte alignment of buffers">,
  ];
  let statistics = [
    Statistic<"numPersistentBytes", "persistent-bytes", "bytes of buffers that live for the whole step">,
    Statistic<"numTransientBuffers", "transient-buffers", "buffers placed by liveness">,
    Statistic<"numTransientBytes", "transient-bytes", "bytes those buffers would take unshared">,
    Statistic<"numArenaBytes", "arena-bytes", "planned arena">
  ];
}

#endif // ZERO_PASSES
