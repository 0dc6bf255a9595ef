// The executor: loads and validates a plan (every instruction's kernel
// prepared once), owns the arena and the kernel scratch, and runs the
// instruction stream exactly as written.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "backend.h"
#include "zero/files.h"
#include "zero/plan_format.h"
#include "zero/plan_ops.h"
#include "zero/runtime.h"

namespace zero {
namespace {

constexpr size_t kArenaAlignment = 64;
// Asynchronous collectives in flight at once, at most; a bound on the events
// or requests a communicator keeps.
constexpr int kMaxSlots = 4096;

// The plan bytes: a read-only file mapping, or an aligned heap copy.
class PlanBytes {
 public:
  ~PlanBytes() {
    if (copy_) alloc_->deallocate(copy_);
  }
  Status map(const std::string& path) { return file_.open(path, "plan"); }
  Status copy(const void* data, size_t size, Allocator* alloc) {
    alloc_ = alloc;
    copy_ = alloc->allocate(size ? size : 1, kArenaAlignment);
    if (!copy_) return Status::resource_exhausted("out of memory copying the plan");
    if (size) std::memcpy(copy_, data, size);
    copy_size_ = size;
    return Status();
  }
  const uint8_t* data() const { return copy_ ? static_cast<const uint8_t*>(copy_) : file_.data(); }
  size_t size() const { return copy_ ? copy_size_ : file_.size(); }

 private:
  MappedFile file_;
  void* copy_ = nullptr;
  size_t copy_size_ = 0;
  Allocator* alloc_ = nullptr;
};

bool is_collective(plan::Opcode op) {
  return op == plan::Opcode::AllReduce || op == plan::Opcode::ReduceScatter || op == plan::Opcode::AllGather;
}

// An instruction's attribute table must be its opcode's; it may be left out
// only where every field has a default.
Status check_attrs_type(const plan_ops::OpDescriptor& desc, plan::Attrs got, const std::string& name) {
  if (got == desc.attrs) return Status();
  const plan_ops::AttrTable* table = plan_ops::find_attr_table(desc.attrs);
  bool all_default = true;
  for (size_t f = 0; table && f < table->num_fields; ++f)
    all_default &= table->fields[f].presence != plan_ops::Presence::Required;
  if (got == plan::Attrs::NONE && all_default) return Status();
  const auto table_name = [](plan::Attrs a) {
    return a == plan::Attrs::NONE ? std::string("none") : a > plan::Attrs::MAX ? std::to_string(int(a))
                                                                               : plan::EnumNameAttrs(a);
  };
  return Status::invalid_argument(name + ": attributes " + table_name(got) + ", expected " + table_name(desc.attrs));
}

struct Op {
  plan::Opcode opcode;
  const plan::Instruction* inst;
  const KernelDef* kernel = nullptr;  // nullptr for collectives and Wait
  PreparedKernel prepared;            // what the kernel's prepare computed at load
  std::vector<Tensor> in, out;        // fixed at load, as prepare saw them
  // Collectives and Wait.
  Communicator::Collective collective{};
  int slot = 0;  // 0: synchronous
  uint32_t group = 0;
  bool group_begin = false, group_end = false;
};

// A byte range of the arena an instruction touches.
struct Span {
  const uint8_t* begin;
  const uint8_t* end;
  bool overlaps(const Span& o) const { return begin < end && o.begin < o.end && begin < o.end && o.begin < end; }
};

Span span_of(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  return {p, p + size_t(t.numel) * dtype_size(t.dtype)};
}

// FlatBuffers' verifier checks a vector's length prefix and bounds but not
// that its elements are aligned for their type (google/flatbuffers#8397), and
// reading a misaligned [long] is undefined behaviour. Whether every nonempty
// [long] vector in the plan is 8-byte aligned (the builder aligns only the
// length prefix of an empty one): the shapes, and the attribute fields the
// opcode descriptors (zero/plan_ops.h) list as I64s. The plan bytes start at
// least 8-aligned, mapped or copied.
bool long_vectors_aligned(const plan::Plan* p) {
  const auto ok = [](const flatbuffers::Vector<int64_t>* v) {
    return !v || v->size() == 0 || reinterpret_cast<uintptr_t>(v->data()) % alignof(int64_t) == 0;
  };
  if (p->values())
    for (const plan::Value* v : *p->values())
      if (!ok(v->shape())) return false;
  if (p->parameters())
    for (const plan::Parameter* v : *p->parameters())
      if (!ok(v->shape())) return false;
  for (const auto* list : {p->instructions(), p->evaluation() ? p->evaluation()->instructions() : nullptr}) {
    if (!list) continue;
    for (const plan::Instruction* inst : *list) {
      const plan_ops::AttrTable* table = plan_ops::find_attr_table(inst->attrs_type());
      const auto* attrs = static_cast<const flatbuffers::Table*>(inst->attrs());
      for (size_t f = 0; table && attrs && f < table->num_fields; ++f)
        if (table->fields[f].kind == plan_ops::AttrKind::I64s &&
            !ok(attrs->GetPointer<const flatbuffers::Vector<int64_t>*>(table->fields[f].offset)))
          return false;
    }
  }
  return true;
}

using Instructions = flatbuffers::Vector<flatbuffers::Offset<plan::Instruction>>;

// An instruction stream the session runs as a whole: the training step, or
// the evaluation program. `label` names its instructions in messages.
struct Program {
  std::string label;  // "instruction" or "evaluation instruction"
  std::vector<Op> ops;
  std::string what(size_t i) const {
    return label + " " + std::to_string(i) + " (" + plan::EnumNameOpcode(ops[i].opcode) + ")";
  }
};

struct ParamSlot {
  uint32_t value;
  bool sharded;
  uint64_t shard_numel;
  int64_t numel;
  bool trainable;
  bool written;  // by write_parameter: a plan without weights needs every trainable one
};

}  // namespace

struct Session::Impl {
  std::string name;  // for messages: the plan path
  PlanBytes bytes;
  const plan::Plan* plan = nullptr;
  Communicator* comm = nullptr;
  Allocator* alloc = nullptr;
  const Backend* backend = nullptr;
  uint8_t* arena = nullptr;
  size_t arena_size = 0;
  // One kernel scratch for the instructions, which run one at a time: the
  // largest any prepare asked for, allocated once at load.
  void* scratch = nullptr;
  size_t scratch_size = 0;
  KernelContext context;
  std::vector<Tensor> values;
  Program step{"instruction", {}};
  Program eval{"evaluation instruction", {}};
  std::vector<TensorInfo> inputs, eval_inputs;
  std::vector<uint32_t> input_values, eval_input_values;
  std::vector<TensorInfo> params;
  std::vector<ParamSlot> param_slots;
  std::vector<TensorInfo> outputs;
  std::vector<uint32_t> output_values;
  std::vector<std::string> metric_names;
  std::vector<uint32_t> metric_values;
  std::vector<StateTensor> state;
  std::vector<uint32_t> state_values;
  std::vector<int> state_params;  // the param_slots index of a parameter's state, else -1

