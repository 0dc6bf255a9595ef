// Public API of the zero runtime: load a compiled plan, bind micro-batch
// inputs, run training steps, read the loss and the trained parameters.
//
// The runtime is SPMD: every rank opens the same plan with its own
// Communicator and calls the same functions in the same order. Calls marked
// "collective" must be made by every rank.
#ifndef ZERO_RUNTIME_H
#define ZERO_RUNTIME_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zero/status.h"

namespace zero {

// A kernel backend (runtime/src/backend.h); the CPU backend unless a session
// is opened with another, e.g. CudaDevice::backend() (zero/cuda.h).
class Backend;

enum class DType : uint8_t { F32 = 0, I64 = 1 };  // values match plan.fbs
enum class Reduction : uint8_t { Sum = 0, Mean = 1 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// "[2, 3]"
std::string shape_string(const std::vector<int64_t>& shape);

// "512 bytes", or "1.50 GiB (1610612736 bytes)" from 1 MiB on.
std::string byte_size_string(uint64_t bytes);

// Host memory the kernel reports available for new allocations
// (MemAvailable), 0 when unknown.
uint64_t host_memory_available();

// Where the arena comes from; injected so GPU backends and tests can supply
// their own memory.
class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns nullptr on failure. alignment is a power of two.
  virtual void* allocate(size_t bytes, size_t alignment) = 0;
  virtual void deallocate(void* ptr) = 0;
};

// Host memory via aligned_alloc; process-wide, never destroyed.
Allocator* default_allocator();

// Collectives over the world. F32 only (gradients and parameters). Buffers are
// on the backend's device. In-place forms are part of the contract:
//  all_reduce:     in == out.
//  reduce_scatter: out == in + rank() * count.
//  all_gather:     in == out + rank() * count.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // out[i] = reduce over ranks of in[i], i < count.
  virtual Status all_reduce(const float* in, float* out, size_t count, Reduction op) = 0;
  // in holds size() * count elements; out gets chunk rank() of the reduction.
  virtual Status reduce_scatter(const float* in, float* out, size_t count, Reduction op) = 0;
  // in holds count elements; out gets size() * count, chunk r from rank r.
  virtual Status all_gather(const float* in, float* out, size_t count) = 0;

  // Asynchronous collectives, for overlap with compute. start() issues one
  // and returns; it completes at wait(slot), and until then neither of its
  // buffers may be touched. A slot (1 <= slot <= the count given to
  // reserve_slots) holds one collective at a time. Collectives started
  // between group_begin() and group_end() may be launched as one (an NCCL
  // group). Every rank starts the same collectives in the same order. The
  // defaults run each collective synchronously in start().
  enum class Kind : uint8_t { AllReduce, ReduceScatter, AllGather };
  struct Collective {
    Kind kind;
    const float* in;
    float* out;
    size_t count;  // the argument of the synchronous form
    Reduction op = Reduction::Sum;
  };
  virtual Status reserve_slots(int /*slots*/) { return Status(); }
  virtual Status start(const Collective& c, int /*slot*/) { return run(c); }
  virtual Status wait(int /*slot*/) { return Status(); }
  virtual Status group_begin() { return Status(); }
  virtual Status group_end() { return Status(); }

  // The synchronous form of c.
  Status run(const Collective& c) {
    switch (c.kind) {
      case Kind::AllReduce: return all_reduce(c.in, c.out, c.count, c.op);
      case Kind::ReduceScatter: return reduce_scatter(c.in, c.out, c.count, c.op);
      case Kind::AllGather: return all_gather(c.in, c.out, c.count);
    }
    return Status::internal("unknown collective kind");
  }
};

// A communicator built on its asynchronous forms: the synchronous ones start
// in slot 0, which such an implementation keeps for them, and wait at once.
class AsyncCommunicator : public Communicator {
 public:
  Status all_reduce(const float* in, float* out, size_t count, Reduction op) override {
    return complete({Kind::AllReduce, in, out, count, op});
  }
  Status reduce_scatter(const float* in, float* out, size_t count, Reduction op) override {
    return complete({Kind::ReduceScatter, in, out, count, op});
  }
  Status all_gather(const float* in, float* out, size_t count) override {
    return complete({Kind::AllGather, in, out, count});
  }

