// Checkpoints of a training run (docs/checkpoint-format.md): every rank
// writes its share of the training state (Session::state()) into one file,
// rank 0 a manifest with the layout and checksums; a checkpoint is complete
// once its directory is renamed into place, and DIR/latest names the newest.
// A checkpoint written at one world size, stage or backend resumes at any
// other, each rank reading only the slices it stores.
#ifndef ZERO_RUN_CHECKPOINT_H
#define ZERO_RUN_CHECKPOINT_H

#include <cstdint>
#include <string>

#include "zero/runtime.h"
#include "zero/status.h"

namespace zero {

constexpr int kCheckpointFormatVersion = 1;

// Where a run stands between two steps, besides the tensors.
struct RunPosition {
  int64_t step = 0;   // optimizer steps done
  uint64_t rows = 0;  // data rows consumed (positions, before shuffling)
  uint64_t seed = 0;  // of the data order and Dropout's masks
  bool shuffle = false;
};

// The plan's identity for a checkpoint: its model (a hash of the source
// model and of the state's names and shapes) and how it trains.
std::string model_identity(const Session& session);

// Writes DIR/step-S (S = position.step) and points DIR/latest at it, then
// removes all but the newest `keep` checkpoints (0: keeps all). Collective
// over `comm` (the host communicator); every rank returns the same success.
// *rank_bytes: the bytes this rank wrote.
Status save_checkpoint(const Session& session, Communicator* comm, const std::string& dir,
                       const RunPosition& position, int keep, uint64_t* rank_bytes);

// The checkpoint directory `path` names: a directory with a manifest, or a
// checkpoint root whose `latest` names one.
Status find_checkpoint(const std::string& path, std::string* checkpoint);

// Loads `checkpoint` into the session's state, re-cut for its world size and
// placements. A checkpoint of another model is refused; one of another
// training configuration (optimizer, hyper-parameters, schedule, clipping,
// accumulation) too, unless `override_config`. Not collective.
Status load_checkpoint(Session* session, int rank, const std::string& checkpoint, bool override_config,
                       RunPosition* position);

}  // namespace zero

#endif  // ZERO_RUN_CHECKPOINT_H