  ~Impl() {
    if (scratch) alloc->deallocate(scratch);
    if (arena) alloc->deallocate(arena);
  }

  // A problem with the plan (invalid argument) unless `code` says otherwise.
  Status error(const std::string& what, StatusCode code = StatusCode::kInvalidArgument) const {
    return Status(code, name + ": " + what);
  }

  Status verify_header();
  Status resolve_values();
  Status resolve_instructions(const Instructions* insts, Program* program);
  Status allocate_scratch();
  Status resolve_collective(Op* op, const std::string& what);
  Status resolve_schedule(Program* program, int* slots_used);
  Status run(Program* program);
  void abandon(const Program& program, size_t failed);
  Status resolve_inputs(const flatbuffers::Vector<flatbuffers::Offset<plan::Input>>* ins, const char* what,
                        std::vector<TensorInfo>* infos, std::vector<uint32_t>* indices);
  Status load_initializers();
  Status resolve_io();
  Status init();
};

Status Session::Impl::verify_header() {
  if (bytes.size() < 8 || !plan::PlanBufferHasIdentifier(bytes.data()))
    return error(std::string("not a zero plan (missing file identifier ") + kPlanFileIdentifier + ")");
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), /*max_depth=*/64,
                                 /*max_tables=*/100000000);
  if (!plan::VerifyPlanBuffer(verifier)) return error("corrupt or truncated plan (FlatBuffers verification failed)");
  plan = plan::GetPlan(bytes.data());
  if (!long_vectors_aligned(plan)) return error("corrupt plan (a vector of int64 is misaligned)");
  if (plan->format_version() != kPlanFormatVersion)
    return error("plan format version " + std::to_string(plan->format_version()) + " is not supported (runtime reads " +
                 std::to_string(kPlanFormatVersion) + ")",
                 StatusCode::kFailedPrecondition);
  if (plan->backend() != backend->kind()) {
    const std::string runs = std::string(", this runtime runs ") + plan::EnumNameBackend(backend->kind());
    if (plan->backend() == plan::Backend::Cuda)
      return error("plan is for backend Cuda" + runs + " (plan targets CUDA: open it with the CUDA backend, zero/cuda.h)",
                   StatusCode::kFailedPrecondition);
    if (plan->backend() > plan::Backend::MAX)
      return error("plan is for backend " + std::to_string(int(plan->backend())) + ", which this runtime does not know" +
                   runs);
    return error(std::string("plan is for backend ") + plan::EnumNameBackend(plan->backend()) + runs,
                 StatusCode::kFailedPrecondition);
  }
  if (plan->world_size() != uint32_t(comm->size()))
    return error("plan was compiled for world size " + std::to_string(plan->world_size()) + " but running with " +
                 std::to_string(comm->size()) + " rank(s)",
                 StatusCode::kFailedPrecondition);
  return Status();
}

Status Session::Impl::resolve_values() {
  arena_size = plan->arena_bytes();
  if (arena_size > (size_t(1) << 48)) return error("arena_bytes " + std::to_string(arena_size) + " is implausible");
  // Zeroing an arena larger than the memory there is would swap or wake the
  // OOM killer: refuse it with the sizes instead.
  const uint64_t available = backend->available_memory();
  if (available && arena_size > available)
    return error("the plan needs an arena of " + byte_size_string(arena_size) + " per rank, but only " +
                 byte_size_string(available) + " of " +
                 (backend->kind() == plan::Backend::Cpu ? "host" : "device") + " memory is available",
                 StatusCode::kResourceExhausted);
  arena = static_cast<uint8_t*>(alloc->allocate(arena_size ? arena_size : 1, kArenaAlignment));
  if (!arena) return error("cannot allocate an arena of " + byte_size_string(arena_size), StatusCode::kResourceExhausted);
  // Values without an initializer have unspecified contents by contract;
  // zeroing once makes runs reproducible.
  ZERO_RETURN_IF_ERROR(backend->zero_fill(arena, arena_size));
  const auto* vals = plan->values();
  const size_t n = vals ? vals->size() : 0;
  values.resize(n);
  const uint64_t rank = uint64_t(comm->rank());
  for (size_t i = 0; i < n; ++i) {
    const plan::Value* v = vals->Get(i);
    const std::string what = "value " + std::to_string(i) + (v->name() ? " '" + v->name()->str() + "'" : "");
    Tensor& t = values[i];
    if (v->dtype() != plan::DType::F32 && v->dtype() != plan::DType::I64) return error(what + ": unknown dtype");
    t.dtype = DType(v->dtype());
    const size_t ndim = v->shape() ? v->shape()->size() : 0;
    if (ndim > size_t(kMaxRank)) return error(what + ": rank " + std::to_string(ndim) + " exceeds " + std::to_string(kMaxRank));
    t.ndim = int(ndim);
    uint64_t numel = 1;
    for (size_t d = 0; d < ndim; ++d) {
      int64_t dim = v->shape()->Get(d);
      if (dim < 0 || __builtin_mul_overflow(numel, uint64_t(dim), &numel) || numel > (uint64_t(1) << 48))
        return error(what + ": invalid shape");
      t.dims[d] = dim;
    }
    t.numel = int64_t(numel);
    const uint64_t bytes = numel * dtype_size(t.dtype);
    uint64_t start, end;
    if (__builtin_mul_overflow(rank, v->rank_stride(), &start) || __builtin_add_overflow(start, v->offset(), &start) ||
        __builtin_add_overflow(start, bytes, &end) || end > arena_size)
      return error(what + ": bytes [offset + rank * rank_stride, +" + std::to_string(bytes) +
                   ") lie outside the arena of " + std::to_string(arena_size) + " bytes");
    if (start % dtype_size(t.dtype) != 0) return error(what + ": misaligned for its dtype");
    t.data = arena + start;
  }
  return Status();
}

