//===- ZeroOps.td - training step and ZeRO partitioning ops -*- tablegen -*-===//
//
// Ops that the training-step builder and the ZeRO partitioning passes add to
// a model: fused gradient kernels, optimizer updates of ml_program globals,
// and collectives. Parameters are `ml_program.global`s; everything else is
// SSA tensors.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_ZERO_OPS
#define ZERO_ZERO_OPS

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Zero_Dialect : Dialect {
  let name = "zero";
  let summary = "Training steps and ZeRO data parallelism";
  let cppNamespace = "::zero";
  let dependentDialects = ["::mlir::ml_program::MLProgramDialect"];
  let useDefaultAttributePrinterParser = 1;
  // Checks the discardable attributes zero's passes put on other dialects'
  // ops (`zero.placement`).
  let hasOperationAttrVerify = 1;
}

class Zero_Op<string mnemonic, list<Trait> traits = []>
    : Op<Zero_Dialect, mnemonic, traits>;

def Zero_FloatTensor : RankedTensorOf<[F32]>;

//===----------------------------------------------------------------------===//
// Gradient kernels: fused where a composition of forward ops would cost
// extra memory traffic and intermediates.
//===----------------------------------------------------------------------===//

def Zero_ElementwiseGradOp : Zero_Op<"elementwise_grad", [Pure, SameOperandsAndResultType]> {
  let summary = "dx = the derivative kernel of elementwise op `op` applied to (dy, saved)";
  let description = [{
    `op` names a unary op with a derivative kernel in
    runtime/include/zero/elementwise_ops.h, which defines its formula and
    whether `saved` is the forward input or the forward result. An op with
    attributes carries exactly the forward op's (`alpha`, `beta`, `gamma`,
    `min`, `max`: their ONNX names).
  }];
  let arguments = (ins StrAttr:$op, Zero_FloatTensor:$dy, Zero_FloatTensor:$saved,
                       OptionalAttr<F32Attr>:$alpha, OptionalAttr<F32Attr>:$beta,
                       OptionalAttr<F32Attr>:$gamma, OptionalAttr<F32Attr>:$min,
                       OptionalAttr<F32Attr>:$max);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$op $dy `,` $saved attr-dict `:` type($dx)";
  let hasVerifier = 1;
}

class Zero_SoftmaxGradLikeOp<string mnemonic, string formula>
    : Zero_Op<mnemonic, [Pure, SameOperandsAndResultType]> {
  let summary = "dx = " # formula # " along `axis`; y is the forward result";
  let arguments = (ins Zero_FloatTensor:$dy, Zero_FloatTensor:$y, I64Attr:$axis);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $y attr-dict `:` type($dx)";
}

def Zero_SoftmaxGradOp : Zero_SoftmaxGradLikeOp<"softmax_grad", "y * (dy - sum(dy * y))">;
def Zero_LogSoftmaxGradOp : Zero_SoftmaxGradLikeOp<"log_softmax_grad", "dy - exp(y) * sum(dy)">;

class Zero_LossGradOp<string mnemonic> : Zero_Op<mnemonic, [Pure]> {
  let summary = "gradient of the ONNX loss with respect to its input";
  let description = "`weights` are the forward op's optional class weights ([C]).";
  let arguments = (ins Zero_FloatTensor:$dloss, Zero_FloatTensor:$input,
                       RankedTensorOf<[I64]>:$labels, Optional<Zero_FloatTensor>:$weights,
                       StrAttr:$reduction, OptionalAttr<I64Attr>:$ignore_index);
  let results = (outs Zero_FloatTensor:$dinput);
  let assemblyFormat = [{
    $dloss `,` $input `,` $labels (`,` $weights^)? attr-dict `:` `(` type($dloss) `,` type($input) `,` type($labels) (`,` type($weights)^)? `)` `->` type($dinput)
  }];
  let hasVerifier = 1;
}

def Zero_SoftmaxCrossEntropyLossGradOp : Zero_LossGradOp<"softmax_cross_entropy_loss_grad">;
def Zero_NegativeLogLikelihoodLossGradOp : Zero_LossGradOp<"negative_log_likelihood_loss_grad">;

