//===- OnnxRecurrent.cpp - LSTM, GRU and RNN, unrolled at import ----------===//
//
// A recurrent node becomes its computation over the static sequence length,
// in ops zero differentiates already, so its gradient is backpropagation
// through time by the existing rules. Per direction, one Gemm projects every
// step's input at once (X·Wᵀ plus the biases that add to it) and a Split
// hands each step its rows as views; a step adds only the recurrent Gemm
// (H·Rᵀ, with the step's projection as its C) and the gates' elementwise
// ops. The gates that share an activation (LSTM's i, o, f; GRU's z, r) are
// one Gemm per step, split into the gates.
//
// Each step's gate values are activations the backward pass reads, so memory
// grows linearly with the sequence length, as autograd of an unrolled cell
// does; the memory report counts them like any other.
//
//===----------------------------------------------------------------------===//

#include "frontends/onnx/GraphImporter.h"

#include "dialects/Onnx/OnnxDialect.h"

using namespace mlir;

namespace zero::frontend {

namespace {

enum class Cell { Rnn, Gru, Lstm };

/// The activations ONNX applies by default, per direction: LSTM's f, g, h,
/// GRU's f, g, RNN's f.
ArrayRef<StringRef> defaultActivations(Cell cell) {
  static const StringRef lstm[] = {"Sigmoid", "Tanh", "Tanh"};
  static const StringRef gru[] = {"Sigmoid", "Tanh"};
  static const StringRef rnn[] = {"Tanh"};
  return cell == Cell::Lstm ? ArrayRef(lstm) : cell == Cell::Gru ? ArrayRef(gru) : ArrayRef(rnn);
}

/// One node's unrolling: its sizes and the builders of the ops it uses.
class Unroller {
public:
  Unroller(GraphImporter &im, const ::onnx::NodeProto &node, Cell cell)
      : im(im), node(node), b(im.builder), loc(im.nodeLoc(node)), cell(cell) {}

  LogicalResult run();

private:
  /// The gates' weights, biases and peepholes of one direction.
  struct Direction {
    Value wFirst, wLast, rFirst, rLast; // the gates sharing f; the last gate (LSTM's c, GRU's h)
    Value biasFirst, biasLast;          // what adds to the input projection, or null
    Value recurrentBiasLast;            // GRU with linear_before_reset: Rbh, inside r ⊙ (...)
    Value peepI, peepO, peepF;          // LSTM's P, or null
    Value h0, c0;                       // initial states [batch, hidden], or null (zeros)
    StringRef f = "Sigmoid", g = "Tanh", h = "Tanh";
  };
  /// A direction's states over the sequence, in input order.
  struct States {
    SmallVector<Value> hidden;
    Value lastHidden, lastCell;
  };