Status Session::Impl::resolve_collective(Op* op, const std::string& what) {
  const Tensor &x = op->in[0], &y = op->out[0];
  if (x.dtype != DType::F32 || y.dtype != DType::F32) return error(what + ": collectives take F32 values");
  const int64_t n = comm->size();
  const bool ok = op->opcode == plan::Opcode::AllReduce       ? x.numel == y.numel
                  : op->opcode == plan::Opcode::ReduceScatter ? x.numel == n * y.numel
                                                              : y.numel == n * x.numel;
  if (!ok)
    return error(what + ": element counts " + std::to_string(x.numel) + " -> " + std::to_string(y.numel) +
                 " do not fit world size " + std::to_string(n));
  using Kind = Communicator::Kind;
  Communicator::Collective& c = op->collective;
  c.kind = op->opcode == plan::Opcode::AllReduce       ? Kind::AllReduce
           : op->opcode == plan::Opcode::ReduceScatter ? Kind::ReduceScatter
                                                       : Kind::AllGather;
  c.in = x.f32();
  c.out = y.f32();
  c.count = size_t(c.kind == Kind::ReduceScatter ? y.numel : x.numel);
  // Operands are disjoint or in the communicator's in-place form; any other
  // overlap is undefined in MPI and a race in NCCL.
  const size_t chunk = size_t(comm->rank()) * c.count;
  const bool in_place = c.kind == Kind::AllReduce       ? c.in == c.out
                        : c.kind == Kind::ReduceScatter ? c.out == c.in + chunk
                                                        : c.in == c.out + chunk;
  if (!in_place && span_of(x).overlaps(span_of(y)))
    return error(what + ": input and output overlap, but not in the in-place form");
  if (const auto* attrs = op->inst->attrs_as_CollectiveAttrs()) {
    const plan::Reduction r = attrs->reduction();
    if (c.kind == Kind::AllGather && r != plan::Reduction::Sum) return error(what + ": AllGather takes no reduction");
    if (r == plan::Reduction::Mean) c.op = Reduction::Mean;
    else if (r != plan::Reduction::Sum) return error(what + ": reduction must be Sum or Mean");
    op->slot = int(std::min<uint32_t>(attrs->slot(), kMaxSlots + 1));
    if (op->slot > kMaxSlots) return error(what + ": slot " + std::to_string(attrs->slot()) + " exceeds " +
                                           std::to_string(kMaxSlots));
  }
  return Status();
}

// Asynchronous collectives: every slot is waited once after it starts, by the
// end of the step, on the collective's own operands; no instruction in
// between touches their bytes (that would race with the transfer on a GPU);
// groups are runs of consecutive asynchronous collectives. Each program
// completes its own collectives.
Status Session::Impl::resolve_schedule(Program* program, int* slots_used) {
  std::vector<Op>& ops = program->ops;
  struct Pending {
    size_t index;
    Span in, out;
  };
  std::vector<std::optional<Pending>> pending(kMaxSlots + 1);
  std::vector<int> active;  // slots in flight
  int slots = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    Op& op = ops[i];
    const std::string what = program->what(i);
    if (op.opcode == plan::Opcode::Wait) {
      const auto* attrs = op.inst->attrs_as_WaitAttrs();
      const uint32_t slot = attrs ? attrs->slot() : 0;
      if (slot == 0 || slot > uint32_t(kMaxSlots) || !pending[slot])
        return error(what + ": slot " + std::to_string(slot) + " has no collective in flight");
      const Op& started = ops[pending[slot]->index];
      if (op.in[0].data != started.in[0].data || op.in[1].data != started.out[0].data ||
          op.in[0].numel != started.in[0].numel || op.in[1].numel != started.out[0].numel)
        return error(what + ": operands are not those of " + program->label + " " + std::to_string(pending[slot]->index) +
                     " it waits for");
      op.slot = int(slot);
      pending[slot].reset();
      active.erase(std::find(active.begin(), active.end(), int(slot)));
      continue;
    }
    for (int slot : active) {
      const auto& p = pending[size_t(slot)];
      for (const Tensor& t : op.in)
        if (span_of(t).overlaps(p->in) || span_of(t).overlaps(p->out))
          return error(what + ": reads bytes of " + program->label + " " + std::to_string(p->index) + " before its Wait");
      for (const Tensor& t : op.out)
        if (span_of(t).overlaps(p->in) || span_of(t).overlaps(p->out))
          return error(what + ": writes bytes of " + program->label + " " + std::to_string(p->index) + " before its Wait");
    }
    if (!is_collective(op.opcode)) continue;
    const auto* attrs = op.inst->attrs_as_CollectiveAttrs();
    const uint32_t group = op.group = attrs ? attrs->group() : 0;
    if (group != 0 && op.slot == 0) return error(what + ": a grouped collective must be asynchronous (slot > 0)");
    auto group_of = [&](size_t j) -> uint32_t {
      if (j >= ops.size() || !is_collective(ops[j].opcode)) return 0;
      const auto* a = ops[j].inst->attrs_as_CollectiveAttrs();
      return a ? a->group() : 0;
    };
    op.group_begin = group != 0 && (i == 0 || group_of(i - 1) != group);
    op.group_end = group != 0 && group_of(i + 1) != group;
    if (op.slot == 0) continue;
    if (pending[op.slot])
      return error(what + ": slot " + std::to_string(op.slot) + " is still in flight (" + program->label + " " +
                   std::to_string(pending[op.slot]->index) + ")");
    pending[op.slot] = Pending{i, span_of(op.in[0]), span_of(op.out[0])};
    active.push_back(op.slot);
    slots = std::max(slots, op.slot);
  }
  if (!active.empty())
    return error(program->label + " " + std::to_string(pending[size_t(active[0])]->index) +
                 ": asynchronous collective is never waited for");
  *slots_used = std::max(*slots_used, slots);
  return Status();
}

