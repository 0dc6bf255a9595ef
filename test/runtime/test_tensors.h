// Test tensors for the kernel tests: host buffers owning their data, views of
// them (or of device copies) as Tensors, and one-instruction kernel calls.
#ifndef ZERO_TEST_RUNTIME_TEST_TENSORS_H
#define ZERO_TEST_RUNTIME_TEST_TENSORS_H

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"

namespace zero {

using Shape = std::vector<int64_t>;

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// A host tensor owning its data: F32 in f, I64 in i.
struct Buf {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  // Uniform in [lo, hi).
  static Buf rand(const Shape& s, float lo = -1.f, float hi = 1.f, unsigned seed = 1) {
    Buf b{DType::F32, s, std::vector<float>(size_t(numel(s))), {}};
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    for (float& v : b.f) v = d(g);
    return b;
  }
  // Uniform integers in [lo, hi].
  static Buf rand_ints(const Shape& s, int64_t lo, int64_t hi, unsigned seed) {
    Buf b = ints(s);
    std::mt19937 g(seed);
    std::uniform_int_distribution<int64_t> d(lo, hi);
    for (int64_t& v : b.i) v = d(g);
    return b;
  }
  static Buf zeros(const Shape& s) { return Buf{DType::F32, s, std::vector<float>(size_t(numel(s))), {}}; }
  static Buf ints(const Shape& s) { return Buf{DType::I64, s, {}, std::vector<int64_t>(size_t(numel(s)))}; }
  static Buf ints(const Shape& s, std::vector<int64_t> v) { return Buf{DType::I64, s, {}, std::move(v)}; }

  size_t bytes() const { return size_t(numel(shape)) * dtype_size(dtype); }
  void* data() { return dtype == DType::F32 ? static_cast<void*>(f.data()) : static_cast<void*>(i.data()); }
  // This buffer's shape and dtype over `at` (a device copy), or over its own data.
  Tensor view(void* at) const {
    Tensor t;
    t.data = at;
    t.dtype = dtype;
    t.ndim = int(shape.size());
    for (size_t k = 0; k < shape.size(); ++k) t.dims[k] = shape[k];
    t.numel = numel(shape);
    return t;
  }
  Tensor view() { return view(data()); }
};

using AttrFn = std::function<std::pair<plan::Attrs, flatbuffers::Offset<void>>(flatbuffers::FlatBufferBuilder&)>;

// One instruction (opcode and attributes) in a buffer of its own.
class TestInstruction {
 public:
  explicit TestInstruction(plan::Opcode op, const AttrFn& attrs = nullptr) {
    std::pair<plan::Attrs, flatbuffers::Offset<void>> a{plan::Attrs::NONE, 0};
    if (attrs) a = attrs(fbb_);
    fbb_.Finish(plan::CreateInstruction(fbb_, op, 0, 0, a.first, a.second));
  }
  const plan::Instruction* get() const { return flatbuffers::GetRoot<plan::Instruction>(fbb_.GetBufferPointer()); }

 private:
  flatbuffers::FlatBufferBuilder fbb_;
};

// One instruction run as a session runs it: prepared (the load-time checks
// and geometry), then executed, as often as asked, with a kernel scratch of
// the size its prepare reported (from `scratch_alloc`: the backend's memory),
// kept until the run is destroyed (after the backend's finish_step).
class KernelRun {
 public:
  KernelRun(const Backend& backend, plan::Opcode op, Allocator* scratch_alloc = default_allocator())
      : backend_(backend), kernel_(backend.kernel(op)), alloc_(scratch_alloc) {}
  ~KernelRun() {
    if (scratch_) alloc_->deallocate(scratch_);
  }
  KernelRun(const KernelRun&) = delete;
  KernelRun& operator=(const KernelRun&) = delete;

  Status prepare(const KernelCall& call) {
    if (!kernel_) return Status::internal("no kernel");
    ZERO_RETURN_IF_ERROR(kernel_->prepare(call, &prepared_));
    if (prepared_.scratch_bytes) scratch_ = alloc_->allocate(prepared_.scratch_bytes, 64);
    if (prepared_.scratch_bytes && !scratch_) return Status::resource_exhausted("no memory for the kernel scratch");
    prepared_ok_ = true;
    return Status();
  }
  // After a successful prepare on the same call.
  Status execute(const KernelCall& call) {
    if (!prepared_ok_) return Status::internal("execute before a successful prepare");
    return kernel_->execute(KernelContext{scratch_, backend_.device_context()}, call, prepared_);
  }
  size_t scratch_bytes() const { return prepared_.scratch_bytes; }

 private:
  const Backend& backend_;
  const KernelDef* kernel_;
  Allocator* alloc_;
  PreparedKernel prepared_;
  void* scratch_ = nullptr;
  bool prepared_ok_ = false;
};

// Prepares the CPU kernel and, unless prepare_only, executes it once on the
// buffers; outputs may repeat inputs (aliasing).
inline Status cpu_call(bool prepare_only, plan::Opcode op, const std::vector<Buf*>& in, const std::vector<Buf*>& out,
                       const AttrFn& attrs) {
  const TestInstruction inst(op, attrs);
  std::vector<Tensor> ti, to;
  for (Buf* b : in) ti.push_back(b->view());
  for (Buf* b : out) to.push_back(b->view());
  const KernelCall kc{inst.get(), ti.data(), int(ti.size()), to.data(), int(to.size())};
  KernelRun run(cpu_backend(), op);
  ZERO_RETURN_IF_ERROR(run.prepare(kc));
  return prepare_only ? Status() : run.execute(kc);
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Expects `got` (an analytic gradient) to match, within tol, the central
// differences of loss() (double) with respect to each entry of v, which is
// perturbed by +-h and restored.
template <class F>
void expect_fd_gradient(const std::vector<float>& got, std::vector<double>& v, F loss, double h, double tol,
                        const char* what) {
  for (size_t k = 0; k < v.size(); ++k) {
    const double old = v[k];
    v[k] = old + h;
    const double up = loss();
    v[k] = old - h;
    const double down = loss();
    v[k] = old;
    EXPECT_NEAR(got[k], (up - down) / (2 * h), tol) << what << " " << k;
  }
}

inline void expect_error(const Status& st, const std::string& text) {
  ASSERT_FALSE(st.ok()) << "expected an error containing '" << text << "'";
  EXPECT_NE(st.message().find(text), std::string::npos) << st.message();
}

}  // namespace zero

#endif  // ZERO_TEST_RUNTIME_TEST_TENSORS_H
