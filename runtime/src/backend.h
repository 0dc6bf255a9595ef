// The kernel interface between the executor and a backend. A backend is a
// table of kernels indexed by opcode; the executor resolves every
// instruction's operands to Tensors once at load, runs the kernel's prepare
// on them (validation and geometry, once) and its execute per step.
// Collectives are not kernels: the executor sends them to the Communicator.
#ifndef ZERO_RUNTIME_BACKEND_H
#define ZERO_RUNTIME_BACKEND_H

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>

#include "zero/plan_generated.h"
#include "zero/runtime.h"

namespace zero {

constexpr int kMaxRank = 8;

// A dense row-major view into the arena.
struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  int ndim = 0;
  int64_t dims[kMaxRank] = {};
  int64_t numel = 1;

  float* f32() const { return static_cast<float*>(data); }
  int64_t* i64() const { return static_cast<int64_t*>(data); }
};

std::string tensor_shape_string(const Tensor& t);

// Operands of one instruction. The executor resolves them once at load: the
// tensors (shapes, dtypes, arena addresses) its prepare sees are the ones
// every execute gets.
struct KernelCall {
  const plan::Instruction* inst;
  const Tensor* in;
  int num_in;
  Tensor* out;
  int num_out;
};

// A device backend's own resources (cuda/backend_internal.h: the stream, the
// cuBLAS handle, the device error word); the CPU backend has none.
struct DeviceContext;

// What every execute runs with, owned by the session and its backend: no
// kernel reads process-global state.
struct KernelContext {
  // The session's kernel scratch: at least the scratch_bytes that any
  // instruction's prepare reported, allocated once at load (in the backend's
  // memory, through the session's allocator); shared by all instructions,
  // which run one after another.
  void* scratch = nullptr;
  const DeviceContext* device = nullptr;
  // What keys the run's random numbers (Dropout's masks) besides the step
  // counter the plan passes: the run's seed and this rank.
  uint64_t seed = 0;
  uint32_t rank = 0;
};

// What an instruction's prepare leaves for its execute: the kernel's geometry
// (a plain-data struct of its own, stored at load in a buffer of its size and
// read back through state<T>()) and the scratch its execute needs.
class PreparedKernel {
 public:
  template <class T>
  T* emplace_state() {
    check_state_type<T>();
    // new[] of unsigned char is aligned for any object of fundamental alignment that fits.
    state_.reset(new unsigned char[sizeof(T)]);
    state_size_ = sizeof(T);
    return new (state_.get()) T();
  }
  template <class T>
  const T& state() const {
    check_state_type<T>();
    assert(state_ && state_size_ == sizeof(T));
    return *std::launder(reinterpret_cast<const T*>(state_.get()));
  }

  size_t scratch_bytes = 0;

 private:
  template <class T>
  static constexpr void check_state_type() {
    static_assert(alignof(T) <= alignof(std::max_align_t), "kernel state over-aligned");
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                  "kernel state must be plain data (it is never destroyed)");
  }
  std::unique_ptr<unsigned char[]> state_;
  size_t state_size_ = 0;
};

// One opcode's kernel: `prepare` runs once per instruction at load, checks
// the operands' dtypes, shapes and attributes (touching no tensor contents)
// and computes the geometry; `execute` runs it per step from that geometry
// and checks only what the data decides (an index or label out of range).
// Built only by define_kernel, so no kernel lacks a prepare.
class KernelDef;
// A kernel from its typed parts: kPrepare, Status(const KernelCall&,
// State*), fills the state execute reads; kScratch, size_t(const State&)
// (nullptr: none), gives the bytes of scratch the execute needs.
template <auto kPrepare, auto kExecute, auto kScratch = nullptr>
constexpr KernelDef define_kernel();

class KernelDef {
 public:
  using Prepare = Status (*)(const KernelCall& call, PreparedKernel* prepared);
  using Execute = Status (*)(const KernelContext& ctx, const KernelCall& call, const PreparedKernel& prepared);

  Status prepare(const KernelCall& call, PreparedKernel* prepared) const { return prepare_(call, prepared); }
  Status execute(const KernelContext& ctx, const KernelCall& call, const PreparedKernel& prepared) const {
    return execute_(ctx, call, prepared);
  }

 private:
  template <auto, auto, auto>
  friend constexpr KernelDef define_kernel();
  constexpr KernelDef(Prepare p, Execute e) : prepare_(p), execute_(e) {}
  Prepare prepare_;
  Execute execute_;
};