Status Session::Impl::resolve_instructions(const Instructions* insts, Program* program) {
  const size_t n = insts ? insts->size() : 0;
  std::vector<Op>& ops = program->ops;
  ops.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const plan::Instruction* inst = insts->Get(i);
    Op op;
    op.opcode = inst->opcode();
    op.inst = inst;
    const std::string what = program->label + " " + std::to_string(i);
    const plan_ops::OpDescriptor* desc = plan_ops::find_op(op.opcode);
    if (!desc) return error(what + ": unknown opcode " + std::to_string(unsigned(op.opcode)));
    const std::string name = what + " (" + plan::EnumNameOpcode(op.opcode) + ")";
    const int nin = inst->inputs() ? int(inst->inputs()->size()) : 0;
    const int nout = inst->outputs() ? int(inst->outputs()->size()) : 0;
    if (nin < desc->min_in || nin > desc->max_in || nout < desc->min_out || nout > desc->max_out)
      return error(name + ": wrong operand count (" + std::to_string(nin) + " inputs, " + std::to_string(nout) +
                   " outputs)");
    if (Status st = check_attrs_type(*desc, inst->attrs_type(), name); !st.ok()) return error(st.message());
    for (int k = 0; k < nin; ++k) {
      uint32_t v = inst->inputs()->Get(k);
      if (v >= values.size()) return error(name + ": input value index " + std::to_string(v) + " out of range");
      op.in.push_back(values[v]);
    }
    for (int k = 0; k < nout; ++k) {
      uint32_t v = inst->outputs()->Get(k);
      if (v >= values.size()) return error(name + ": output value index " + std::to_string(v) + " out of range");
      op.out.push_back(values[v]);
    }
    if (is_collective(op.opcode)) {
      ZERO_RETURN_IF_ERROR(resolve_collective(&op, name));
    } else if (op.opcode != plan::Opcode::Wait) {
      op.kernel = backend->kernel(op.opcode);
      if (!op.kernel)
        return error(name + ": " + plan::EnumNameBackend(backend->kind()) + " backend: opcode " +
                     plan::EnumNameOpcode(op.opcode) + " is not implemented");
      Status st = op.kernel->prepare(
          KernelCall{inst, op.in.data(), int(op.in.size()), op.out.data(), int(op.out.size())}, &op.prepared);
      if (!st.ok()) return error(what + ": " + st.message());
      scratch_size = std::max(scratch_size, op.prepared.scratch_bytes);
    }
    ops.push_back(std::move(op));
  }
  return Status();
}

Status Session::Impl::allocate_scratch() {
  context.device = backend->device_context();
  context.rank = uint32_t(comm->rank());
  if (scratch_size == 0) return Status();
  const uint64_t available = backend->available_memory();
  if (available && scratch_size > available)
    return error("the kernels need " + byte_size_string(scratch_size) + " of scratch beyond the arena, but only " +
                     byte_size_string(available) + " of memory is available",
                 StatusCode::kResourceExhausted);
  scratch = alloc->allocate(scratch_size, kArenaAlignment);
  if (!scratch)
    return error("cannot allocate " + byte_size_string(scratch_size) + " of kernel scratch",
                 StatusCode::kResourceExhausted);
  context.scratch = scratch;
  return Status();
}

// After instruction `failed` returned an error: leave nothing running into
// the arena and the communicator ready for another step (best effort; the
// first error is the one reported). What is in flight follows from the plan.
void Session::Impl::abandon(const Program& program, size_t failed) {
  const std::vector<Op>& ops = program.ops;
  std::vector<int> in_flight;
  for (size_t i = 0; i < failed; ++i) {
    if (ops[i].opcode == plan::Opcode::Wait) in_flight.erase(std::find(in_flight.begin(), in_flight.end(), ops[i].slot));
    else if (is_collective(ops[i].opcode) && ops[i].slot) in_flight.push_back(ops[i].slot);
  }
  // A failed grouped collective may leave its group open (ending one that
  // is not open only returns an error).
  if (ops[failed].group) (void)comm->group_end();
  for (int slot : in_flight) (void)comm->wait(slot);
  (void)backend->finish_step();
}

Status Session::Impl::load_initializers() {
  const auto* inits = plan->initializers();
  if (!inits) return Status();
  for (size_t i = 0; i < inits->size(); ++i) {
    const plan::Initializer* init = inits->Get(i);
    const std::string what = "initializer " + std::to_string(i);
    if (init->value() >= values.size()) return error(what + ": value index out of range");
    if (init->rank() < -1 || init->rank() >= comm->size()) return error(what + ": rank out of range");
    if (init->rank() != -1 && init->rank() != comm->rank()) continue;
    const Tensor& t = values[init->value()];
    const size_t size = init->data() ? init->data()->size() : 0;
    if (size != size_t(t.numel) * dtype_size(t.dtype))
      return error(what + ": " + std::to_string(size) + " bytes for a value of " +
                   std::to_string(size_t(t.numel) * dtype_size(t.dtype)));
    if (size) ZERO_RETURN_IF_ERROR(backend->copy_to_device(t.data, init->data()->data(), size));
  }
  return Status();
}

static TensorInfo tensor_info(const flatbuffers::String* name, const Tensor& t) {
  return TensorInfo{name ? name->str() : std::string(), t.dtype, std::vector<int64_t>(t.dims, t.dims + t.ndim)};
}

Status Session::Impl::resolve_inputs(const flatbuffers::Vector<flatbuffers::Offset<plan::Input>>* ins,
                                     const char* what, std::vector<TensorInfo>* infos,
                                     std::vector<uint32_t>* indices) {
  for (size_t i = 0; ins && i < ins->size(); ++i) {
    const plan::Input* in = ins->Get(i);
    const std::string name = what + (" " + std::to_string(i));
    if (in->value() >= values.size()) return error(name + ": value index out of range");
    TensorInfo input = tensor_info(in->name(), values[in->value()]);
    input.micro_step = in->micro_step();
    for (const TensorInfo& prev : *infos)
      if (prev.name == input.name && prev.micro_step == input.micro_step)
        return error(name + " '" + input.name + "': duplicate name for micro-step " +
                     std::to_string(input.micro_step));
    infos->push_back(std::move(input));
    indices->push_back(in->value());
  }
  return Status();
}

