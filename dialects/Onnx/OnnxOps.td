//===- OnnxOps.td - ONNX operators as MLIR ops -------------*- tablegen -*-===//
//
// The subset of ONNX that zero trains. Shapes are static: the importer folds
// shape operands (Reshape's shape, ReduceSum's axes) into result types and
// attributes, so every op here is a pure function of tensor operands.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_ONNX_OPS
#define ZERO_ONNX_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Onnx_Dialect : Dialect {
  let name = "onnx";
  let summary = "ONNX operators with static shapes";
  let cppNamespace = "::zero::onnx";
  let hasConstantMaterializer = 1;
}

class Onnx_Op<string mnemonic, list<Trait> traits = []>
    : Op<Onnx_Dialect, mnemonic, !listconcat(traits, [Pure])>;

def Onnx_Tensor : RankedTensorOf<[F32, I64]>;
def Onnx_FloatTensor : RankedTensorOf<[F32]>;

// Elementwise ops with numpy (multidirectional) broadcasting.
// Elementwise with numpy broadcasting; `resultElement` "": the operands'
// element type, else that type (comparisons give I64, ONNX's BOOL).
class Onnx_BroadcastOp<string mnemonic, Type result, string resultElement>
    : Onnx_Op<mnemonic> {
  let arguments = (ins Onnx_Tensor:$lhs, Onnx_Tensor:$rhs);
  let results = (outs result:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDefinition = [{
    ::mlir::LogicalResult $cppClass::verify() {
      return verifyBroadcast(*this, getLhs(), getRhs(), getResult(), "}] # resultElement # [{");
    }
  }];
}
class Onnx_BinaryOp<string mnemonic> : Onnx_BroadcastOp<mnemonic, Onnx_Tensor, "">;
class Onnx_ComparisonOp<string mnemonic>
    : Onnx_BroadcastOp<mnemonic, RankedTensorOf<[I64]>, "i64">;

def Onnx_AddOp : Onnx_BinaryOp<"Add">;
def Onnx_SubOp : Onnx_BinaryOp<"Sub">;
def Onnx_MulOp : Onnx_BinaryOp<"Mul">;
def Onnx_DivOp : Onnx_BinaryOp<"Div">;
def Onnx_PowOp : Onnx_BinaryOp<"Pow">;
// Min and Max of two operands (the importer chains ONNX's variadic form).
def Onnx_MaxOp : Onnx_BinaryOp<"Max">;
def Onnx_MinOp : Onnx_BinaryOp<"Min">;
// rhs is the slope.
def Onnx_PReluOp : Onnx_BinaryOp<"PRelu">;

def Onnx_ModOp : Onnx_Op<"Mod"> {
  let summary = "remainder: fmod 0 takes the divisor's sign, fmod 1 the dividend's";
  let arguments = (ins Onnx_Tensor:$lhs, Onnx_Tensor:$rhs, DefaultValuedAttr<I64Attr, "0">:$fmod);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

def Onnx_EqualOp : Onnx_ComparisonOp<"Equal">;
def Onnx_GreaterOp : Onnx_ComparisonOp<"Greater">;
def Onnx_LessOp : Onnx_ComparisonOp<"Less">;
// Logical ops on BOOL, carried as I64 0/1.
def Onnx_AndOp : Onnx_BinaryOp<"And">;
def Onnx_OrOp : Onnx_BinaryOp<"Or">;
def Onnx_XorOp : Onnx_BinaryOp<"Xor">;

class Onnx_UnaryOp<string mnemonic> : Onnx_Op<mnemonic, [SameOperandsAndResultType]> {
  let arguments = (ins Onnx_Tensor:$input);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Onnx_NegOp : Onnx_UnaryOp<"Neg">;
def Onnx_SqrtOp : Onnx_UnaryOp<"Sqrt">;
def Onnx_ReluOp : Onnx_UnaryOp<"Relu">;
def Onnx_TanhOp : Onnx_UnaryOp<"Tanh">;
def Onnx_SigmoidOp : Onnx_UnaryOp<"Sigmoid">;
def Onnx_ErfOp : Onnx_UnaryOp<"Erf">;
def Onnx_ExpOp : Onnx_UnaryOp<"Exp">;
def Onnx_LogOp : Onnx_UnaryOp<"Log">;
def Onnx_ReciprocalOp : Onnx_UnaryOp<"Reciprocal">;
def Onnx_AbsOp : Onnx_UnaryOp<"Abs">;
def Onnx_SoftplusOp : Onnx_UnaryOp<"Softplus">;
def Onnx_SoftsignOp : Onnx_UnaryOp<"Softsign">;
def Onnx_FloorOp : Onnx_UnaryOp<"Floor">;
def Onnx_CeilOp : Onnx_UnaryOp<"Ceil">;
def Onnx_SignOp : Onnx_UnaryOp<"Sign">;
def Onnx_NotOp : Onnx_UnaryOp<"Not">;
def Onnx_IdentityOp : Onnx_UnaryOp<"Identity">;

// Not Pure: its masks come from the run's seed and the step.
def Onnx_DropoutOp : Onnx_Op<"Dropout", [SameOperandsAndResultType]> {
  let summary = "training-mode Dropout: y = x * keep / (1 - ratio)";
  let description = [{
    keep is the mask of zero/training_math.h's dropout_keeps, keyed by the
    run's seed, the optimizer step, the micro-step, the rank and `stream`
    (this Dropout's place among the model's training-mode Dropouts), so the
    backward pass recomputes it instead of storing it. `micro_step` is the
    accumulation micro-step it belongs to.
  }];
  let arguments = (ins Onnx_FloatTensor:$input, F32Attr:$ratio, I64Attr:$stream,
                       DefaultValuedAttr<I64Attr, "0">:$micro_step);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

// An elementwise op with ONNX float attributes (zero/elementwise_ops.h lists
// them and their defaults; the importer fills the defaults in).
class Onnx_UnaryOpWithAttributes<string mnemonic, dag attributes>
    : Onnx_Op<mnemonic, [SameOperandsAndResultType]> {
  let arguments = !con((ins Onnx_Tensor:$input), attributes);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Onnx_HardSigmoidOp : Onnx_UnaryOpWithAttributes<"HardSigmoid", (ins F32Attr:$alpha, F32Attr:$beta)>;
def Onnx_EluOp : Onnx_UnaryOpWithAttributes<"Elu", (ins F32Attr:$alpha)>;
def Onnx_LeakyReluOp : Onnx_UnaryOpWithAttributes<"LeakyRelu", (ins F32Attr:$alpha)>;
def Onnx_SeluOp : Onnx_UnaryOpWithAttributes<"Selu", (ins F32Attr:$alpha, F32Attr:$gamma)>;
// ONNX's attribute form; from opset 11 min and max are inputs, which the
// importer folds into these.
def Onnx_ClipOp : Onnx_UnaryOpWithAttributes<"Clip", (ins F32Attr:$min, F32Attr:$max)>;

def Onnx_ConstantOp : Onnx_Op<"Constant", [ConstantLike, AllTypesMatch<["value", "result"]>]> {
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Onnx_CastOp : Onnx_Op<"Cast"> {
  let summary = "element type conversion; the target is the result type";
  let arguments = (ins Onnx_Tensor:$input);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_ReshapeOp : Onnx_Op<"Reshape"> {
  let summary = "Reshape, Flatten, Squeeze and Unsqueeze: the result type is the shape";
  let arguments = (ins Onnx_Tensor:$input);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_ExpandOp : Onnx_Op<"Expand"> {
  let summary = "broadcast to the result type's shape";
  let arguments = (ins Onnx_Tensor:$input);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_TransposeOp : Onnx_Op<"Transpose"> {
  let arguments = (ins Onnx_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_GemmOp : Onnx_Op<"Gemm"> {
  let summary = "Y = alpha * op(A) * op(B) + beta * C";
  let arguments = (ins Onnx_FloatTensor:$a, Onnx_FloatTensor:$b,
                       Optional<Onnx_FloatTensor>:$c,
                       DefaultValuedAttr<F32Attr, "1.0">:$alpha,
                       DefaultValuedAttr<F32Attr, "1.0">:$beta,
                       DefaultValuedAttr<BoolAttr, "false">:$transA,
                       DefaultValuedAttr<BoolAttr, "false">:$transB);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = [{
    $a `,` $b (`,` $c^)? attr-dict `:` `(` type($a) `,` type($b) (`,` type($c)^)? `)` `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Onnx_MatMulOp : Onnx_Op<"MatMul"> {
  let arguments = (ins Onnx_FloatTensor:$lhs, Onnx_FloatTensor:$rhs);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` `(` type($lhs) `,` type($rhs) `)` `->` type($result)
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

class Onnx_SoftmaxLikeOp<string mnemonic> : Onnx_Op<mnemonic, [SameOperandsAndResultType]> {
  let arguments = (ins Onnx_FloatTensor:$input, DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Onnx_SoftmaxOp : Onnx_SoftmaxLikeOp<"Softmax">;
def Onnx_LogSoftmaxOp : Onnx_SoftmaxLikeOp<"LogSoftmax">;

// `weights` (optional, [C]) scale each position's loss by its label's class
// weight; "mean" then divides by the sum of those weights.
class Onnx_LossOp<string mnemonic, list<Trait> traits = []> : Onnx_Op<mnemonic, traits> {
  let arguments = (ins Onnx_FloatTensor:$input, RankedTensorOf<[I64]>:$labels,
                       Optional<Onnx_FloatTensor>:$weights,
                       DefaultValuedStrAttr<StrAttr, "mean">:$reduction,
                       OptionalAttr<I64Attr>:$ignore_index);
  let hasVerifier = 1;
}

def Onnx_SoftmaxCrossEntropyLossOp : Onnx_LossOp<"SoftmaxCrossEntropyLoss"> {
  let results = (outs Onnx_FloatTensor:$loss, Optional<Onnx_FloatTensor>:$log_prob);
  let assemblyFormat = [{
    $input `,` $labels (`,` $weights^)? attr-dict `:` `(` type($input) `,` type($labels) (`,` type($weights)^)? `)` `->` type(results)
  }];
}

def Onnx_NegativeLogLikelihoodLossOp : Onnx_LossOp<"NegativeLogLikelihoodLoss"> {
  let results = (outs Onnx_FloatTensor:$loss);
  let assemblyFormat = [{
    $input `,` $labels (`,` $weights^)? attr-dict `:` `(` type($input) `,` type($labels) (`,` type($weights)^)? `)` `->` type($loss)
  }];
}

class Onnx_ReduceOp<string mnemonic> : Onnx_Op<mnemonic> {
  let summary = "reduction over `axes` (all axes when empty)";
  let arguments = (ins Onnx_FloatTensor:$input, DenseI64ArrayAttr:$axes,
                       DefaultValuedAttr<BoolAttr, "true">:$keepdims);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_ReduceSumOp : Onnx_ReduceOp<"ReduceSum">;
def Onnx_ReduceMeanOp : Onnx_ReduceOp<"ReduceMean">;
def Onnx_ReduceMaxOp : Onnx_ReduceOp<"ReduceMax">;
def Onnx_ReduceMinOp : Onnx_ReduceOp<"ReduceMin">;
def Onnx_ReduceProdOp : Onnx_ReduceOp<"ReduceProd">;
// sqrt of the sum of squares.
def Onnx_ReduceL2Op : Onnx_ReduceOp<"ReduceL2">;

class Onnx_ArgReduceOp<string mnemonic> : Onnx_Op<mnemonic> {
  let summary = "index of the first (or, with select_last_index, last) extreme along `axis`";
  let arguments = (ins Onnx_FloatTensor:$input, DefaultValuedAttr<I64Attr, "0">:$axis,
                       DefaultValuedAttr<BoolAttr, "true">:$keepdims,
                       DefaultValuedAttr<BoolAttr, "false">:$select_last_index);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_ArgMaxOp : Onnx_ArgReduceOp<"ArgMax">;
def Onnx_ArgMinOp : Onnx_ArgReduceOp<"ArgMin">;

def Onnx_CumSumOp : Onnx_Op<"CumSum", [SameOperandsAndResultType]> {
  let summary = "ONNX CumSum along `axis` (folded from its constant input at import)";
  let arguments = (ins Onnx_Tensor:$input, I64Attr:$axis,
                       DefaultValuedAttr<BoolAttr, "false">:$exclusive,
                       DefaultValuedAttr<BoolAttr, "false">:$reverse);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_GatherOp : Onnx_Op<"Gather"> {
  let summary = "ONNX Gather; negative indices count from the end";
  let arguments = (ins Onnx_Tensor:$data, RankedTensorOf<[I64]>:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $data `,` $indices attr-dict `:` `(` type($data) `,` type($indices) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

// Indexing with a tensor of indices: INT64 indices, negative ones count
// from the end of their dimension, and one out of range is a step error
// (an import error where the indices are constants).
def Onnx_GatherElementsOp : Onnx_Op<"GatherElements"> {
  let summary = "result[p] = data[p with p[axis] replaced by indices[p]]";
  let description = [{
    ONNX GatherElements (torch.gather): the result has the indices' shape;
    indices has data's rank and, along every dimension but `axis`, at most
    data's size.
  }];
  let arguments = (ins Onnx_Tensor:$data, RankedTensorOf<[I64]>:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $data `,` $indices attr-dict `:` `(` type($data) `,` type($indices) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

def Onnx_ScatterElementsOp : Onnx_Op<"ScatterElements"> {
  let summary = "data with updates[p] written (or added, multiplied) at GatherElements' positions";
  let description = [{
    ONNX ScatterElements (torch.Tensor.scatter, scatter_add): updates has the
    indices' shape. `reduction` is "none" (a write; with repeated indices the
    last in index order wins on the CPU, ONNX leaves it undefined), "add" or
    "mul" (repeated indices combine).
  }];
  let arguments = (ins Onnx_Tensor:$data, RankedTensorOf<[I64]>:$indices, Onnx_Tensor:$updates,
                       DefaultValuedAttr<I64Attr, "0">:$axis,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$reduction);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $data `,` $indices `,` $updates attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Onnx_GatherNDOp : Onnx_Op<"GatherND"> {
  let summary = "result[t] = data[indices[t]] (batch_dims 0): slices of data by index tuples";
  let description = [{
    indices [..., k] holds tuples of k indices into data's first k
    dimensions; the result is indices.shape[:-1] + data.shape[k:].
  }];
  let arguments = (ins Onnx_Tensor:$data, RankedTensorOf<[I64]>:$indices);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $data `,` $indices attr-dict `:` `(` type($data) `,` type($indices) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

def Onnx_ScatterNDOp : Onnx_Op<"ScatterND"> {
  let summary = "data with the slices of updates written (added, multiplied) at GatherND's";
  let description = [{
    ONNX ScatterND (PyTorch's index_put, `x[idx] = v`): updates is
    indices.shape[:-1] + data.shape[k:]; `reduction` as ScatterElements'.
  }];
  let arguments = (ins Onnx_Tensor:$data, RankedTensorOf<[I64]>:$indices, Onnx_Tensor:$updates,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$reduction);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $data `,` $indices `,` $updates attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Onnx_TopKOp : Onnx_Op<"TopK"> {
  let summary = "the k largest (smallest) elements along `axis` and their indices, sorted";
  let description = [{
    ONNX TopK with K folded into the result types (k = their size along
    `axis`). Always sorted, best first; equal values keep index order, and
    NaN ranks above every number (torch.topk). `sorted` is kept for the
    record: unsorted results may come in any order, sorted ones do. `k`,
    when present, is ONNX's K input where it is not a compile-time
    constant but the model's declared output shape fixes it: a step checks
    that its one value is the results' size along `axis`.
  }];
  let arguments = (ins Onnx_FloatTensor:$input, Optional<RankedTensorOf<[I64]>>:$k,
                       DefaultValuedAttr<I64Attr, "-1">:$axis,
                       DefaultValuedAttr<BoolAttr, "true">:$largest,
                       DefaultValuedAttr<BoolAttr, "true">:$sorted);
  let results = (outs Onnx_FloatTensor:$values, RankedTensorOf<[I64]>:$indices);
  let assemblyFormat = [{
    $input (`,` $k^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Onnx_SliceOp : Onnx_Op<"Slice"> {
  let summary = "result[i...] = input[starts + i * steps], per dimension";
  let description = [{
    ONNX Slice with its starts, ends, axes and steps folded at import:
    `starts` and `steps` name every dimension, the result type gives the
    sizes. Split imports as one Slice per output.
  }];
  let arguments = (ins Onnx_Tensor:$input, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$steps);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Onnx_SplitOp : Onnx_Op<"Split"> {
  let summary = "consecutive parts of the input along `axis`, sized by the result types";
  let description = [{
    ONNX Split with its sizes folded at import. The recurrent ops (LSTM,
    GRU, RNN) unroll into it: its gradient is one Concat of the parts',
    where one Slice per part would give each a SliceGrad of the whole input,
    quadratic in the sequence length. Parts along a leading axis (every
    dimension before it 1) lower to views of the input, others to Slices.
  }];
  let arguments = (ins Onnx_Tensor:$input, I64Attr:$axis);
  let results = (outs Variadic<Onnx_Tensor>:$parts);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($parts)";
  let hasVerifier = 1;
}

def Onnx_ConcatOp : Onnx_Op<"Concat"> {
  let arguments = (ins Variadic<Onnx_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $result)";
  let hasVerifier = 1;
}

def Onnx_WhereOp : Onnx_Op<"Where"> {
  let summary = "select with numpy broadcasting; ONNX BOOL conditions import as i64 0/1";
  let arguments = (ins RankedTensorOf<[I64]>:$condition, Onnx_Tensor:$x, Onnx_Tensor:$y);
  let results = (outs Onnx_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $x `,` $y attr-dict `:` `(` type($condition) `,` type($x) `,` type($y) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

def Onnx_LayerNormalizationOp : Onnx_Op<"LayerNormalization"> {
  let summary = "normalizes over the dimensions from `axis` on";
  let arguments = (ins Onnx_FloatTensor:$input, Onnx_FloatTensor:$scale,
                       Optional<Onnx_FloatTensor>:$bias,
                       DefaultValuedAttr<I64Attr, "-1">:$axis,
                       DefaultValuedAttr<F32Attr, "1e-5">:$epsilon);
  let results = (outs Onnx_FloatTensor:$result, Onnx_FloatTensor:$mean,
                      Onnx_FloatTensor:$inv_std_dev);
  let assemblyFormat = [{
    $input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Onnx_ConvOp : Onnx_Op<"Conv"> {
  let summary = "convolution over 1 to 3 spatial dimensions (NCL, NCHW, NCDHW)";
  let description = [{
    `pads` holds the begin pads of the spatial axes, then their end pads
    ([top, left, bottom, right] in 2-D).
  }];
  let arguments = (ins Onnx_FloatTensor:$input, Onnx_FloatTensor:$weight,
                       Optional<Onnx_FloatTensor>:$bias, DenseI64ArrayAttr:$strides,
                       DenseI64ArrayAttr:$pads, DenseI64ArrayAttr:$dilations, I64Attr:$group);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Onnx_MaxPoolOp : Onnx_Op<"MaxPool"> {
  let summary = "max pooling over 1 to 3 spatial dimensions; also returns where each maximum came from";
  let description = [{
    `argmax` holds, for every output element, the flat index (h * W + w in
    2-D) of its maximum within the input's [n, c] plane: what the gradient
    needs. `dilations`, where given, spaces the window's taps.
    (ONNX's optional Indices output is not supported.) With `ceil_mode` the
    output size rounds up, as PyTorch's (the last window must start inside
    the input or the top/left padding); windows may then reach past the
    bottom/right padding.
  }];
  let arguments = (ins Onnx_FloatTensor:$input, DenseI64ArrayAttr:$kernel_shape,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DefaultValuedAttr<BoolAttr, "false">:$ceil_mode,
                       OptionalAttr<DenseI64ArrayAttr>:$dilations);
  let results = (outs Onnx_FloatTensor:$result, RankedTensorOf<[I64]>:$argmax);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Onnx_AveragePoolOp : Onnx_Op<"AveragePool"> {
  let summary = "average pooling over 1 to 3 spatial dimensions";
  let description = [{
    `ceil_mode` as for MaxPool. With `count_include_pad` the divisor counts
    the window's positions inside the padded input, so a window reaching
    past the bottom/right padding (ceil_mode) is not divided by the full
    kernel size (PyTorch's avg_pool2d).
  }];
  let arguments = (ins Onnx_FloatTensor:$input, DenseI64ArrayAttr:$kernel_shape,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       BoolAttr:$count_include_pad,
                       DefaultValuedAttr<BoolAttr, "false">:$ceil_mode);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Onnx_ConvTransposeOp : Onnx_Op<"ConvTranspose"> {
  let summary = "transposed convolution over 1 to 3 spatial dimensions";
  let description = [{
    The adjoint of the Conv (same `strides`, `pads`, `dilations`, `group`)
    from the result to the input: the weight [C, M/group, k...] is that
    Conv's, and the result type fixes the output size, which ONNX's
    `output_padding` and `output_shape` may make larger than the part the
    windows cover by less than the stride (those positions are 0). The
    importer resolves `auto_pad` and `output_shape` into `pads` and adds the
    bias as a separate Add.
  }];
  let arguments = (ins Onnx_FloatTensor:$input, Onnx_FloatTensor:$weight,
                       DenseI64ArrayAttr:$strides, DenseI64ArrayAttr:$pads,
                       DenseI64ArrayAttr:$dilations, I64Attr:$group);
  let results = (outs Onnx_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Onnx_BatchNormalizationOp : Onnx_Op<"BatchNormalization"> {
  let summary = "training-mode batch normalization over every dimension but 1";
  let description = [{
    Normalizes with the batch statistics and returns the running statistics
    updated as PyTorch does: running = (1 - momentum) * running + momentum *
    batch, with the unbiased batch variance (`momentum` is PyTorch's, the
    weight of the new value). `saved_mean` and `saved_inv_std` are what the
    gradient needs. Inference-mode BatchNormalization imports as elementwise
    ops.
  }];
  let arguments = (ins Onnx_FloatTensor:$input, Onnx_FloatTensor:$scale, Onnx_FloatTensor:$bias,
                       Onnx_FloatTensor:$running_mean, Onnx_FloatTensor:$running_var,
                       F32Attr:$epsilon, F32Attr:$momentum);
  let results = (outs Onnx_FloatTensor:$result, Onnx_FloatTensor:$saved_mean,
                      Onnx_FloatTensor:$saved_inv_std, Onnx_FloatTensor:$new_running_mean,
                      Onnx_FloatTensor:$new_running_var);
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

#endif // ZERO_ONNX_OPS
