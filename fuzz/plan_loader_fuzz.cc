// Fuzzes plan loading: Session::open_buffer on arbitrary bytes must either
// fail with a Status or return a session whose plan is fully validated. A
// plan that loads and is small runs one step on its zero-filled arena (zero
// inputs and labels are in range for every kernel) and reads back its
// loss, outputs and parameters, so the load-time checks are tested against
// what the kernels actually touch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "zero/plan_generated.h"
#include "zero/runtime.h"

namespace {

// Refuses any single allocation above the cap, so a mutated plan that claims
// a huge arena fails to open instead of exhausting memory.
class CappedAllocator final : public zero::Allocator {
 public:
  static constexpr size_t kCap = size_t(64) << 20;
  void* allocate(size_t bytes, size_t alignment) override {
    if (bytes > kCap) return nullptr;
    return zero::default_allocator()->allocate(bytes, alignment);
  }
  void deallocate(void* ptr) override { zero::default_allocator()->deallocate(ptr); }
};

// Steps only plans this small, so each input stays fast: a kernel's work is
// bounded by its operands, which all lie in the arena.
constexpr size_t kMaxStepArena = size_t(256) << 10;
constexpr size_t kMaxStepInstructions = 512;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static CappedAllocator alloc;
  static std::unique_ptr<zero::Communicator> comm = zero::make_single_rank_communicator();
  std::unique_ptr<zero::Session> session;
  zero::Status st = zero::Session::open_buffer(data, size, comm.get(), &alloc, &session);
  if (!st.ok()) {
    if (session) std::abort();  // a failed open returns no session
    return 0;
  }
  if (!session) std::abort();

  // Validated by open_buffer, so safe to inspect (from an aligned copy: the
  // FlatBuffers accessors load scalars in place).
  const std::vector<uint8_t> aligned(data, data + size);
  const auto* plan = zero::plan::GetPlan(aligned.data());
  const size_t instructions = plan->instructions() ? plan->instructions()->size() : 0;
  if (session->arena_bytes() > kMaxStepArena || instructions > kMaxStepInstructions) return 0;
  std::vector<float> values;
  if (session->weights_omitted())  // zero-opt --omit-weights: the launcher writes them
    for (const zero::TensorInfo& p : session->parameters()) {
      size_t numel = 1;
      for (int64_t d : p.shape) numel *= size_t(d);
      values.assign(numel, 0.0f);
      (void)session->write_parameter(p.name, values.data(), values.size());
    }
  if (!session->step().ok()) return 0;
  float loss;
  (void)session->loss(&loss);
  std::vector<uint8_t> bytes;
  for (const zero::TensorInfo& o : session->outputs()) {
    (void)session->read_output(o.name, &values);
    (void)session->read_output_bytes(o.name, &bytes);
  }
  for (const zero::TensorInfo& p : session->parameters()) {
    if (!session->read_parameter(p.name, &values).ok()) continue;
    (void)session->write_parameter(p.name, values.data(), values.size());
  }
  return 0;
}