Status Session::Impl::resolve_io() {
  const auto info = tensor_info;
  ZERO_RETURN_IF_ERROR(resolve_inputs(plan->inputs(), "input", &inputs, &input_values));
  if (const auto* ps = plan->parameters())
    for (size_t i = 0; i < ps->size(); ++i) {
      const plan::Parameter* p = ps->Get(i);
      const std::string what = "parameter " + std::to_string(i) + (p->name() ? " '" + p->name()->str() + "'" : "");
      if (p->value() >= values.size()) return error(what + ": value index out of range");
      const Tensor& t = values[p->value()];
      if (t.dtype != DType::F32) return error(what + ": parameters must be F32");
      TensorInfo ti{p->name() ? p->name()->str() : std::string(), DType::F32, {}};
      uint64_t numel = 1;
      if (p->shape())
        for (int64_t d : *p->shape()) {
          if (d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel)) return error(what + ": invalid shape");
          ti.shape.push_back(d);
        }
      const bool ok = p->sharded() ? uint64_t(t.numel) == p->shard_numel() &&
                                         p->shard_numel() * uint64_t(comm->size()) >= numel
                                   : uint64_t(t.numel) == numel;
      if (!ok) return error(what + ": storage of " + std::to_string(t.numel) + " elements does not hold shape " +
                            shape_string(ti.shape));
      using Kind = StateTensor::Kind;
      state.push_back({ti.name, p->trainable() ? Kind::Parameter : Kind::ModelState, DType::F32, ti.shape,
                       p->sharded(), p->shard_numel()});
      state_values.push_back(p->value());
      state_params.push_back(int(params.size()));
      if (const auto* optimizer = p->optimizer_state())
        for (const plan::Output* o : *optimizer) {
          const std::string name = ti.name + "/" + (o->name() ? o->name()->str() : std::string());
          const uint64_t want = p->state_sharded() ? p->shard_numel() : numel;
          if (!o->name() || o->value() >= values.size() || values[o->value()].dtype != DType::F32 ||
              uint64_t(values[o->value()].numel) != want)
            return error(what + ": optimizer state '" + name + "' is not an F32 value of " + std::to_string(want) +
                         " elements");
          state.push_back({name, Kind::OptimizerState, DType::F32, ti.shape, p->state_sharded(), p->shard_numel()});
          state_values.push_back(o->value());
          state_params.push_back(-1);
        }
      params.push_back(std::move(ti));
      param_slots.push_back({p->value(), p->sharded(), p->shard_numel(), int64_t(numel), p->trainable(), false});
    }
  if (plan->has_step_counter()) {
    const uint32_t v = plan->step_counter();
    if (v >= values.size() || values[v].dtype != DType::I64 || values[v].numel != 1)
      return error("step counter: value " + std::to_string(v) + " is not a scalar I64 value of the plan");
    state.push_back({"step", StateTensor::Kind::StepCounter, DType::I64, {}, false, 0});
    state_values.push_back(v);
    state_params.push_back(-1);
  }
  if (const auto* outs = plan->outputs())
    for (size_t i = 0; i < outs->size(); ++i) {
      const plan::Output* o = outs->Get(i);
      const std::string what = "output " + std::to_string(i) + (o->name() ? " '" + o->name()->str() + "'" : "");
      if (!o->name() || o->name()->size() == 0) return error(what + ": has no name");
      if (o->value() >= values.size()) return error(what + ": value index out of range");
      for (const TensorInfo& prev : outputs)
        if (prev.name == o->name()->str()) return error(what + ": duplicate output name");
      outputs.push_back(info(o->name(), values[o->value()]));
      output_values.push_back(o->value());
    }
  if (const auto* metrics = plan->metrics())
    for (size_t i = 0; i < metrics->size(); ++i) {
      const plan::Output* m = metrics->Get(i);
      const std::string what = "metric " + std::to_string(i) + (m->name() ? " '" + m->name()->str() + "'" : "");
      // Names become JSON keys of zero-run's log: identifiers only.
      const auto identifier = [](unsigned char c) { return std::isalnum(c) || c == '_'; };
      if (!m->name() || m->name()->size() == 0 ||
          !std::all_of(m->name()->begin(), m->name()->end(), identifier))
        return error(what + ": a metric name is letters, digits and '_'");
      if (std::find(metric_names.begin(), metric_names.end(), m->name()->str()) != metric_names.end())
        return error(what + ": duplicate metric name");
      if (m->value() >= values.size() || values[m->value()].dtype != DType::F32 || values[m->value()].numel != 1)
        return error(what + ": is not a scalar F32 value of the plan");
      metric_names.push_back(m->name()->str());
      metric_values.push_back(m->value());
    }
  const auto scalar_f32 = [&](uint32_t v) {
    return v < values.size() && values[v].dtype == DType::F32 && values[v].numel == 1;
  };
  if (outputs.empty() && !scalar_f32(plan->loss()))
    return error("loss: value " + std::to_string(plan->loss()) + " is not a scalar F32 value of the plan");
  if (const plan::Evaluation* evaluation = plan->evaluation()) {
    if (!outputs.empty()) return error("evaluation: a forward-only plan has no evaluation program");
    ZERO_RETURN_IF_ERROR(resolve_inputs(evaluation->inputs(), "evaluation input", &eval_inputs, &eval_input_values));
    if (!scalar_f32(evaluation->loss()))
      return error("evaluation loss: value " + std::to_string(evaluation->loss()) +
                   " is not a scalar F32 value of the plan");
  }
  return Status();
}