  FailureOr<Value> input(int index);
  LogicalResult readDirection(int64_t d, Value w, Value r, Value bias, Value p, Value h0, Value c0,
                              ArrayRef<std::string> activations, Direction &dir);
  States unroll(const Direction &dir, Value x2, bool reverse);
  LogicalResult bindOutput(int index, Value value);

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getF32Type());
  }
  /// `v`'s `size` entries from `start` along `axis`.
  Value slice(Value v, int64_t axis, int64_t start, int64_t size) {
    auto type = cast<RankedTensorType>(v.getType());
    if (start == 0 && size == type.getDimSize(axis))
      return v;
    SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1),
        shape(type.getShape());
    starts[axis] = start;
    shape[axis] = size;
    return onnx::SliceOp::create(b, loc, type.clone(shape), v, b.getDenseI64ArrayAttr(starts),
                                 b.getDenseI64ArrayAttr(steps));
  }
  /// Gates [first, first + count) of a [gates * hidden, ...] weight or bias.
  Value gates(Value v, int64_t first, int64_t count) {
    return slice(v, 0, first * hidden, count * hidden);
  }
  Value reshape(Value v, ArrayRef<int64_t> shape) {
    auto type = cast<RankedTensorType>(v.getType());
    if (type.getShape() == shape)
      return v;
    return onnx::ReshapeOp::create(b, loc, type.clone(shape), v);
  }
  Value transpose(Value v, ArrayRef<int64_t> perm) {
    auto type = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape;
    for (int64_t p : perm)
      shape.push_back(type.getDimSize(p));
    return onnx::TransposeOp::create(b, loc, type.clone(shape), v, b.getDenseI64ArrayAttr(perm));
  }
  /// a·mᵀ + c (c null: none), a [rows, k], m [n, k].
  Value gemm(Value a, Value m, Value c) {
    int64_t rows = cast<RankedTensorType>(a.getType()).getDimSize(0);
    int64_t cols = cast<RankedTensorType>(m.getType()).getDimSize(0);
    return onnx::GemmOp::create(b, loc, f32({rows, cols}), a, m, c, b.getF32FloatAttr(1.0f),
                                b.getF32FloatAttr(1.0f), b.getBoolAttr(false), b.getBoolAttr(true));
  }
  /// x plus h·mᵀ, h null meaning a zero state.
  Value recurrent(Value h, Value m, Value x) { return h ? gemm(h, m, x) : x; }
  /// Equal parts of `v` along `axis`.
  SmallVector<Value> split(Value v, int64_t axis, int64_t parts) {
    auto type = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape(type.getShape());
    shape[axis] /= parts;
    SmallVector<Type> types(parts, type.clone(shape));
    auto op = onnx::SplitOp::create(b, loc, types, v, b.getI64IntegerAttr(axis));
    return SmallVector<Value>(op.getParts());
  }
  /// The broadcast type of two operands, one of which is a bias or
  /// peephole vector [hidden] or both [batch, hidden].
  Type broadcast(Value x, Value y) {
    auto tx = cast<RankedTensorType>(x.getType()), ty = cast<RankedTensorType>(y.getType());
    return tx.getRank() >= ty.getRank() ? tx : ty;
  }
  Value add(Value x, Value y) { return onnx::AddOp::create(b, loc, broadcast(x, y), x, y); }
  Value sub(Value x, Value y) { return onnx::SubOp::create(b, loc, broadcast(x, y), x, y); }
  Value mul(Value x, Value y) { return onnx::MulOp::create(b, loc, broadcast(x, y), x, y); }
  Value activation(StringRef name, Value x) {
    if (name.equals_insensitive("Sigmoid"))
      return onnx::SigmoidOp::create(b, loc, x);
    if (name.equals_insensitive("Relu"))
      return onnx::ReluOp::create(b, loc, x);
    return onnx::TanhOp::create(b, loc, x);
  }

  GraphImporter &im;
  const ::onnx::NodeProto &node;
  OpBuilder &b;
  Location loc;
  Cell cell;
  int64_t gateCount = 0, hidden = 0, batch = 0, seq = 0, numDirections = 1;
  bool batchMajor = false;        // layout 1
  bool linearBeforeReset = false; // GRU
};

FailureOr<Value> Unroller::input(int index) {
  if (index >= node.input_size() || node.input(index).empty())
    return Value();
  auto v = im.lookup(node.input(index), &node);
  if (failed(v))
    return failure();
  auto type = cast<RankedTensorType>(v->getType());
  if (!type.getElementType().isF32())
    return im.nodeError(node) << "input '" << node.input(index) << "' must be FLOAT, got "
                              << type.getElementType();
  return *v;
}

