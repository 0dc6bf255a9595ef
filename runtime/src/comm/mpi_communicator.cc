// Collectives over MPI_COMM_WORLD (OpenMPI). Counts larger than an int are
// rejected rather than silently truncated.
#include <mpi.h>

#include <climits>
#include <cstring>
#include <vector>

#include "zero/mpi_communicator.h"

namespace zero {
namespace {

Status mpi_status(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return Status();
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return Status::error(std::string(what) + " failed: " + std::string(msg, size_t(len)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status all_reduce(const float* in, float* out, size_t count, Reduction op) override {
    if (count > size_t(INT_MAX)) return Status::error("AllReduce of more than INT_MAX elements");
    const void* send = in == out ? MPI_IN_PLACE : in;
    ZERO_RETURN_IF_ERROR(
        mpi_status(MPI_Allreduce(send, out, int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce"));
    scale(out, count, op);
    return Status();
  }

  Status reduce_scatter(const float* in, float* out, size_t count, Reduction op) override {
    if (count > size_t(INT_MAX)) return Status::error("ReduceScatter of more than INT_MAX elements per rank");
    // MPI's in-place reduce-scatter leaves the result at the start of the
    // buffer, not at chunk rank(); when out overlaps in, reduce into scratch.
    const bool overlaps = out < in + count * size_t(size_) && in < out + count;
    float* dst = out;
    if (overlaps) {
      scratch_.resize(count);
      dst = scratch_.data();
    }
    ZERO_RETURN_IF_ERROR(mpi_status(
        MPI_Reduce_scatter_block(in, dst, int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Reduce_scatter_block"));
    if (overlaps) std::memcpy(out, dst, count * sizeof(float));
    scale(out, count, op);
    return Status();
  }

  Status all_gather(const float* in, float* out, size_t count) override {
    if (count > size_t(INT_MAX)) return Status::error("AllGather of more than INT_MAX elements per rank");
    // In place means this rank's contribution already sits at chunk rank().
    const void* send = in == out + count * size_t(rank_) ? MPI_IN_PLACE : in;
    return mpi_status(MPI_Allgather(send, int(count), MPI_FLOAT, out, int(count), MPI_FLOAT, MPI_COMM_WORLD),
                      "MPI_Allgather");
  }

 private:
  void scale(float* out, size_t count, Reduction op) const {
    if (op != Reduction::Mean) return;
    const float inv = 1.f / float(size_);
    for (size_t i = 0; i < count; ++i) out[i] *= inv;
  }

  int rank_ = 0, size_ = 1;
  std::vector<float> scratch_;
};

}  // namespace

Status make_mpi_communicator(int* argc, char*** argv, std::unique_ptr<Communicator>* comm) {
  // The launcher's watchdog thread may call MPI_Abort while the main thread
  // sits in a collective, hence MPI_THREAD_MULTIPLE when available.
  int provided = 0;
  ZERO_RETURN_IF_ERROR(mpi_status(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread"));
  // Errors come back as codes, so a failed collective is a Status.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  *comm = std::make_unique<MpiCommunicator>();
  return Status();
}

Status mpi_local_rank(int* local_rank) {
  MPI_Comm node;
  ZERO_RETURN_IF_ERROR(mpi_status(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
                                  "MPI_Comm_split_type"));
  const int rc = MPI_Comm_rank(node, local_rank);
  MPI_Comm_free(&node);
  return mpi_status(rc, "MPI_Comm_rank");
}

void mpi_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  _Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest.
}

}  // namespace zero