Status Session::Impl::init() {
  ZERO_RETURN_IF_ERROR(verify_header());
  ZERO_RETURN_IF_ERROR(resolve_values());
  ZERO_RETURN_IF_ERROR(resolve_instructions(plan->instructions(), &step));
  if (plan->evaluation()) ZERO_RETURN_IF_ERROR(resolve_instructions(plan->evaluation()->instructions(), &eval));
  ZERO_RETURN_IF_ERROR(allocate_scratch());
  int slots = 0;
  ZERO_RETURN_IF_ERROR(resolve_schedule(&step, &slots));
  ZERO_RETURN_IF_ERROR(resolve_schedule(&eval, &slots));
  if (slots > 0) {
    Status st = comm->reserve_slots(slots);
    if (!st.ok()) return error(st.message());
  }
  ZERO_RETURN_IF_ERROR(load_initializers());
  return resolve_io();
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Status Session::open(const std::string& path, Communicator* comm, Allocator* alloc, std::unique_ptr<Session>* out) {
  return open(path, comm, alloc, nullptr, out);
}

Status Session::open(const std::string& path, Communicator* comm, Allocator* alloc, const Backend* backend,
                     std::unique_ptr<Session>* out) {
  auto impl = std::make_unique<Impl>();
  impl->name = path;
  impl->alloc = alloc;
  ZERO_RETURN_IF_ERROR(impl->bytes.map(path));
  impl->comm = comm;
  impl->backend = backend ? backend : &cpu_backend();
  ZERO_RETURN_IF_ERROR(impl->init());
  out->reset(new Session(std::move(impl)));
  return Status();
}

Status Session::open_buffer(const void* data, size_t size, Communicator* comm, Allocator* alloc,
                            std::unique_ptr<Session>* out) {
  return open_buffer(data, size, comm, alloc, nullptr, out);
}

Status Session::open_buffer(const void* data, size_t size, Communicator* comm, Allocator* alloc,
                            const Backend* backend, std::unique_ptr<Session>* out) {
  auto impl = std::make_unique<Impl>();
  impl->name = "<plan buffer>";
  impl->alloc = alloc;
  // The plan bytes stay on the host: a device backend's allocator is not for them.
  ZERO_RETURN_IF_ERROR(impl->bytes.copy(data, size, backend ? default_allocator() : alloc));
  impl->comm = comm;
  impl->backend = backend ? backend : &cpu_backend();
  ZERO_RETURN_IF_ERROR(impl->init());
  out->reset(new Session(std::move(impl)));
  return Status();
}

Status describe_plan(const std::string& path, PlanSummary* summary) {
  PlanBytes bytes;
  ZERO_RETURN_IF_ERROR(bytes.map(path));
  if (bytes.size() < 8 || !plan::PlanBufferHasIdentifier(bytes.data()))
    return Status::invalid_argument(path + ": not a zero plan (missing file identifier " + kPlanFileIdentifier + ")");
  flatbuffers::Verifier verifier(bytes.data(), bytes.size(), /*max_depth=*/64, /*max_tables=*/100000000);
  if (!plan::VerifyPlanBuffer(verifier))
    return Status::invalid_argument(path + ": corrupt or truncated plan (FlatBuffers verification failed)");
  const plan::Plan* plan = plan::GetPlan(bytes.data());
  if (!long_vectors_aligned(plan)) return Status::invalid_argument(path + ": corrupt plan (a vector of int64 is misaligned)");
  *summary = PlanSummary();
  summary->cuda = plan->backend() == plan::Backend::Cuda;
  summary->world_size = plan->world_size();
  summary->arena_bytes = plan->arena_bytes();
  summary->weights_omitted = plan->weights_omitted();
  const auto* values = plan->values();
  const auto tensor = [&](const flatbuffers::String* name, uint32_t index, TensorInfo* info) {
    if (!values || index >= values->size())
      return Status::invalid_argument(path + ": '" + (name ? name->str() : std::string()) + "': value index out of range");
    const plan::Value* v = values->Get(index);
    info->name = name ? name->str() : std::string();
    info->dtype = v->dtype() == plan::DType::I64 ? DType::I64 : DType::F32;
    // Bounded as Session::open bounds it: the value lies in the arena.
    uint64_t bytes = dtype_size(info->dtype);
    const size_t rank = v->shape() ? v->shape()->size() : 0;
    if (rank > size_t(kMaxRank))
      return Status::invalid_argument(path + ": '" + info->name + "': rank " + std::to_string(rank) + " exceeds " +
                           std::to_string(kMaxRank));
    for (size_t d = 0; d < rank; ++d) {
      const int64_t dim = v->shape()->Get(d);
      if (dim < 0 || __builtin_mul_overflow(bytes, uint64_t(dim), &bytes) || bytes > summary->arena_bytes)
        return Status::invalid_argument(path + ": '" + info->name + "': invalid shape");
      info->shape.push_back(dim);
    }
    return Status();
  };
  const auto inputs = [&](const flatbuffers::Vector<flatbuffers::Offset<plan::Input>>* ins,
                          std::vector<TensorInfo>* infos) {
    for (size_t i = 0; ins && i < ins->size(); ++i) {
      TensorInfo info;
      ZERO_RETURN_IF_ERROR(tensor(ins->Get(i)->name(), ins->Get(i)->value(), &info));
      info.micro_step = ins->Get(i)->micro_step();
      infos->push_back(std::move(info));
    }
    return Status();
  };
  ZERO_RETURN_IF_ERROR(inputs(plan->inputs(), &summary->inputs));
  if (const plan::Evaluation* evaluation = plan->evaluation()) {
    summary->has_evaluation = true;
    ZERO_RETURN_IF_ERROR(inputs(evaluation->inputs(), &summary->eval_inputs));
  }
  if (const auto* outs = plan->outputs())
    for (const plan::Output* out : *outs) {
      TensorInfo info;
      ZERO_RETURN_IF_ERROR(tensor(out->name(), out->value(), &info));
      summary->outputs.push_back(std::move(info));
    }
  if (const auto* ps = plan->parameters())
    for (const plan::Parameter* p : *ps) {
      TensorInfo info{p->name() ? p->name()->str() : std::string(), DType::F32, {}};
      if (p->shape()) info.shape.assign(p->shape()->begin(), p->shape()->end());
      summary->parameters.push_back(std::move(info));
      summary->trainable.push_back(p->trainable());
    }
  return Status();
}

const std::vector<TensorInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Session::parameters() const { return impl_->params; }
const std::vector<TensorInfo>& Session::outputs() const { return impl_->outputs; }
bool Session::forward_only() const { return !impl_->outputs.empty(); }

uint32_t Session::micro_steps() const {
  uint32_t steps = 1;
  for (const TensorInfo& info : impl_->inputs) steps = std::max(steps, info.micro_step + 1);
  return steps;
}

Status Session::bind_input(const std::string& name, const void* data, DType dtype, const std::vector<int64_t>& shape) {
  return bind_input(name, 0, data, dtype, shape);
}

// Copies a batch into the input of `infos` named `name` at `micro_step`.
static Status copy_batch(const Backend& backend, const std::vector<Tensor>& values, const std::vector<TensorInfo>& infos,
                         const std::vector<uint32_t>& indices, const std::string& what, const std::string& name,
                         uint32_t micro_step, const void* data, DType dtype, const std::vector<int64_t>& shape) {
  for (size_t i = 0; i < infos.size(); ++i) {
    const TensorInfo& info = infos[i];
    if (info.name != name || info.micro_step != micro_step) continue;
    if (dtype != info.dtype)
      return Status::invalid_argument(what + " '" + name + "': expected " + dtype_name(info.dtype) + ", got " +
                                      dtype_name(dtype));
    if (shape != info.shape)
      return Status::invalid_argument(what + " '" + name + "': expected shape " + shape_string(info.shape) +
                                      ", got " + shape_string(shape));
    const Tensor& t = values[indices[i]];
    return backend.copy_to_device(t.data, data, size_t(t.numel) * dtype_size(t.dtype));
  }
  return Status::not_found("plan has no " + what + " named '" + name + "'" +
                           (micro_step ? " for micro-step " + std::to_string(micro_step) : std::string()));
}

Status Session::bind_input(const std::string& name, uint32_t micro_step, const void* data, DType dtype,
                           const std::vector<int64_t>& shape) {
  return copy_batch(*impl_->backend, impl_->values, impl_->inputs, impl_->input_values, "input", name, micro_step, data,
                    dtype, shape);
}

bool Session::has_evaluation() const { return impl_->plan->evaluation() != nullptr; }
const std::vector<TensorInfo>& Session::eval_inputs() const { return impl_->eval_inputs; }

Status Session::bind_eval_input(const std::string& name, const void* data, DType dtype,
                                const std::vector<int64_t>& shape) {
  if (!has_evaluation()) return impl_->error("the plan has no evaluation program (zero-opt --eval)", StatusCode::kFailedPrecondition);
  return copy_batch(*impl_->backend, impl_->values, impl_->eval_inputs, impl_->eval_input_values, "evaluation input", name,
                    0, data, dtype, shape);
}

Status Session::Impl::run(Program* program) {
  if (plan->weights_omitted())
    for (size_t i = 0; i < params.size(); ++i)
      if (param_slots[i].trainable && !param_slots[i].written)
        return error("the plan has no initial weights (zero-opt --omit-weights) and parameter '" + params[i].name +
                     "' was not given one (zero-run --init-params DIR)");
  for (size_t i = 0; i < program->ops.size(); ++i) {
    Op& op = program->ops[i];
    Status st;
    if (op.kernel) {
      st = op.kernel->execute(context,
                              KernelCall{op.inst, op.in.data(), int(op.in.size()), op.out.data(), int(op.out.size())},
                              op.prepared);
    } else if (op.opcode == plan::Opcode::Wait) {
      st = comm->wait(op.slot);
    } else {
      if (op.group_begin) st = comm->group_begin();
      if (st.ok()) st = op.slot ? comm->start(op.collective, op.slot) : comm->run(op.collective);
      if (st.ok() && op.group_end) st = comm->group_end();
    }
    if (!st.ok()) {
      abandon(*program, i);
      return error(program->label + " " + std::to_string(i) + ": " + st.message());
    }
  }
  Status st = backend->finish_step();
  if (!st.ok()) return error(st.message());
  return Status();
}

Status Session::step() { return impl_->run(&impl_->step); }

Status Session::evaluate(float* loss) {
  Impl& s = *impl_;
  if (!has_evaluation()) return s.error("the plan has no evaluation program (zero-opt --eval)", StatusCode::kFailedPrecondition);
  ZERO_RETURN_IF_ERROR(s.run(&s.eval));
  return s.backend->copy_to_host(loss, s.values[s.plan->evaluation()->loss()].data, sizeof(float));
}

Status Session::loss(float* value) const {
  if (forward_only()) return impl_->error("a forward-only plan (with outputs) has no loss");
  const uint32_t v = impl_->plan->loss();
  if (v >= impl_->values.size() || impl_->values[v].dtype != DType::F32 || impl_->values[v].numel != 1)
    return impl_->error("plan has no scalar F32 loss value");
  return impl_->backend->copy_to_host(value, impl_->values[v].data, sizeof(float));
}

void Session::set_seed(uint64_t seed) { impl_->context.seed = seed; }

const std::vector<std::string>& Session::metric_names() const { return impl_->metric_names; }

Status Session::read_metrics(std::vector<float>* values) const {
  values->resize(impl_->metric_values.size());
  for (size_t i = 0; i < impl_->metric_values.size(); ++i)
    ZERO_RETURN_IF_ERROR(
        impl_->backend->copy_to_host(&(*values)[i], impl_->values[impl_->metric_values[i]].data, sizeof(float)));
  return Status();
}

Status Session::read_output(const std::string& name, std::vector<float>* values) const {
  for (size_t i = 0; i < impl_->outputs.size(); ++i) {
    if (impl_->outputs[i].name != name) continue;
    const Tensor& t = impl_->values[impl_->output_values[i]];
    if (t.dtype != DType::F32)
      return Status::invalid_argument("output '" + name + "' is " + dtype_name(t.dtype) + ", use read_output_bytes");
    values->resize(size_t(t.numel));
    return impl_->backend->copy_to_host(values->data(), t.data, size_t(t.numel) * sizeof(float));
  }
  return Status::not_found("plan has no output named '" + name + "'");
}

Status Session::read_output_bytes(const std::string& name, std::vector<uint8_t>* bytes) const {
  for (size_t i = 0; i < impl_->outputs.size(); ++i) {
    if (impl_->outputs[i].name != name) continue;
    const Tensor& t = impl_->values[impl_->output_values[i]];
    bytes->resize(size_t(t.numel) * dtype_size(t.dtype));
    return impl_->backend->copy_to_host(bytes->data(), t.data, bytes->size());
  }
  return Status::not_found("plan has no output named '" + name + "'");
}

Status Session::read_parameter(const std::string& name, std::vector<float>* out) {
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    if (impl_->params[i].name != name) continue;
    const ParamSlot& p = impl_->param_slots[i];
    const Tensor& t = impl_->values[p.value];
    const Backend& be = *impl_->backend;
    if (!p.sharded) {
      out->resize(size_t(t.numel));
      return be.copy_to_host(out->data(), t.data, size_t(t.numel) * sizeof(float));
    }
    // The shards are chunks of the flattened tensor padded to
    // world_size * shard_numel; gather them and drop the padding.
    const size_t total = size_t(p.shard_numel) * size_t(impl_->comm->size());
    out->resize(total);
    if (be.kind() == plan::Backend::Cpu) {
      ZERO_RETURN_IF_ERROR(impl_->comm->all_gather(t.f32(), out->data(), size_t(p.shard_numel)));
    } else {
      // The communicator works on device memory: gather into device scratch.
      void* scratch = impl_->alloc->allocate(total ? total * sizeof(float) : 1, kArenaAlignment);
      if (!scratch) return impl_->error("cannot allocate " + std::to_string(total * sizeof(float)) +
                                        " bytes to gather parameter '" + name + "'");
      Status st = impl_->comm->all_gather(t.f32(), static_cast<float*>(scratch), size_t(p.shard_numel));
      if (st.ok()) st = be.copy_to_host(out->data(), scratch, total * sizeof(float));
      impl_->alloc->deallocate(scratch);
      ZERO_RETURN_IF_ERROR(st);
    }
    out->resize(size_t(p.numel));
    return Status();
  }
  return Status::not_found("plan has no parameter named '" + name + "'");
}

