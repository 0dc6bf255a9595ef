// Collectives over MPI_COMM_WORLD (OpenMPI). Counts larger than an int are
// rejected rather than silently truncated.
#include <mpi.h>

#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "zero/mpi_communicator.h"

namespace zero {
namespace {

Status mpi_status(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return Status();
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return Status::unavailable(std::string(what) + " failed: " + std::string(msg, size_t(len)));
}

class MpiCommunicator final : public AsyncCommunicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override { MPI_Finalize(); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status reserve_slots(int slots) override {
    if (slots >= int(slots_.size())) slots_.resize(size_t(slots) + 1);
    return Status();
  }
  Status start(const Collective& c, int slot) override {
    if (slot < 0 || size_t(slot) >= slots_.size())
      return Status::internal("collective slot " + std::to_string(slot) + " was not reserved");
    return issue(c, &slots_[size_t(slot)]);
  }
  Status wait(int slot) override {
    if (slot < 0 || size_t(slot) >= slots_.size())
      return Status::internal("collective slot " + std::to_string(slot) + " was not reserved");
    return finish(&slots_[size_t(slot)]);
  }

 private:
  // One nonblocking collective: its request, and where the result lands
  // when it is not `c.out` (in-place reduce-scatter, see issue()).
  struct Slot {
    MPI_Request request = MPI_REQUEST_NULL;
    Collective c{};
    float* dst = nullptr;
    std::vector<float> scratch;
  };

  Status issue(const Collective& c, Slot* s) {
    if (s->request != MPI_REQUEST_NULL) return Status::internal("collective slot is already in flight");
    static const char* const kNames[] = {"AllReduce", "ReduceScatter", "AllGather"};
    if (c.count > size_t(INT_MAX))
      return Status::resource_exhausted(std::string(kNames[int(c.kind)]) + " of more than INT_MAX elements per rank");
    const int n = int(c.count);
    s->c = c;
    s->dst = c.out;
    switch (c.kind) {
      case Kind::AllReduce:
        return mpi_status(MPI_Iallreduce(c.in == c.out ? MPI_IN_PLACE : c.in, c.out, n, MPI_FLOAT, MPI_SUM,
                                         MPI_COMM_WORLD, &s->request),
                          "MPI_Iallreduce");
      case Kind::ReduceScatter: {
        // MPI's in-place reduce-scatter leaves the result at the start of the
        // buffer, not at chunk rank(); when out overlaps in, reduce into
        // scratch and copy when the collective completes.
        if (c.out < c.in + c.count * size_t(size_) && c.in < c.out + c.count) {
          s->scratch.resize(c.count);
          s->dst = s->scratch.data();
        }
        return mpi_status(
            MPI_Ireduce_scatter_block(c.in, s->dst, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &s->request),
            "MPI_Ireduce_scatter_block");
      }
      case Kind::AllGather: {
        // In place means this rank's contribution already sits at chunk rank().
        const void* send = c.in == c.out + c.count * size_t(rank_) ? MPI_IN_PLACE : c.in;
        return mpi_status(
            MPI_Iallgather(send, n, MPI_FLOAT, c.out, n, MPI_FLOAT, MPI_COMM_WORLD, &s->request),
            "MPI_Iallgather");
      }
    }
    return Status::internal("unknown collective kind");
  }

  Status finish(Slot* s) {
    if (s->request == MPI_REQUEST_NULL) return Status::internal("no collective in flight in this slot");
    ZERO_RETURN_IF_ERROR(mpi_status(MPI_Wait(&s->request, MPI_STATUS_IGNORE), "MPI_Wait"));
    const size_t count = s->c.count;
    if (s->dst != s->c.out) std::memcpy(s->c.out, s->dst, count * sizeof(float));
    if (s->c.op == Reduction::Mean && s->c.kind != Kind::AllGather) {
      const float inv = 1.f / float(size_);
      for (size_t i = 0; i < count; ++i) s->c.out[i] *= inv;
    }
    return Status();
  }

  int rank_ = 0, size_ = 1;
  std::vector<Slot> slots_ = std::vector<Slot>(1);  // slot 0: the synchronous forms
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
