// Communicators on device pointers: one rank (device copies on the compute
// stream) and NCCL (its own stream, ordered against the compute stream with
// events).
//
// Ordering: a collective's stream waits for an event recorded on the compute
// stream where the collective is issued (its inputs are complete). A
// synchronous collective is followed at once by the compute stream waiting
// for an event recorded after it; an asynchronous one records its own event
// and the compute stream waits for it only at the plan's Wait, so the kernels
// in between overlap the transfer. No wait blocks the host, so the plan's
// instruction stream stays asynchronous. The plan fixes the collective
// order, so every rank issues the same NCCL calls in the same order.
#include <cuda_runtime.h>
#ifdef ZERO_HAVE_NCCL
#include <nccl.h>
#endif

#include <cstring>
#include <string>
#include <vector>

#include "zero/cuda.h"

namespace zero {
namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status();
  return Status::unavailable(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

class CudaSingleRankCommunicator final : public Communicator {
 public:
  explicit CudaSingleRankCommunicator(CudaDevice* dev) : stream_(static_cast<cudaStream_t>(dev->stream())) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Status all_reduce(const float* in, float* out, size_t count, Reduction) override { return copy(in, out, count); }
  Status reduce_scatter(const float* in, float* out, size_t count, Reduction) override { return copy(in, out, count); }
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
  return Status::unavailable(std::string(what) + " failed: " + ncclGetErrorString(r));
}

class NcclCommunicator final : public AsyncCommunicator {
 public:
  NcclCommunicator(CudaDevice* dev, int rank, int size)
      : compute_(static_cast<cudaStream_t>(dev->stream())), rank_(rank), size_(size) {}
  ~NcclCommunicator() override {
    if (in_group_) ncclGroupEnd();
    if (comm_) {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    if (ready_) cudaEventDestroy(ready_);
    for (cudaEvent_t e : done_)
      if (e) cudaEventDestroy(e);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status init(const ncclUniqueId& id) {
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
    ZERO_RETURN_IF_ERROR(reserve_slots(0));  // done_[0]: the synchronous forms
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate"));
    return nccl_status(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // One event per slot, recorded on the NCCL stream after the slot's
  // collective; slot 0 serves the synchronous forms.
  Status reserve_slots(int slots) override {
    while (int(done_.size()) <= slots) {
      cudaEvent_t e = nullptr;
      ZERO_RETURN_IF_ERROR(cuda_status(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate"));
      done_.push_back(e);
    }
    return Status();
  }
  Status start(const Collective& c, int slot) override {
    if (slot < 0 || size_t(slot) >= done_.size())
      return Status::internal("collective slot " + std::to_string(slot) + " was not reserved");
    if (slot == 0 && in_group_) return Status::internal("a synchronous collective inside an NCCL group");
    ZERO_RETURN_IF_ERROR(issue(c));
    // Inside a group NCCL launches at ncclGroupEnd; record the event there.
    if (in_group_) {
      group_slots_.push_back(slot);
      return Status();
    }
    return cuda_status(cudaEventRecord(done_[size_t(slot)], stream_), "cudaEventRecord");
  }
  Status wait(int slot) override {
    if (slot < 0 || size_t(slot) >= done_.size())
      return Status::internal("collective slot " + std::to_string(slot) + " was not reserved");
    return cuda_status(cudaStreamWaitEvent(compute_, done_[size_t(slot)], 0), "cudaStreamWaitEvent");
  }
  Status group_begin() override {
    if (in_group_) return Status::internal("NCCL group already open");
    // One ordering point for the whole group: its inputs are complete here.
    ZERO_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ready_, compute_), "cudaEventRecord"));
    ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent"));
    ZERO_RETURN_IF_ERROR(nccl_status(ncclGroupStart(), "ncclGroupStart"));
    in_group_ = true;
    return Status();
  }
  Status group_end() override {
    if (!in_group_) return Status::internal("no NCCL group open");
    in_group_ = false;
    ZERO_RETURN_IF_ERROR(nccl_status(ncclGroupEnd(), "ncclGroupEnd"));
    for (int slot : group_slots_)
      ZERO_RETURN_IF_ERROR(cuda_status(cudaEventRecord(done_[size_t(slot)], stream_), "cudaEventRecord"));
    group_slots_.clear();
    return Status();
  }

 private:
  static ncclRedOp_t nccl_op(Reduction op) { return op == Reduction::Mean ? ncclAvg : ncclSum; }

  // Enqueues c on the NCCL stream after the compute stream's work so far.
  // NCCL's in-place forms are exactly the Communicator contract:
  // all_reduce in == out, reduce_scatter out == in + rank * count,
  // all_gather in == out + rank * count.
  Status issue(const Collective& c) {
    if (!in_group_) {
      ZERO_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ready_, compute_), "cudaEventRecord"));
      ZERO_RETURN_IF_ERROR(cuda_status(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent"));
    }
    switch (c.kind) {
      case Kind::AllReduce:
        return nccl_status(ncclAllReduce(c.in, c.out, c.count, ncclFloat32, nccl_op(c.op), comm_, stream_),
                           "ncclAllReduce");
      case Kind::ReduceScatter:
        return nccl_status(ncclReduceScatter(c.in, c.out, c.count, ncclFloat32, nccl_op(c.op), comm_, stream_),
                           "ncclReduceScatter");
      case Kind::AllGather:
        return nccl_status(ncclAllGather(c.in, c.out, c.count, ncclFloat32, comm_, stream_), "ncclAllGather");
    }
    return Status::internal("unknown collective kind");
  }

  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  std::vector<cudaEvent_t> done_;
  std::vector<int> group_slots_;
  bool in_group_ = false;
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
    return Status::failed_precondition(
        "zero_runtime_cuda was built without NCCL; only one rank per CUDA job is supported");
  *out = make_cuda_single_rank_communicator(dev);
  return Status();
}
#endif

}  // namespace zero