Status Session::write_parameter(const std::string& name, const float* values, size_t count) {
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    if (impl_->params[i].name != name) continue;
    ParamSlot& p = impl_->param_slots[i];
    if (count != size_t(p.numel))
      return Status::invalid_argument("parameter '" + name + "' has " + std::to_string(p.numel) + " elements, got " +
                           std::to_string(count));
    const Tensor& t = impl_->values[p.value];
    const Backend& be = *impl_->backend;
    if (!p.sharded) {
      ZERO_RETURN_IF_ERROR(be.copy_to_device(t.data, values, count * sizeof(float)));
    } else {
      // This rank's chunk of the flattened tensor, zero-padded past its end.
      const size_t begin = std::min(count, size_t(impl_->comm->rank()) * size_t(p.shard_numel));
      const size_t end = std::min(count, begin + size_t(p.shard_numel));
      std::vector<float> shard(size_t(p.shard_numel), 0.0f);
      std::copy(values + begin, values + end, shard.begin());
      ZERO_RETURN_IF_ERROR(be.copy_to_device(t.data, shard.data(), shard.size() * sizeof(float)));
    }
    p.written = true;
    return Status();
  }
  return Status::not_found("plan has no parameter named '" + name + "'");
}

bool Session::weights_omitted() const { return impl_->plan->weights_omitted(); }