 private:
  Status complete(const Collective& c) {
    ZERO_RETURN_IF_ERROR(start(c, 0));
    return wait(0);
  }
};

// One rank, no MPI: the collectives are copies.
std::unique_ptr<Communicator> make_single_rank_communicator();

// This process's index among the ranks on its node, from the launcher's
// environment (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID or
// LOCAL_RANK), else -1. Picks the GPU of a rank.
int local_rank_from_env();

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  // Inputs of a plan with gradient accumulation: the micro-step (from 0) of
  // the optimizer step whose rows this copy of the input takes.
  uint32_t micro_step = 0;
};

// One tensor of a run's training state, what a checkpoint holds: a
// parameter, its optimizer state, model state or the step counter, and how
// this rank stores it.
struct StateTensor {
  enum class Kind : uint8_t { Parameter, OptimizerState, ModelState, StepCounter };
  std::string name;  // "fc1.weight", "fc1.weight/exp_avg", "step"
  Kind kind;
  DType dtype;
  std::vector<int64_t> shape;  // the whole tensor's
  // This rank holds elements [rank * shard_numel, (rank + 1) * shard_numel)
  // of the flattened tensor zero-padded to world_size * shard_numel;
  // otherwise all of it (model state: this rank's own copy).
  bool sharded = false;
  uint64_t shard_numel = 0;
  uint64_t numel() const;
};
const char* state_kind_name(StateTensor::Kind kind);  // "parameter", "optimizer_state", ...

// What a launcher needs to know of a plan before it starts ranks: read after
// the FlatBuffers verifier, without the full load-time validation (which
// Session::open does on every rank).
struct PlanSummary {
  bool cuda = false;  // from `zero-opt --target=cuda`
  uint32_t world_size = 0;
  uint64_t arena_bytes = 0;
  bool weights_omitted = false;
  std::vector<TensorInfo> inputs;      // as Session::inputs()
  std::vector<TensorInfo> parameters;  // as Session::parameters()
  std::vector<TensorInfo> outputs;     // as Session::outputs()
  std::vector<bool> trainable;         // per parameter
  bool has_evaluation = false;
  std::vector<TensorInfo> eval_inputs;  // as Session::eval_inputs()
};
Status describe_plan(const std::string& path, PlanSummary* summary);


class Session {
 public:
  // Maps the plan file, verifies it (FlatBuffers verifier, identifier, format
  // version, backend, world size == comm->size(), every index and arena
  // range, every instruction's operands against its kernel), allocates the
  // arena and the kernel scratch and copies the initializers. comm and alloc
  // must outlive the session.
  static Status open(const std::string& path, Communicator* comm, Allocator* alloc,
                     std::unique_ptr<Session>* session);
  // Same, from plan bytes in memory (copied).
  static Status open_buffer(const void* data, size_t size, Communicator* comm,
                            Allocator* alloc, std::unique_ptr<Session>* session);
  // Both on a given backend (nullptr: the CPU backend). `alloc` must then
  // allocate that backend's memory (the arena), and `comm` must take its
  // pointers; the plan's backend must be the backend's kind. backend must
  // outlive the session.
  static Status open(const std::string& path, Communicator* comm, Allocator* alloc, const Backend* backend,
                     std::unique_ptr<Session>* session);
  static Status open_buffer(const void* data, size_t size, Communicator* comm, Allocator* alloc,
                            const Backend* backend, std::unique_ptr<Session>* session);
  ~Session();

  // The per-rank micro-batch inputs (dimension 0 is the batch).
  const std::vector<TensorInfo>& inputs() const;
  // Trainable parameters with their full (unsharded) shapes; F32.
  const std::vector<TensorInfo>& parameters() const;
  // Named results of a forward-only plan (Plan.outputs); empty for a
  // training plan. A forward-only plan has no loss.
  const std::vector<TensorInfo>& outputs() const;
  bool forward_only() const;

