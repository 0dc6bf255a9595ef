// Communicators on device pointers: one rank (device copies on the compute
// stream) and NCCL (its own stream, ordered against the compute stream with
// events).
//
// Ordering: before a collective, an event recorded on the compute stream is
// waited on by the NCCL stream (the inputs are complete); after it, an event
// recorded on the NCCL stream is waited on by the compute stream (consumers
// see the result). Neither wait blocks the host, so the plan's instruction
// stream stays asynchronous. The plan fixes the collective order, so every
// rank issues the same NCCL calls in the same order.
//
// Overlap opportunities (not taken yet): a collective's wait on the compute
// stream is only needed by the first instruction that reads its output, so a
// start/wait split in the plan (docs/architecture.md) would let stage-2/3
// reduce-scatters of earlier gradients run under later backward kernels, and
// stage-3 all-gathers be prefetched one layer ahead.
#include <cuda_runtime.h>
#ifdef ZERO_HAVE_NCCL
#include <nccl.h>
#endif

#include <cstring>
#include <vector>

#include "zero/cuda.h"

namespace zero {
namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status();
  return Status::error(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

class CudaSingleRankCommunicator final : public Communicator {
 public:
  explicit CudaSingleRankCommunicator(CudaDevice* dev) : stream_(static_cast<cudaStream_t>(dev->stream())) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status all_reduce(const float* in, float* out, size_t count, Reduction) override { return copy(in, out, count); }
  Status reduce_scatter(const float* in, float* out, size_t count, Reduction) override {
    return copy(in, out, count);
  }
  Status all_gather(const float* in, float* out, size_t count) override { return copy(in, out, count); }

 private:
  Status copy(const float* in, float* out, size_t count) {
    if (in == out || count == 0) return Status();
    return cuda_status(cudaMemcpyAsync(out, in, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_),
                       "cudaMemcpyAsync (collective)");
  }
  cudaStream_t stream_;
};

#ifdef ZERO_HAVE_NCCL
Status nccl_status(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return Status();
  return Status::error(std::string(what) + " failed: " + ncclGetErrorString(r));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CudaDevice* dev, int rank, int size)
      : compute_(static_cast<cudaStream_t>(dev->stream())), rank_(rank), size_(size) {}
  ~NcclCommunicator() override {
    if (comm_) {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    if (before_) cudaEventDestroy(before_);
    if (after_) cudaEventDestroy(after_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status init(const ncclUniqueId& id) {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&before_, cudaEventDisableTiming), "cudaEventCreate"));
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&after_, cudaEventDisableTiming), "cudaEventCreate"));
    return nccl_status(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // NCCL's in-place forms are exactly the Communicator contract:
  // all_reduce in == out, reduce_scatter out == in + rank * count,
  // all_gather in == out + rank * count.
  Status all_reduce(const float* in, float* out, size_t count, Reduction op) override {
    ZERO_RETURN_IF_ERROR(begin());
    ZERO_RETURN_IF_ERROR(nccl_status(ncclAllReduce(in, out, count, ncclFloat32, nccl_op(op), comm_, stream_),
                                     "ncclAllReduce"));
    return end();
  }
  Status reduce_scatter(const float* in, float* out, size_t count, Reduction op) override {
    ZERO_RETURN_IF_ERROR(begin());
    ZERO_RETURN_IF_ERROR(nccl_status(ncclReduceScatter(in, out, count, ncclFloat32, nccl_op(op), comm_, stream_),
                                     "ncclReduceScatter"));
    return end();
  }
  Status all_gather(const float* in, float* out, size_t count) override {
    ZERO_RETURN_IF_ERROR(begin());
    ZERO_RETURN_IF_ERROR(nccl_status(ncclAllGather(in, out, count, ncclFloat32, comm_, stream_), "ncclAllGather"));
    return end();
  }

 private:
  static ncclRedOp_t nccl_op(Reduction op) { return op == Reduction::Mean ? ncclAvg : ncclSum; }
  // The collective's inputs are ready once the compute stream reaches here.
  Status begin() {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventRecord(before_, compute_), "cudaEventRecord"));
    return cuda_status(cudaStreamWaitEvent(stream_, before_, 0), "cudaStreamWaitEvent");
  }
  // Later compute work waits for the collective's result.
  Status end() {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventRecord(after_, stream_), "cudaEventRecord"));
    return cuda_status(cudaStreamWaitEvent(compute_, after_, 0), "cudaStreamWaitEvent");
  }

  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t before_ = nullptr, after_ = nullptr;
  ncclComm_t comm_ = nullptr;
  int rank_, size_;
};
#endif

}  // namespace

std::unique_ptr<Communicator> make_cuda_single_rank_communicator(CudaDevice* dev) {
  return std::make_unique<CudaSingleRankCommunicator>(dev);
}

#ifdef ZERO_HAVE_NCCL
bool nccl_available() { return true; }

Status make_nccl_communicator(CudaDevice* dev, Communicator* bootstrap, std::unique_ptr<Communicator>* out) {
  const int rank = bootstrap ? bootstrap->rank() : 0, size = bootstrap ? bootstrap->size() : 1;
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  Status st;
  if (rank == 0) st = nccl_status(ncclGetUniqueId(&id), "ncclGetUniqueId");
  if (size > 1) {
    // Broadcast rank 0's id with one host all_gather of raw bytes carried in
    // floats (MPI_FLOAT on one machine type copies bits unchanged). Every rank
    // takes part even if rank 0 failed, so nobody hangs; the id is then zero.
    constexpr size_t kWords = (sizeof(ncclUniqueId) + sizeof(float) - 1) / sizeof(float);
    std::vector<float> mine(kWords, 0.f), all(kWords * size_t(size));
    std::memcpy(mine.data(), &id, sizeof(id));
    ZERO_RETURN_IF_ERROR(bootstrap->all_gather(mine.data(), all.data(), kWords));
    std::memcpy(&id, all.data(), sizeof(id));
  }
  ZERO_RETURN_IF_ERROR(st);
  ZERO_RETURN_IF_ERROR(cuda_status(cudaSetDevice(dev->device()), "cudaSetDevice"));
  auto comm = std::make_unique<NcclCommunicator>(dev, rank, size);
  ZERO_RETURN_IF_ERROR(comm->init(id));
  *out = std::move(comm);
  return Status();
}
#else
bool nccl_available() { return false; }

Status make_nccl_communicator(CudaDevice* dev, Communicator* bootstrap, std::unique_ptr<Communicator>* out) {
  if (bootstrap && bootstrap->size() > 1)
    return Status::error("zero_runtime_cuda was built without NCCL; only one rank per CUDA job is supported");
  *out = make_cuda_single_rank_communicator(dev);
  return Status();
}
#endif

}  // namespace zero