LogicalResult Unroller::readDirection(int64_t d, Value w, Value r, Value bias, Value p, Value h0,
                                      Value c0, ArrayRef<std::string> activations, Direction &dir) {
  auto matrix = [&](Value v) {
    auto type = cast<RankedTensorType>(v.getType());
    return reshape(slice(v, 0, d, 1), type.getShape().drop_front());
  };
  Value wd = matrix(w), rd = matrix(r);
  // The gates sharing the activation f come first in ONNX's order (LSTM's
  // i, o, f before c; GRU's z, r before h); an RNN has only its one gate.
  const int64_t first = cell == Cell::Rnn ? 1 : gateCount - 1;
  dir.wFirst = gates(wd, 0, first);
  dir.rFirst = gates(rd, 0, first);
  if (cell != Cell::Rnn) {
    dir.wLast = gates(wd, first, 1);
    dir.rLast = gates(rd, first, 1);
  }
  if (bias) {
    Value bd = matrix(bias); // [2 * gates * hidden]: Wb, then Rb
    Value wb = gates(bd, 0, gateCount), rb = gates(bd, gateCount, gateCount);
    dir.biasFirst = add(gates(wb, 0, first), gates(rb, 0, first));
    if (cell != Cell::Rnn) {
      Value wbLast = gates(wb, first, 1), rbLast = gates(rb, first, 1);
      if (cell == Cell::Gru && linearBeforeReset) {
        dir.biasLast = wbLast;
        dir.recurrentBiasLast = rbLast;
      } else {
        dir.biasLast = add(wbLast, rbLast);
      }
    }
  }
  if (p) {
    Value pd = matrix(p); // [3 * hidden]: i, o, f
    dir.peepI = gates(pd, 0, 1);
    dir.peepO = gates(pd, 1, 1);
    dir.peepF = gates(pd, 2, 1);
  }
  if (h0)
    dir.h0 = matrix(h0);
  if (c0)
    dir.c0 = matrix(c0);

  ArrayRef<StringRef> defaults = defaultActivations(cell);
  SmallVector<StringRef> names(defaults);
  if (!activations.empty())
    for (size_t i = 0; i < names.size(); ++i)
      names[i] = activations[d * names.size() + i];
  for (size_t i = 0; i < names.size(); ++i) {
    // PyTorch's nn.RNN(nonlinearity='relu') exports Relu.
    bool supported = names[i].equals_insensitive(defaults[i]) ||
                     (cell == Cell::Rnn && names[i].equals_insensitive("Relu"));
    if (!supported) {
      std::string list;
      for (StringRef n : defaults)
        list += (list.empty() ? "" : ", ") + n.str();
      return im.nodeError(node) << "attribute 'activations': " << names[i]
                                << " is not supported; only the default " << list
                                << (cell == Cell::Rnn ? " (or Relu)" : "");
    }
  }
  dir.f = names[0];
  if (names.size() > 1)
    dir.g = names[1];
  if (names.size() > 2)
    dir.h = names[2];
  return success();
}

Unroller::States Unroller::unroll(const Direction &dir, Value x2, bool reverse) {
  // Every step's input projection at once, split into the steps' rows
  // (views: the backward pass concatenates their gradients back).
  auto steps = [&](Value w, Value bias) { return split(gemm(x2, w, bias), 0, seq); };
  SmallVector<Value> xFirst = steps(dir.wFirst, dir.biasFirst), xLast;
  if (cell != Cell::Rnn)
    xLast = steps(dir.wLast, dir.biasLast);

  States out;
  out.hidden.resize(seq);
  Value h = dir.h0, c = dir.c0; // null: zeros, whose products are left out
  for (int64_t i = 0; i < seq; ++i) {
    int64_t t = reverse ? seq - 1 - i : i;
    Value pre = recurrent(h, dir.rFirst, xFirst[t]);
    if (cell == Cell::Rnn) {
      h = activation(dir.f, pre);
    } else if (cell == Cell::Gru) {
      SmallVector<Value> zr = split(pre, 1, 2);
      Value z = activation(dir.f, zr[0]), r = activation(dir.f, zr[1]), candidate;
      if (linearBeforeReset) {
        // h̃ = g(xh + r ⊙ (H·Rhᵀ + Rbh)), Wbh in xh.
        Value rh = h ? gemm(h, dir.rLast, dir.recurrentBiasLast) : dir.recurrentBiasLast;
        candidate = rh ? add(xLast[t], mul(r, rh)) : xLast[t];
      } else {
        // h̃ = g(xh + (r ⊙ H)·Rhᵀ), the biases in xh.
        candidate = h ? gemm(mul(r, h), dir.rLast, xLast[t]) : xLast[t];
      }
      candidate = activation(dir.g, candidate);
      // H = (1 - z) ⊙ h̃ + z ⊙ H = h̃ + z ⊙ (H - h̃).
      h = h ? add(candidate, mul(z, sub(h, candidate))) : sub(candidate, mul(z, candidate));
    } else {
      // Split before the activations: each gate's activation is then the
      // one tensor both its derivative and the products below keep.
      SmallVector<Value> iof = split(pre, 1, 3);
      Value i = iof[0], o = iof[1], f = iof[2];
      if (dir.peepI && c) {
        i = add(i, mul(dir.peepI, c));
        f = add(f, mul(dir.peepF, c));
      }
      i = activation(dir.f, i);
      Value candidate = activation(dir.g, recurrent(h, dir.rLast, xLast[t]));
      Value ic = mul(i, candidate);
      c = c ? add(mul(activation(dir.f, f), c), ic) : ic; // f forgets nothing of a zero state
      o = activation(dir.f, dir.peepI ? add(o, mul(dir.peepO, c)) : o);
      h = mul(o, activation(dir.h, c));
    }
    out.hidden[t] = h;
  }
  out.lastHidden = h;
  out.lastCell = c;
  return out;
}

