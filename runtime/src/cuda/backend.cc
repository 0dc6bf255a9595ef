// The CUDA backend: the device (one compute stream, cuBLAS, the device error
// word: the DeviceContext its kernels execute with) and the kernel table,
// filled an op family at a time (cuda/<family>.cc on the host: prepares with
// the operand checks shared with the CPU through kernel_checks.h, and the
// launches; cuda/<family>.cu on the device). All work goes to one compute
// stream; nothing synchronizes inside a step except finish_step().
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "cuda/backend_internal.h"

namespace zero {
namespace cuda_backend {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status();
  return Status::unavailable(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

Status blas_status(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status();
  return Status::unavailable(std::string(what) + ": cuBLAS error " + std::to_string(int(s)));
}

Status launched(const KernelCall& call, cudaError_t e) {
  if (e == cudaSuccess) return Status();
  return fail(call, std::string("CUDA launch failed: ") + cudaGetErrorString(e));
}

Strided shape_of(const Tensor& t) {
  Strided g;
  g.ndim = t.ndim;
  for (int i = 0; i < t.ndim; ++i) g.dims[i] = t.dims[i];
  return g;
}

int elem_size(const Tensor& t) { return t.dtype == DType::I64 ? 8 : 4; }

Status check_grid(const KernelCall& call, int64_t blocks) {
  if (blocks > INT_MAX) return fail(call, "too many rows for one CUDA grid");
  return Status();
}

}  // namespace cuda_backend

namespace {

using namespace cuda_backend;

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    if (alignment > 256) return nullptr;  // cudaMalloc guarantees 256
    void* p = nullptr;
    return cudaMalloc(&p, bytes ? bytes : 1) == cudaSuccess ? p : nullptr;
  }
  void deallocate(void* ptr) override { cudaFree(ptr); }
};

class CudaBackend final : public TableBackend {
 public:
  explicit CudaBackend(CudaDevice::State* d) : d_(d) {
    add_cuda_elementwise_kernels(*this);
    add_cuda_gemm_kernels(*this);
    add_cuda_softmax_loss_kernels(*this);
    add_cuda_layout_kernels(*this);
    add_cuda_normalization_kernels(*this);
    add_cuda_conv_pool_kernels(*this);
    add_cuda_optimizers_kernels(*this);
  }

  plan::Backend kind() const override { return plan::Backend::Cuda; }
  // nullptr for the table-only instance of cuda_backend_implements.
  const DeviceContext* device_context() const override { return d_ ? &d_->context : nullptr; }

  Status copy_to_device(void* dev, const void* host, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, d_->context.stream),
                                     "cudaMemcpy (host to device)"));
    // The host buffer may be reused as soon as we return.
    return cuda_status(cudaStreamSynchronize(d_->context.stream), "cudaMemcpy (host to device)");
  }
  Status copy_to_host(void* host, const void* dev, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, d_->context.stream),
                                     "cudaMemcpy (device to host)"));
    return cuda_status(cudaStreamSynchronize(d_->context.stream), "cudaMemcpy (device to host)");
  }
  Status zero_fill(void* dev, size_t bytes) const override {
    if (!bytes) return Status();
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemsetAsync(dev, 0, bytes, d_->context.stream), "cudaMemset"));
    return cuda_status(cudaStreamSynchronize(d_->context.stream), "cudaMemset");
  }
  uint64_t available_memory() const override {
    size_t free = 0, total = 0;
    return cudaMemGetInfo(&free, &total) == cudaSuccess ? uint64_t(free) : 0;
  }
  Status finish_step() const override {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d_->context.stream), "CUDA step"));
    int code = 0;
    ZERO_RETURN_IF_ERROR(
        cuda_status(cudaMemcpyAsync(&code, d_->context.err, sizeof(int), cudaMemcpyDeviceToHost, d_->context.stream),
                    "reading the CUDA error word"));
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(d_->context.stream), "reading the CUDA error word"));
    if (code == 0) return Status();
    // Cleared on the compute stream, ahead of the next step's kernels: a plain
    // cudaMemset runs on the legacy stream, which the non-blocking compute
    // stream does not wait for, so it could wipe the next step's report.
    ZERO_RETURN_IF_ERROR(cuda_status(cudaMemsetAsync(d_->context.err, 0, sizeof(int), d_->context.stream),
                                     "clearing the CUDA error word"));
    const char* op = plan::EnumNameOpcode(plan::Opcode(code % 1024));
    const int kind = code / 1024;
    const char* what = kind == cuda::kErrIndex   ? "an index out of range"
                       : kind == cuda::kErrLabel ? "a label out of range [0, classes)"
                       : kind == cuda::kErrStep  ? "step < 1 (missing IncrementStep?)"
                       : kind == cuda::kErrTopK  ? "a K input that differs from its outputs' size along the axis"
                                                 : "an error";
    return Status::out_of_range(std::string("CUDA kernel ") + (op && *op ? op : "?") + " found " + what +
                                " (reported by the device after the step)");
  }

 private:
  CudaDevice::State* d_;
};

}  // namespace

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