//===----------------------------------------------------------------------===//
// Optimizer updates. Each updates parameter @param (or this rank's shard of
// it when `sharded`) and its optimizer state in place. Optimizer state is
// implicit: the lowering allocates it next to the parameter (shard). With
// `lr(%rate)` the step uses that rate (a schedule's) instead of `lr`, also in
// AdamW's decoupled weight decay, as PyTorch's schedulers do; with
// `scale(%c)` the gradient is multiplied by c first (clipping).
//===----------------------------------------------------------------------===//

def Zero_Scalar : 0DTensorOf<[F32]>,
    BuildableType<"::mlir::RankedTensorType::get({}, $_builder.getF32Type())">;

class Zero_UpdateOp<string mnemonic, string summary_, dag hyperparameters>
    : Zero_Op<mnemonic, [AttrSizedOperandSegments]> {
  let summary = summary_;
  let arguments = !con((ins FlatSymbolRefAttr:$param, Zero_FloatTensor:$grad,
                            Optional<Zero_Scalar>:$scheduled_lr, Optional<Zero_Scalar>:$grad_scale),
                       hyperparameters, (ins UnitAttr:$sharded));
  let assemblyFormat = [{
    $param `,` $grad (`lr` `(` $scheduled_lr^ `)`)? (`scale` `(` $grad_scale^ `)`)? attr-dict
    `:` type($grad)
  }];
  let hasVerifier = 1;
}

def Zero_SgdUpdateOp : Zero_UpdateOp<"sgd_update", "torch.optim.SGD step (dampening 0, no Nesterov)",
    (ins F32Attr:$lr, F32Attr:$momentum, F32Attr:$weight_decay)> {
  let builders = [OpBuilder<(ins "mlir::FlatSymbolRefAttr":$param, "mlir::Value":$grad,
      "mlir::FloatAttr":$lr, "mlir::FloatAttr":$momentum, "mlir::FloatAttr":$weight_decay,
      "mlir::UnitAttr":$sharded), [{
    build($_builder, $_state, param, grad, mlir::Value(), mlir::Value(), lr, momentum,
          weight_decay, sharded);
  }]>];
}

def Zero_AdamWUpdateOp : Zero_UpdateOp<"adamw_update", "torch.optim.AdamW step with bias correction",
    (ins F32Attr:$lr, F32Attr:$beta1, F32Attr:$beta2, F32Attr:$eps, F32Attr:$weight_decay)> {
  let builders = [OpBuilder<(ins "mlir::FlatSymbolRefAttr":$param, "mlir::Value":$grad,
      "mlir::FloatAttr":$lr, "mlir::FloatAttr":$beta1, "mlir::FloatAttr":$beta2,
      "mlir::FloatAttr":$eps, "mlir::FloatAttr":$weight_decay, "mlir::UnitAttr":$sharded), [{
    build($_builder, $_state, param, grad, mlir::Value(), mlir::Value(), lr, beta1, beta2, eps,
          weight_decay, sharded);
  }]>];
}

//===----------------------------------------------------------------------===//
// The optimizer step's schedule and gradient clipping (a real training run's
// hyperparameters, evaluated per step by the plan, not by the host).
//===----------------------------------------------------------------------===//