bool Session::is_trainable(const std::string& name) const {
  for (size_t i = 0; i < impl_->params.size(); ++i)
    if (impl_->params[i].name == name) return impl_->param_slots[i].trainable;
  return false;
}

uint64_t StateTensor::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

const char* state_kind_name(StateTensor::Kind kind) {
  switch (kind) {
    case StateTensor::Kind::Parameter: return "parameter";
    case StateTensor::Kind::OptimizerState: return "optimizer_state";
    case StateTensor::Kind::ModelState: return "model_state";
    case StateTensor::Kind::StepCounter: return "step_counter";
  }
  return "unknown";
}

const std::vector<StateTensor>& Session::state() const { return impl_->state; }

Status Session::read_state(size_t index, std::vector<uint8_t>* bytes) const {
  if (index >= impl_->state.size()) return Status::out_of_range("state index " + std::to_string(index));
  const Tensor& t = impl_->values[impl_->state_values[index]];
  bytes->resize(size_t(t.numel) * dtype_size(t.dtype));
  return impl_->backend->copy_to_host(bytes->data(), t.data, bytes->size());
}

Status Session::write_state(size_t index, const void* data, size_t bytes) {
  if (index >= impl_->state.size()) return Status::out_of_range("state index " + std::to_string(index));
  const Tensor& t = impl_->values[impl_->state_values[index]];
  if (bytes != size_t(t.numel) * dtype_size(t.dtype))
    return Status::invalid_argument("state '" + impl_->state[index].name + "': " + std::to_string(bytes) +
                                    " bytes for a stored " + std::to_string(size_t(t.numel) * dtype_size(t.dtype)));
  ZERO_RETURN_IF_ERROR(impl_->backend->copy_to_device(t.data, data, bytes));
  if (impl_->state_params[index] >= 0) impl_->param_slots[size_t(impl_->state_params[index])].written = true;
  return Status();
}

std::string Session::training_config() const {
  // The first instruction of each opcode that decides how a step trains,
  // with its attributes as the descriptor tables list them.
  std::string config = "micro_steps=" + std::to_string(micro_steps());
  std::vector<plan::Opcode> seen;
  for (const Op& op : impl_->step.ops) {
    const plan::Opcode c = op.opcode;
    if ((c != plan::Opcode::SgdUpdate && c != plan::Opcode::AdamWUpdate && c != plan::Opcode::LearningRate &&
         c != plan::Opcode::ClipCoefficient) ||
        std::find(seen.begin(), seen.end(), c) != seen.end())
      continue;
    seen.push_back(c);
    config += std::string(" ") + plan::EnumNameOpcode(c) + "(";
    const plan_ops::AttrTable* table = plan_ops::find_attr_table(op.inst->attrs_type());
    const auto* attrs = static_cast<const flatbuffers::Table*>(op.inst->attrs());
    for (size_t f = 0; table && attrs && f < table->num_fields; ++f) {
      const plan_ops::AttrField& field = table->fields[f];
      std::string value;
      switch (field.kind) {
        case plan_ops::AttrKind::Bool:
        case plan_ops::AttrKind::Reduction:
        case plan_ops::AttrKind::Schedule: value = std::to_string(attrs->GetField<uint8_t>(field.offset, 0)); break;
        case plan_ops::AttrKind::I64: value = std::to_string(attrs->GetField<int64_t>(field.offset, 0)); break;
        case plan_ops::AttrKind::U32: value = std::to_string(attrs->GetField<uint32_t>(field.offset, 0)); break;
        case plan_ops::AttrKind::F32: {
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%.9g", double(attrs->GetField<float>(field.offset, 0.f)));
          value = buf;
          break;
        }
        case plan_ops::AttrKind::I64s: continue;
      }
      config += std::string(f ? ", " : "") + field.name + "=" + value;
    }
    config += ")";
  }
  return config;
}

size_t Session::arena_bytes() const { return impl_->arena_size; }
size_t Session::kernel_scratch_bytes() const { return impl_->scratch_size; }
int Session::world_size() const { return int(impl_->plan->world_size()); }
int Session::zero_stage() const { return int(impl_->plan->zero_stage()); }

const uint8_t* Session::onnx_model(size_t* size) const {
  const auto* m = impl_->plan->onnx_model();
  *size = m ? m->size() : 0;
  return m ? m->data() : nullptr;
}

}  // namespace zero