CudaDevice::CudaDevice(std::unique_ptr<State> s) : s_(std::move(s)) {}

CudaDevice::~CudaDevice() {
  if (!s_) return;
  cudaSetDevice(s_->device);
  const DeviceContext& c = s_->context;
  if (c.stream) cudaStreamSynchronize(c.stream);
  if (c.err) cudaFree(c.err);
  if (c.blas) cublasDestroy(c.blas);
  if (c.stream) cudaStreamDestroy(c.stream);
}

bool cuda_backend_implements(plan::Opcode op) {
  static const CudaBackend table(nullptr);  // no kernel runs, so no device is needed
  return table.kernel(op) != nullptr;
}

Status CudaDevice::create(const CudaOptions& options, std::unique_ptr<CudaDevice>* out) {
  std::string why;
  const int count = cuda_device_count(&why);
  if (count == 0) return Status::unavailable("no GPU is available (" + why + ")");
  if (options.device < 0 || options.device >= count)
    return Status::not_found("GPU " + std::to_string(options.device) + " does not exist (" + std::to_string(count) +
                             " visible)");
  auto s = std::make_unique<State>();
  s->device = options.device;
  std::unique_ptr<CudaDevice> dev(new CudaDevice(std::move(s)));
  State& d = *dev->s_;
  DeviceContext& c = d.context;
  ZERO_RETURN_IF_ERROR(cuda_status(cudaSetDevice(d.device), "cudaSetDevice"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  ZERO_RETURN_IF_ERROR(blas_status(cublasCreate(&c.blas), "cublasCreate"));
  ZERO_RETURN_IF_ERROR(blas_status(cublasSetStream(c.blas, c.stream), "cublasSetStream"));
  ZERO_RETURN_IF_ERROR(
      blas_status(cublasSetMathMode(c.blas, options.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                  "cublasSetMathMode"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMalloc(&c.err, sizeof(int)), "cudaMalloc"));
  // On the compute stream (see finish_step), complete before any kernel.
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMemsetAsync(c.err, 0, sizeof(int), c.stream), "cudaMemset"));
  ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(c.stream), "cudaMemset"));
  d.alloc = std::make_unique<CudaAllocator>();
  d.backend = std::make_unique<CudaBackend>(&d);
  *out = std::move(dev);
  return Status();
}

const Backend* CudaDevice::backend() const { return s_->backend.get(); }
Allocator* CudaDevice::allocator() { return s_->alloc.get(); }
int CudaDevice::device() const { return s_->device; }
void* CudaDevice::stream() const { return s_->context.stream; }
Status CudaDevice::synchronize() {
  return cuda_status(cudaStreamSynchronize(s_->context.stream), "cudaStreamSynchronize");
}
Status CudaDevice::memory_in_use(size_t* bytes) const {
  size_t free = 0, total = 0;
  ZERO_RETURN_IF_ERROR(cuda_status(cudaMemGetInfo(&free, &total), "cudaMemGetInfo"));
  *bytes = total - free;
  return Status();
}

}  // namespace zero