def Zero_LearningRateOp : Zero_Op<"learning_rate", [MemoryEffects<[MemRead]>]> {
  let summary = "the learning rate of this optimizer step under a schedule";
  let description = [{
    With s the optimizer step counted from 0, W = `warmup_steps`, T =
    `total_steps` and r = `min_lr_ratio`: during warmup (s < W) the rate is
    lr * s / max(1, W); after it lr * (r + (1 - r) * f), f = 1 for
    `constant`, max(0, (T - s) / max(1, T - W)) for `linear` and
    max(0, (1 + cos(pi * p)) / 2), p = (s - W) / max(1, T - W), for `cosine`
    (HuggingFace's get_*_schedule_with_warmup with LambdaLR). From step T on
    the rate stays at its value for s = T. Reads the step counter, so it is
    not pure.
  }];
  let arguments = (ins F32Attr:$lr, StrAttr:$schedule, I64Attr:$warmup_steps,
                       I64Attr:$total_steps, F32Attr:$min_lr_ratio);
  let results = (outs Zero_Scalar:$rate);
  let assemblyFormat = "$schedule attr-dict";
  let hasVerifier = 1;
}

def Zero_SumSquaresOp : Zero_Op<"sum_squares", [Pure]> {
  let summary = "the sum of the squares of every element (a squared L2 norm)";
  let arguments = (ins Zero_FloatTensor:$input);
  let results = (outs Zero_Scalar:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Zero_ClipCoefficientOp : Zero_Op<"clip_coefficient", [Pure]> {
  let summary = "torch.nn.utils.clip_grad_norm_'s factor from the squared total norm";
  let description = [{
    norm = sqrt(sum_squares); coefficient = min(1, max_norm / (norm + 1e-6)).
  }];
  let arguments = (ins Zero_Scalar:$sum_squares, F32Attr:$max_norm);
  let results = (outs Zero_Scalar:$coefficient, Zero_Scalar:$norm);
  let assemblyFormat = "$sum_squares attr-dict";
  let hasVerifier = 1;
}

def Zero_MetricOp : Zero_Op<"metric"> {
  let summary = "a scalar the step reports by name (the log's \"lr\", \"grad_norm\")";
  let arguments = (ins StrAttr:$name, Zero_Scalar:$value);
  let assemblyFormat = "$name $value attr-dict";
}

def Zero_GatherGradOp : Zero_Op<"gather_grad", [Pure]> {
  let summary = "scatter-add of dy into zeros of the data's type (repeated indices add up)";
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$indices, I64Attr:$axis);
  let results = (outs Zero_FloatTensor:$ddata);
  let assemblyFormat = [{
    $dy `,` $indices attr-dict `:` `(` type($dy) `,` type($indices) `)` `->` type($ddata)
  }];
}

def Zero_GatherElementsGradOp : Zero_Op<"gather_elements_grad", [Pure]> {
  let summary = "dy scatter-added into zeros of the data's type along `axis` (GatherElements')";
  let description = [{
    Repeated indices add up, in index order on the CPU; TopK's values
    gradient too (its indices never repeat).
  }];
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$indices, I64Attr:$axis);
  let results = (outs Zero_FloatTensor:$ddata);
  let assemblyFormat = [{
    $dy `,` $indices attr-dict `:` `(` type($dy) `,` type($indices) `)` `->` type($ddata)
  }];
}

def Zero_ScatterElementsGradOp : Zero_Op<"scatter_elements_grad", [Pure]> {
  let summary = "dy with zeros where ScatterElements (reduction none) wrote: data's gradient";
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$indices, I64Attr:$axis);
  let results = (outs Zero_FloatTensor:$ddata);
  let assemblyFormat = [{
    $dy `,` $indices attr-dict `:` `(` type($dy) `,` type($indices) `)` `->` type($ddata)
  }];
}

def Zero_GatherNDGradOp : Zero_Op<"gather_nd_grad", [Pure]> {
  let summary = "dy's slices scatter-added into zeros of the data's type (GatherND's)";
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$indices);
  let results = (outs Zero_FloatTensor:$ddata);
  let assemblyFormat = [{
    $dy `,` $indices attr-dict `:` `(` type($dy) `,` type($indices) `)` `->` type($ddata)
  }];
}

def Zero_ScatterNDGradOp : Zero_Op<"scatter_nd_grad", [Pure]> {
  let summary = "dy with zeros at the slices ScatterND (reduction none) wrote: data's gradient";
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$indices);
  let results = (outs Zero_FloatTensor:$ddata);
  let assemblyFormat = [{
    $dy `,` $indices attr-dict `:` `(` type($dy) `,` type($indices) `)` `->` type($ddata)
  }];
}

def Zero_SliceGradOp : Zero_Op<"slice_grad", [Pure]> {
  let summary = "dy written at the slice positions of zeros of the input's type";
  let arguments = (ins Zero_FloatTensor:$dy, DenseI64ArrayAttr:$starts, DenseI64ArrayAttr:$steps);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$dy attr-dict `:` type($dy) `->` type($dx)";
}

