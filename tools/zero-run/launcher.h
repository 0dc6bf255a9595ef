// --nproc N: zero-run starts its ranks under mpirun as a child process and
// owns what the user sees: each distinct error once, no mpirun banners, and
// one line naming a rank that a signal killed, with the step it was at.
#ifndef ZERO_RUN_LAUNCHER_H
#define ZERO_RUN_LAUNCHER_H

#include <cstddef>
#include <cstdint>

namespace zero {

// Runs `mpirun --oversubscribe -np nproc <this executable> <argv minus
// --nproc>` and returns zero-run's exit code: 0, or 1 when any rank failed.
int launch_ranks(int argc, char** argv, int nproc);

// Where a rank started by launch_ranks publishes the step it is at, so the
// launcher can say where a killed rank was; does nothing in other ranks.
class StepBoard {
 public:
  explicit StepBoard(int rank);
  ~StepBoard();
  StepBoard(const StepBoard&) = delete;
  StepBoard& operator=(const StepBoard&) = delete;
  void publish(long step) {
    if (slot_) *slot_ = step;
  }

 private:
  volatile int64_t* slot_ = nullptr;  // this rank's step
  void* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace zero

#endif  // ZERO_RUN_LAUNCHER_H