  // Copies one input's micro-batch into the arena; dtype and shape must match.
  // With gradient accumulation an input has one copy per micro-step.
  Status bind_input(const std::string& name, const void* data, DType dtype,
                    const std::vector<int64_t>& shape);
  Status bind_input(const std::string& name, uint32_t micro_step, const void* data, DType dtype,
                    const std::vector<int64_t>& shape);
  // Forward and backward passes per optimizer step (gradient accumulation):
  // 1 + the largest input micro_step.
  uint32_t micro_steps() const;
  // The seed of the run's random numbers (Dropout's masks, which the step,
  // the rank and each Dropout's stream also key); 0 until set. Every rank
  // sets the same one.
  void set_seed(uint64_t seed);
  // Runs the plan's instructions once. Collective.
  Status step();
  // The plan's loss value (global mean after a step). An error for a
  // forward-only plan.
  Status loss(float* value) const;

  // The plan's evaluation program (zero-opt --eval): the model's loss in
  // evaluation mode on a batch of its own inputs, over the current
  // parameters, changing nothing a step reads.
  bool has_evaluation() const;
  // Its per-rank micro-batch inputs, shaped as inputs() with micro-step 0.
  const std::vector<TensorInfo>& eval_inputs() const;
  Status bind_eval_input(const std::string& name, const void* data, DType dtype,
                         const std::vector<int64_t>& shape);
  // Runs the evaluation program once and sets *loss to the global mean loss
  // of the bound batch (the mean over ranks). Collective.
  Status evaluate(float* loss);
  // The scalars a training step reports (Plan.metrics: a schedule's "lr",
  // clipping's "grad_norm"), in plan order; empty for most plans.
  const std::vector<std::string>& metric_names() const;
  // Their values after a step, in metric_names() order (the same on every
  // rank).
  Status read_metrics(std::vector<float>* values) const;
  // This rank's value of an F32 output after a step (row-major).
  Status read_output(const std::string& name, std::vector<float>* values) const;
  // This rank's value of an output of any dtype as raw little-endian bytes
  // (numel * dtype_size(outputs()[i].dtype)).
  Status read_output_bytes(const std::string& name, std::vector<uint8_t>* bytes) const;
  // The full parameter, gathering the shards if it is sharded. Collective.
  Status read_parameter(const std::string& name, std::vector<float>* values);
  // Sets a parameter from its full value (`count` elements, row-major); a
  // sharded parameter keeps this rank's chunk. Every rank passes the same
  // values; not collective.
  Status write_parameter(const std::string& name, const float* values, size_t count);
  // The plan carries no trainable initial values (zero-opt --omit-weights):
  // write_parameter must set each trainable parameter before the first step.
  bool weights_omitted() const;
  // False for model state (BatchNorm running statistics) and unknown names.
  bool is_trainable(const std::string& name) const;

  // The training state (parameters, then each one's optimizer state, model
  // state, the step counter), in plan order.
  const std::vector<StateTensor>& state() const;
  // This rank's stored elements of state()[index] (shard_numel of them when
  // sharded, else all), as raw little-endian bytes.
  Status read_state(size_t index, std::vector<uint8_t>* bytes) const;
  // Sets them; `bytes` must be what read_state returns. Not collective.
  Status write_state(size_t index, const void* data, size_t bytes);
  // The training step's hyper-parameters as text: each kind of optimizer
  // update, schedule and clipping with its attributes, and the micro-steps;
  // two plans train alike when theirs are equal.
  std::string training_config() const;

  size_t arena_bytes() const;
  // The kernels' scratch beyond the arena, allocated once at load (the
  // largest any instruction needs; zero-opt --report's kernel_scratch_bytes).
  // peak_bytes of the report is arena_bytes() + kernel_scratch_bytes().
  size_t kernel_scratch_bytes() const;
  int world_size() const;
  int zero_stage() const;
  // The source ONNX model without trainable initializers (may be empty).
  const uint8_t* onnx_model(size_t* size) const;

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zero

#endif  // ZERO_RUNTIME_H