def Zero_LayerNormalizationGradOp : Zero_Op<"layer_normalization_grad", [Pure]> {
  let summary = "gradients of LayerNormalization for input, scale and bias";
  let arguments = (ins Zero_FloatTensor:$dy, Zero_FloatTensor:$input, Zero_FloatTensor:$scale,
                       Zero_FloatTensor:$mean, Zero_FloatTensor:$inv_std_dev, I64Attr:$axis);
  let results = (outs Zero_FloatTensor:$dinput, Zero_FloatTensor:$dscale,
                      Zero_FloatTensor:$dbias);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

class Zero_SpatialGradOp<string mnemonic, string summary_>
    : Zero_Op<mnemonic, [Pure]> {
  let summary = summary_;
  let arguments = (ins Zero_FloatTensor:$dy, Zero_FloatTensor:$saved,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, I64Attr:$group);
  let results = (outs Zero_FloatTensor:$grad);
  let assemblyFormat = "$dy `,` $saved attr-dict `:` functional-type(operands, results)";
}

def Zero_ConvGradInputOp : Zero_SpatialGradOp<"conv_grad_input",
    "gradient of Conv for its input; `saved` is the weight">;
def Zero_ConvGradWeightOp : Zero_SpatialGradOp<"conv_grad_weight",
    "gradient of Conv for its weight; `saved` is the input">;

def Zero_AccumulateOp : Zero_Op<"accumulate", [Pure, SameOperandsAndResultType]> {
  let summary = "a parameter's gradient summed over micro-steps (gradient accumulation)";
  let description = [{
    `sum` + `term`, where `term` is one micro-step's gradient and `sum` the
    earlier micro-steps' (a value or another zero.accumulate). zero-partition
    reduces each term as it completes where the gradient is sharded, so only
    shards are accumulated; elsewhere it is an addition of whole gradients,
    reduced once.
  }];
  let arguments = (ins Zero_FloatTensor:$sum, Zero_FloatTensor:$term);
  let results = (outs Zero_FloatTensor:$result);
  let assemblyFormat = "$sum `,` $term attr-dict `:` type($result)";
}

def Zero_DropoutGradOp : Zero_Op<"dropout_grad", [SameOperandsAndResultType]> {
  let summary = "dx = dy * keep / (1 - ratio), the forward Dropout's mask recomputed";
  let arguments = (ins Zero_FloatTensor:$dy, F32Attr:$ratio, I64Attr:$stream,
                       DefaultValuedAttr<I64Attr, "0">:$micro_step);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$dy attr-dict `:` type($dx)";
}

def Zero_MaxPoolGradOp : Zero_Op<"max_pool_grad", [Pure]> {
  let summary = "dy added at each window's maximum (from MaxPool's argmax)";
  let arguments = (ins Zero_FloatTensor:$dy, RankedTensorOf<[I64]>:$argmax,
                       DenseI64ArrayAttr:$kernel_shape, DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$pads, DefaultValuedAttr<BoolAttr, "false">:$ceil_mode,
                       OptionalAttr<DenseI64ArrayAttr>:$dilations);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$dy `,` $argmax attr-dict `:` functional-type(operands, results)";
}

def Zero_AveragePoolGradOp : Zero_Op<"average_pool_grad", [Pure]> {
  let summary = "dy spread evenly over each window";
  let arguments = (ins Zero_FloatTensor:$dy, DenseI64ArrayAttr:$kernel_shape,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       BoolAttr:$count_include_pad,
                       DefaultValuedAttr<BoolAttr, "false">:$ceil_mode);
  let results = (outs Zero_FloatTensor:$dx);
  let assemblyFormat = "$dy attr-dict `:` functional-type(operands, results)";
}

def Zero_BatchNormalizationGradOp : Zero_Op<"batch_normalization_grad", [Pure]> {
  let summary = "training-mode BatchNormalization gradients for input, scale and bias";
  let arguments = (ins Zero_FloatTensor:$dy, Zero_FloatTensor:$input, Zero_FloatTensor:$scale,
                       Zero_FloatTensor:$saved_mean, Zero_FloatTensor:$saved_inv_std);
  let results = (outs Zero_FloatTensor:$dinput, Zero_FloatTensor:$dscale,
                      Zero_FloatTensor:$dbias);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Sharding and collectives. A shard is this rank's contiguous 1/N of a tensor
// flattened and zero-padded to N * ceil(numel / N) elements, so any shape and
// any world size work. Collectives run on the world communicator in program
// order, which is the same on every rank.
//===----------------------------------------------------------------------===//

def Zero_LoadShardOp : Zero_Op<"load_shard", [MemoryEffects<[MemRead]>]> {
  let summary = "this rank's shard of parameter @param";
  let arguments = (ins FlatSymbolRefAttr:$param);
  let results = (outs 1DTensorOf<[F32]>:$shard);
  let assemblyFormat = "$param attr-dict `:` type($shard)";
  let hasVerifier = 1;
}

// How a collective combines ranks: "sum" or "mean".

def Zero_AllReduceOp : Zero_Op<"all_reduce", [SameOperandsAndResultType]> {
  let summary = "every rank gets the reduction of `input` over all ranks";
  let arguments = (ins Zero_FloatTensor:$input, StrAttr:$reduction);
  let results = (outs Zero_FloatTensor:$result);
  let assemblyFormat = "$input $reduction attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Zero_ReduceScatterOp : Zero_Op<"reduce_scatter"> {
  let summary = "reduce `input` over all ranks and keep this rank's shard";
  let arguments = (ins Zero_FloatTensor:$input, StrAttr:$reduction,
                       I64Attr:$world_size);
  let results = (outs 1DTensorOf<[F32]>:$shard);
  let assemblyFormat = "$input $reduction attr-dict `:` type($input) `->` type($shard)";
  let hasVerifier = 1;
}

def Zero_AllGatherOp : Zero_Op<"all_gather"> {
  let summary = "concatenate every rank's shard and drop the padding";
  let arguments = (ins 1DTensorOf<[F32]>:$shard, I64Attr:$world_size);
  let results = (outs Zero_FloatTensor:$result);
  let assemblyFormat = "$shard attr-dict `:` type($shard) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Placement: where each part of a parameter lives. zero-partition records it
// on every trainable `ml_program.global` (discardable attribute
// `zero.placement`); zero-lower-to-plan allocates and updates each parameter
// by it and copies it onto the `plan.parameter` for the report.
//===----------------------------------------------------------------------===//

def Zero_PlacementAttr : AttrDef<Zero_Dialect, "Placement"> {
  let mnemonic = "placement";
  let summary = "where a parameter's weights, gradient and optimizer state live";
  let description = [{
    Each of the three tensors is `replicated` (every rank holds all of it) or
    `sharded<N>` (each of N ranks holds its shard, as `zero.load_shard`
    defines). The ZeRO stages are the four valid combinations:

      stage 0: weights = replicated, grad = replicated, optimizer_state = replicated
      stage 1: weights = replicated, grad = replicated, optimizer_state = sharded<N>
      stage 2: weights = replicated, grad = sharded<N>, optimizer_state = sharded<N>
      stage 3: weights = sharded<N>, grad = sharded<N>, optimizer_state = sharded<N>

    A replicated gradient of a sharded optimizer state (stage 1) stays whole
    until the update and is reduce-scattered there; a sharded gradient is
    reduce-scattered as soon as it is complete. Sharded weights need a sharded
    gradient, and a sharded gradient a sharded optimizer state: the update
    runs where its inputs are all whole or all shards.

    In C++ a count of 0 (`kReplicated`) stands for `replicated`.
  }];
  let parameters = (ins "int64_t":$weights, "int64_t":$grad, "int64_t":$optimizerState);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The shard count that means "every rank holds the whole tensor".
    static constexpr int64_t kReplicated = 0;
    /// Everything whole on every rank: an unpartitioned parameter.
    static PlacementAttr getReplicated(::mlir::MLIRContext *context) {
      return get(context, kReplicated, kReplicated, kReplicated);
    }
    bool hasShardedWeights() const { return getWeights() != kReplicated; }
    bool hasShardedGrad() const { return getGrad() != kReplicated; }
    bool hasShardedOptimizerState() const { return getOptimizerState() != kReplicated; }
  }];
}

#endif // ZERO_ZERO_OPS