LogicalResult Unroller::bindOutput(int index, Value value) {
  auto inferred = im.outputType(node, index);
  if (failed(inferred))
    return failure();
  if (value.getType() != *inferred)
    return im.nodeError(node) << "output " << index << ": unrolled type " << value.getType()
                              << " differs from the inferred type " << *inferred;
  im.setOutput(node, index, value);
  return success();
}

LogicalResult Unroller::run() {
  gateCount = cell == Cell::Lstm ? 4 : cell == Cell::Gru ? 3 : 1;
  auto direction = im.stringAttr(node, "direction", "forward");
  auto hiddenAttr = im.optionalIntAttr(node, "hidden_size");
  auto activations = im.stringsAttr(node, "activations");
  // layout exists from opset 14; the loader rejects it before.
  auto layout = im.intAttr(node, "layout", 0);
  auto inputForget =
      cell == Cell::Lstm ? im.intAttr(node, "input_forget", 0) : FailureOr<int64_t>(0);
  auto lbr = cell == Cell::Gru ? im.intAttr(node, "linear_before_reset", 0) : FailureOr<int64_t>(0);
  if (failed(direction) || failed(hiddenAttr) || failed(activations) || failed(layout) ||
      failed(inputForget) || failed(lbr))
    return failure();
  if (*direction != "forward" && *direction != "reverse" && *direction != "bidirectional")
    return im.nodeError(node) << "attribute 'direction': unknown value '" << *direction << "'";
  numDirections = *direction == "bidirectional" ? 2 : 1;
  if (*layout != 0 && *layout != 1)
    return im.nodeError(node) << "attribute 'layout' must be 0 or 1, got " << *layout;
  batchMajor = *layout == 1;
  if (*inputForget != 0)
    return im.nodeError(node) << "attribute 'input_forget' " << *inputForget
                              << " (coupled input and forget gates) is not supported";
  if (*lbr != 0 && *lbr != 1)
    return im.nodeError(node) << "attribute 'linear_before_reset' must be 0 or 1, got " << *lbr;
  linearBeforeReset = *lbr == 1;
  size_t perDirection = defaultActivations(cell).size();
  if (!activations->empty() && activations->size() != perDirection * numDirections)
    return im.nodeError(node) << "attribute 'activations' has " << activations->size()
                              << " entries; expected " << perDirection * numDirections << " ("
                              << perDirection << " per direction)";

  SmallVector<Value> in;
  for (int i : {0, 1, 2, 3, 5, 6, 7}) {
    auto v = input(i);
    if (failed(v))
      return failure();
    in.push_back(*v);
  }
  Value x = in[0], w = in[1], r = in[2], bias = in[3], h0 = in[4], c0 = in[5], p = in[6];
  if (!x || !w || !r)
    return im.nodeError(node) << "expects the inputs X, W and R";
  if (p && cell != Cell::Lstm)
    return im.nodeError(node) << "has no input P";

  // Shapes, in ONNX's (sequence-major) layout.
  auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
  if (shapeOf(x).size() != 3)
    return im.nodeError(node) << "X must have rank 3";
  if (batchMajor)
    x = transpose(x, {1, 0, 2});
  seq = shapeOf(x)[0];
  batch = shapeOf(x)[1];
  int64_t inputSize = shapeOf(x)[2];
  if (shapeOf(r).size() != 3)
    return im.nodeError(node) << "R must have rank 3";
  hidden = shapeOf(r)[2];
  if (*hiddenAttr && **hiddenAttr != hidden)
    return im.nodeError(node) << "attribute 'hidden_size' is " << **hiddenAttr
                              << " but R has hidden size " << hidden;
  auto expect = [&](Value v, const char *name, ArrayRef<int64_t> shape) -> LogicalResult {
    if (!v || shapeOf(v) == shape)
      return success();
    std::string want;
    for (int64_t d : shape)
      want += (want.empty() ? "" : ", ") + std::to_string(d);
    return im.nodeError(node) << name << " has shape " << v.getType() << "; expected [" << want
                              << "]";
  };
  if (batchMajor) {
    if (h0 && shapeOf(h0).size() == 3)
      h0 = transpose(h0, {1, 0, 2});
    if (c0 && shapeOf(c0).size() == 3)
      c0 = transpose(c0, {1, 0, 2});
  }
  const int64_t dirs = numDirections, gh = gateCount * hidden;
  if (failed(expect(w, "W", {dirs, gh, inputSize})) || failed(expect(r, "R", {dirs, gh, hidden})) ||
      failed(expect(bias, "B", {dirs, 2 * gh})) ||
      failed(expect(h0, "initial_h", {dirs, batch, hidden})) ||
      failed(expect(c0, "initial_c", {dirs, batch, hidden})) ||
      failed(expect(p, "P", {dirs, 3 * hidden})))
    return failure();

  // Every batch entry must run the whole sequence.
  if (node.input_size() > 4 && !node.input(4).empty()) {
    auto lengths = im.constantInts(node.input(4), node);
    if (failed(lengths))
      return failure();
    if (static_cast<int64_t>(lengths->size()) != batch ||
        llvm::any_of(*lengths, [&](int64_t l) { return l != seq; }))
      return im.nodeError(node) << "sequence_lens must be " << seq
                                << " (the sequence length) for every batch entry; shorter "
                                   "sequences are not supported";
  }

  Value x2 = reshape(x, {seq * batch, inputSize});
  SmallVector<States> states;
  for (int64_t d = 0; d < numDirections; ++d) {
    Direction dir;
    if (failed(readDirection(d, w, r, bias, p, h0, c0, *activations, dir)))
      return failure();
    states.push_back(unroll(dir, x2, d == 1 || *direction == "reverse"));
  }

  auto needed = [&](int index) {
    return GraphImporter::hasOutput(node, index) && im.isRead(node.output(index));
  };
  // Y [seq, directions, batch, hidden]: the steps' states in that order.
  if (needed(0)) {
    SmallVector<Value> parts;
    for (int64_t t = 0; t < seq; ++t)
      for (const States &s : states)
        parts.push_back(reshape(s.hidden[t], {1, batch, hidden}));
    Value y = parts.size() == 1 ? parts.front()
                                : onnx::ConcatOp::create(b, loc, f32({seq * dirs, batch, hidden}),
                                                         parts, b.getI64IntegerAttr(0))
                                      .getResult();
    y = reshape(y, {seq, dirs, batch, hidden});
    if (batchMajor)
      y = transpose(y, {2, 0, 1, 3});
    if (failed(bindOutput(0, y)))
      return failure();
  }
  // Y_h and Y_c [directions, batch, hidden].
  for (int index : {1, 2}) {
    if (!needed(index)) // GRU and RNN have no Y_c
      continue;
    SmallVector<Value> parts;
    for (const States &s : states)
      parts.push_back(reshape(index == 1 ? s.lastHidden : s.lastCell, {1, batch, hidden}));
    Value y = parts.size() == 1 ? parts.front()
                                : onnx::ConcatOp::create(b, loc, f32({dirs, batch, hidden}), parts,
                                                         b.getI64IntegerAttr(0))
                                      .getResult();
    if (batchMajor)
      y = transpose(y, {1, 0, 2});
    if (failed(bindOutput(index, y)))
      return failure();
  }
  return success();
}

} // namespace

LogicalResult importRecurrent(GraphImporter &im, const ::onnx::NodeProto &node) {
  Cell cell = node.op_type() == "LSTM"  ? Cell::Lstm
              : node.op_type() == "GRU" ? Cell::Gru
                                        : Cell::Rnn;
  return Unroller(im, node, cell).run();
}

} // namespace zero::frontend