// The state type of a typed execute, Status(const KernelContext&, const
// KernelCall&, const State&).
template <class F>
struct KernelStateOf;
template <class State>
struct KernelStateOf<Status (*)(const KernelContext&, const KernelCall&, const State&)> {
  using type = State;
};

template <auto kPrepare, auto kExecute, auto kScratch>
constexpr KernelDef define_kernel() {
  using State = typename KernelStateOf<decltype(kExecute)>::type;
  static_assert(std::is_same_v<decltype(kPrepare), Status (*)(const KernelCall&, State*)>,
                "prepare must be Status(const KernelCall&, State*) for the State its execute reads");
  constexpr bool kHasScratch = !std::is_same_v<decltype(kScratch), std::nullptr_t>;
  if constexpr (kHasScratch)
    static_assert(std::is_same_v<decltype(kScratch), size_t (*)(const State&)>, "scratch must be size_t(const State&)");
  return KernelDef(
      [](const KernelCall& call, PreparedKernel* prepared) -> Status {
        State* state = prepared->emplace_state<State>();
        ZERO_RETURN_IF_ERROR(kPrepare(call, state));
        if constexpr (kHasScratch) prepared->scratch_bytes = kScratch(*state);
        return Status();
      },
      [](const KernelContext& ctx, const KernelCall& call, const PreparedKernel& prepared) -> Status {
        return kExecute(ctx, call, prepared.state<State>());
      });
}

// The state of a kernel whose prepare only checks (its execute reads the
// operands' element counts).
struct NoState {};

// A prepare from a check that computes nothing.
template <Status (*kCheck)(const KernelCall&)>
Status check_only(const KernelCall& call, NoState*) {
  return kCheck(call);
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual plan::Backend kind() const = 0;
  // nullptr when the backend has no kernel for the opcode.
  virtual const KernelDef* kernel(plan::Opcode opcode) const = 0;
  // The resources its kernels execute with (KernelContext::device); nullptr
  // for a backend without any (the CPU).
  virtual const DeviceContext* device_context() const { return nullptr; }

  // The arena's memory as the executor sees it: host memory for the CPU
  // backend (the defaults), device memory for an accelerator backend. `host`
  // is always host memory; `dev` points into the arena (or the backend's
  // allocator). Copies are complete (visible to later kernels and to the
  // host) when they return.
  virtual Status copy_to_device(void* dev, const void* host, size_t bytes) const {
    if (bytes) std::memcpy(dev, host, bytes);
    return Status();
  }
  virtual Status copy_to_host(void* host, const void* dev, size_t bytes) const {
    if (bytes) std::memcpy(host, dev, bytes);
    return Status();
  }
  virtual Status zero_fill(void* dev, size_t bytes) const {
    if (bytes) std::memset(dev, 0, bytes);
    return Status();
  }
  // Bytes of the arena's memory free for a new arena, 0 when unknown; the
  // executor refuses a plan whose arena is larger. The default: host memory
  // the kernel reports available (MemAvailable).
  virtual uint64_t available_memory() const;
  // Called after the last instruction of a step: an asynchronous backend
  // waits for its work here and reports errors its kernels found in the data
  // (an index or label out of range).
  virtual Status finish_step() const { return Status(); }
};

// A backend whose kernels are a table indexed by opcode.
class TableBackend : public Backend {
 public:
  const KernelDef* kernel(plan::Opcode op) const override {
    auto i = size_t(op);
    return i < kTableSize && table_[i] ? &*table_[i] : nullptr;
  }

  // Filled by the backend's constructor, an op family at a time.
  void set(plan::Opcode op, const KernelDef& kernel) {
    assert(size_t(op) < kTableSize && "opcode beyond the kernel table");
    table_[size_t(op)] = kernel;
  }

 private:
  // Every opcode of the schema.
  static constexpr size_t kTableSize = size_t(plan::Opcode::MAX) + 1;
  std::optional<KernelDef> table_[kTableSize];
};

const Backend& cpu_backend();

// Caps the floats of one im2col chunk of the CPU Conv kernels (at least one
// image is always taken); for tests of the chunking. Returns the old cap.
int64_t set_cpu_conv_scratch_limit(int64_t floats);
// The same for the CUDA backend's Conv kernels (defined in zero_runtime_cuda).
int64_t set_cuda_conv_scratch_limit(int64_t floats);
// Whether the CUDA backend has a kernel for `op`; needs no GPU (defined in
// zero_runtime_cuda).
bool cuda_backend_implements(plan::Opcode op);

}  // namespace zero

#endif  // ZERO_RUNTIME_BACKEND_H
