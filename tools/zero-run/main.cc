// zero-run: trains a compiled plan on one rank, on N local ranks (--nproc,
// re-executing itself under mpirun) or on every rank of an MPI job.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint.h"
#include "data_order.h"
#include "launcher.h"
#include "npy.h"
#include "onnx_export.h"
#include "zero/files.h"
#include "zero/runtime.h"
#ifdef ZERO_HAVE_MPI
#include "zero/mpi_communicator.h"
#endif
#include "zero/cuda_module.h"

namespace zero {
namespace {

constexpr char kUsage[] =
    "usage: zero-run PLAN.zplan [--data DIR | --synthetic] [--steps N] [--log FILE]\n"
    "                [--nproc N] [--timeout-s SECONDS] [--init-params DIR] [--save-params DIR]\n"
    "                [--export-onnx OUT.onnx]\n"
    "                [--save-outputs DIR] [--tf32] [--shuffle] [--seed S]\n"
    "                [--eval-data DIR [--eval-every K]]\n"
    "                [--checkpoint-dir DIR [--checkpoint-every K] [--keep-checkpoints M]]\n"
    "                [--resume DIR [--resume-override]]\n";

constexpr long long kMaxSteps = 1000000000000LL;
constexpr long long kMaxLocalRanks = 4096;
#ifndef ZERO_HAVE_CHECKPOINTS
constexpr char kNoCheckpoints[] = "checkpoints: zero-run was built without nlohmann-json and zlib";
#endif
constexpr double kMaxTimeoutS = 1e7;  // 115 days; the watchdog counts nanoseconds in an int64

struct Options {
  std::string plan;
  std::string data_dir;
  bool synthetic = false;
  long steps = 1;
  std::string log;
  int nproc = 0;
  double timeout_s = 300;
  std::string save_params;
  std::string init_params;
  std::string export_onnx;
  std::string save_outputs;
  bool tf32 = false;  // CUDA plans: TF32 GEMMs
  bool shuffle = false;  // each epoch in its own permutation (data_order.h)
  uint64_t seed = 0;     // of the data order and of Dropout's masks
  std::string eval_dir;  // the evaluation program's data (zero-opt --eval)
  long eval_every = 0;   // evaluate after every K steps (0: after the last only)
  bool seed_given = false;
  std::string checkpoint_dir;
  long checkpoint_every = 0;  // 0: after the last step only
  long keep_checkpoints = 0;  // 0: all
  std::string resume;         // a checkpoint, or a directory whose `latest` names one
  bool resume_override = false;
};

// True when started by an MPI launcher (mpirun, or srun with PMI/PMIx).
bool under_mpi() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK"); }

// The launcher-assigned rank (0 without a launcher), for messages before MPI is up.
int env_rank() {
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  if (!r) r = std::getenv("PMIX_RANK");
  if (!r) r = std::getenv("PMI_RANK");
  return r ? std::atoi(r) : 0;
}

// Before MPI is up, only the launcher-assigned rank 0 prints argument errors.
bool env_rank_zero() { return env_rank() == 0; }

// Integer syntax only ("1e3" and "12.0" are refused), within [min, max].
bool parse_integer(const char* s, long long min, long long max, long long* out) {
  char* end = nullptr;
  errno = 0;
  *out = std::strtoll(s, &end, 10);
  return end != s && *end == '\0' && errno == 0 && *out >= min && *out <= max;
}

bool parse_seconds(const char* s, double min, double max, double* out) {
  char* end = nullptr;
  *out = std::strtod(s, &end);
  return end != s && *end == '\0' && std::isfinite(*out) && *out >= min && *out <= max;
}

Status parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](const char** v) {
      if (i + 1 >= argc) return Status::invalid_argument("option " + a + " needs a value");
      *v = argv[++i];
      return Status();
    };
    const char* v = nullptr;
    long long integer = 0;
    if (a == "--data") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->data_dir = v;
    } else if (a == "--synthetic") {
      o->synthetic = true;
    } else if (a == "--tf32") {
      o->tf32 = true;
    } else if (a == "--shuffle") {
      o->shuffle = true;
    } else if (a == "--seed") {  // shuffling and dropout
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_integer(v, 0, LLONG_MAX, &integer))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for --seed (an integer from 0 to " +
                                        std::to_string(LLONG_MAX) + ")");
      o->seed = uint64_t(integer);
      o->seed_given = true;
    } else if (a == "--checkpoint-dir") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->checkpoint_dir = v;
    } else if (a == "--checkpoint-every" || a == "--keep-checkpoints") {
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_integer(v, 1, kMaxSteps, &integer))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for " + a + " (an integer from 1 to " +
                                        std::to_string(kMaxSteps) + ")");
      (a == "--checkpoint-every" ? o->checkpoint_every : o->keep_checkpoints) = long(integer);
    } else if (a == "--resume") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->resume = v;
    } else if (a == "--resume-override") {
      o->resume_override = true;
    } else if (a == "--eval-data") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->eval_dir = v;
    } else if (a == "--eval-every") {
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_integer(v, 1, kMaxSteps, &integer))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for --eval-every (an integer from 1 to " +
                                        std::to_string(kMaxSteps) + ")");
      o->eval_every = long(integer);
    } else if (a == "--steps") {
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_integer(v, 0, kMaxSteps, &integer))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for --steps (an integer from 0 to " +
                             std::to_string(kMaxSteps) + ")");
      o->steps = long(integer);
    } else if (a == "--nproc") {
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_integer(v, 1, kMaxLocalRanks, &integer))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for --nproc (an integer from 1 to " +
                             std::to_string(kMaxLocalRanks) + ")");
      o->nproc = int(integer);
    } else if (a == "--timeout-s") {
      ZERO_RETURN_IF_ERROR(value(&v));
      if (!parse_seconds(v, 0.001, kMaxTimeoutS, &o->timeout_s))
        return Status::invalid_argument("invalid value '" + std::string(v) + "' for --timeout-s (seconds, from 0.001 to " +
                             std::to_string(long(kMaxTimeoutS)) + ")");
    } else if (a == "--log") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->log = v;
    } else if (a == "--save-params") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->save_params = v;
    } else if (a == "--init-params") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->init_params = v;
    } else if (a == "--save-outputs") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->save_outputs = v;
    } else if (a == "--export-onnx") {
      ZERO_RETURN_IF_ERROR(value(&v));
      o->export_onnx = v;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a.size() > 1 && a[0] == '-') {
      return Status::invalid_argument("unknown option " + a);
    } else if (o->plan.empty()) {
      o->plan = a;
    } else {
      return Status::invalid_argument("unexpected argument " + a);
    }
  }
  if (o->plan.empty()) return Status::invalid_argument("no plan file given");
  if (o->synthetic && !o->data_dir.empty()) return Status::failed_precondition("--data and --synthetic are exclusive");
  if (o->shuffle && o->synthetic) return Status::failed_precondition("--shuffle needs --data (synthetic data has no rows)");
  if (o->eval_every && o->eval_dir.empty()) return Status::failed_precondition("--eval-every needs --eval-data DIR");
  if ((o->checkpoint_every || o->keep_checkpoints) && o->checkpoint_dir.empty())
    return Status::failed_precondition(std::string(o->checkpoint_every ? "--checkpoint-every" : "--keep-checkpoints") +
                                       " needs --checkpoint-dir DIR");
  if (o->resume_override && o->resume.empty()) return Status::failed_precondition("--resume-override needs --resume DIR");
#ifndef ZERO_HAVE_CHECKPOINTS
  if (!o->checkpoint_dir.empty() || !o->resume.empty())
    return Status::failed_precondition(kNoCheckpoints);
#endif
#ifndef ZERO_HAVE_ONNX
  if (!o->export_onnx.empty()) return Status::failed_precondition("--export-onnx: zero-run was built without ONNX support");
#endif
  if (o->nproc > 1 && under_mpi()) return Status::failed_precondition("--nproc cannot be used under mpirun/srun");
#ifndef ZERO_HAVE_MPI
  if (o->nproc > 1 || under_mpi()) return Status::failed_precondition("zero-run was built without MPI; only one rank is supported");
#endif
  return Status();
}

// Aborts the process when a phase (a step, the final gather) outlives
// --timeout-s, e.g. because a peer rank died inside a collective. Exiting
// without MPI_Finalize makes mpirun tear down the remaining ranks.
class Watchdog {
 public:
  Watchdog(double timeout_s, int rank) : timeout_ns_(int64_t(timeout_s * 1e9)), rank_(rank) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Watchdog() {
    stop_ = true;
    thread_.join();
  }
  // `phase` is printed as is, followed by `step` unless it is negative.
  void arm(const char* phase, long step = -1) {
    phase_ = phase;
    step_ = step;
    deadline_ = now() + timeout_ns_;
  }
  void disarm() { deadline_ = 0; }

 private:
  static int64_t now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void loop() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const int64_t d = deadline_;
      if (d != 0 && now() > d) {
        const long step = step_;
        const std::string at = step >= 0 ? " " + std::to_string(step) : "";
        std::fprintf(stderr,
                     "zero-run: error: rank %d: %s%s did not finish within %g s (--timeout-s); "
                     "a peer rank may have died\n",
                     rank_, phase_.load(), at.c_str(), timeout_ns_ / 1e9);
        std::fflush(stderr);
        _exit(1);
      }
    }
  }
  const int64_t timeout_ns_;
  const int rank_;
  std::atomic<int64_t> deadline_{0};
  std::atomic<const char*> phase_{""};
  std::atomic<long> step_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Every rank learns whether any rank failed; the lowest failing rank prints
// its message, so deterministic errors (seen by all ranks) print once.
bool all_ok(Communicator* comm, const Status& st) {
  std::vector<float> flags(size_t(comm->size()));
  const float mine = st.ok() ? 0.f : 1.f;
  Status cs = comm->all_gather(&mine, flags.data(), 1);
  if (!cs.ok()) {
    std::fprintf(stderr, "zero-run: error: %s\n", cs.message().c_str());
    return false;
  }
  int failed = 0;
  for (float f : flags) failed += f != 0.f;
  if (failed == 0) return true;
  for (int r = 0; r < comm->size(); ++r) {
    if (flags[size_t(r)] == 0.f) continue;
    // Name the rank only when the failure is specific to some ranks.
    if (r == comm->rank() && failed == comm->size())
      std::fprintf(stderr, "zero-run: error: %s\n", st.message().c_str());
    else if (r == comm->rank())
      std::fprintf(stderr, "zero-run: error: rank %d: %s\n", r, st.message().c_str());
    break;
  }
  return false;
}

// One plan input and the rows it is fed from. A rank-0 (scalar) input has
// no batch dimension: its value is bound as is at every step (rows = 0).
struct Feed {
  TensorInfo info;
  std::unique_ptr<NpyFile> dataset;  // null for --synthetic
  std::vector<uint8_t> batch;
  size_t row_bytes = 0;
  int64_t rows = 0;
  std::shared_ptr<DataOrder> order;  // shared by the feeds of one dataset (assign_data_order)
};

// The data file that feeds plan input `name`.
std::string data_path(const std::string& dir, const std::string& name) { return dir + "/" + name + ".npy"; }

// Where a set of feeds reads from: the training data or the evaluation data.
struct FeedSource {
  std::string dir;
  const char* flag;  // "--data", "--eval-data"
  bool synthetic = false;
  bool shuffle = false;
  uint64_t seed = 0;
};
// Without steps (--steps 0: export, evaluate) the training data is not read.
FeedSource training_source(const Options& o) {
  return {o.data_dir, "--data", o.synthetic || (o.steps == 0 && o.data_dir.empty()), o.shuffle, o.seed};
}
FeedSource evaluation_source(const Options& o) { return {o.eval_dir, "--eval-data"}; }

// Gives the batched feeds their data order: one for all inputs and
// micro-steps of a dataset of the same rows (shuffled, all of them), so the
// positions asked of it only grow and each epoch's permutation is built once.
void assign_data_order(std::vector<Feed>* feeds, bool shuffle, uint64_t seed) {
  std::shared_ptr<DataOrder> order;
  for (Feed& f : *feeds) {
    if (f.rows == 0) continue;
    if (!order || order->rows() != uint64_t(f.rows)) order = std::make_shared<DataOrder>(uint64_t(f.rows), shuffle, seed);
    f.order = order;
  }
}

// Maps every input's data file and checks it against the plan; nothing is
// read but the headers and nothing is allocated, so the launcher runs it
// before it starts ranks, and a rank before it opens the plan.
Status load_feeds(const std::vector<TensorInfo>& inputs, const FeedSource& o, std::vector<Feed>* feeds) {
  for (const TensorInfo& info : inputs) {
    Feed f;
    f.info = info;
    uint64_t row = 1;
    for (size_t d = 1; d < info.shape.size(); ++d) row *= uint64_t(info.shape[d]);
    f.row_bytes = size_t(row) * dtype_size(info.dtype);
    if (o.synthetic) {
      feeds->push_back(std::move(f));
      continue;
    }
    if (o.dir.empty())
      return Status::invalid_argument("plan input '" + info.name + "' needs " + o.flag + " DIR" +
                                      (o.flag == std::string("--data") ? " (or --synthetic)" : ""));
    const std::string path = data_path(o.dir, info.name);
    if (access(path.c_str(), F_OK) != 0)
      return Status::not_found("missing data file " + path + " for plan input '" + info.name + "'");
    f.dataset = std::make_unique<NpyFile>();
    ZERO_RETURN_IF_ERROR(f.dataset->open(path));
    const NpyView& data = f.dataset->array();
    if (data.dtype != info.dtype)
      return Status::invalid_argument(path + ": dtype " + dtype_name(data.dtype) + " but plan input '" + info.name + "' is " +
                           dtype_name(info.dtype));
    if (info.shape.empty()) {
      // A scalar input is not batched: the file holds exactly its value.
      if (!data.shape.empty())
        return Status::invalid_argument(path + ": shape " + shape_string(data.shape) + " but plan input '" + info.name +
                             "' is a scalar and needs shape ()");
      feeds->push_back(std::move(f));
      continue;
    }
    std::vector<int64_t> want(info.shape.begin() + 1, info.shape.end());
    const std::vector<int64_t>& got = data.shape;
    if (got.empty() || std::vector<int64_t>(got.begin() + 1, got.end()) != want) {
      want.insert(want.begin(), -1);
      std::string w = shape_string(want);
      w.replace(1, 2, "D");
      return Status::invalid_argument(path + ": shape " + shape_string(got) + " but plan input '" + info.name + "' needs " + w);
    }
    f.rows = got[0];
    if (f.rows == 0) return Status::invalid_argument(path + ": dataset has no rows");
    // Shuffled, row i of every input must be the same example (scalar
    // inputs have no rows).
    const auto first = std::find_if(feeds->begin(), feeds->end(), [](const Feed& other) { return other.rows > 0; });
    if (o.shuffle && first != feeds->end() && first->rows != f.rows)
      return Status::invalid_argument("--shuffle: " + path + " has " + std::to_string(f.rows) + " rows but " +
                                      data_path(o.dir, first->info.name) + " has " + std::to_string(first->rows));
    feeds->push_back(std::move(f));
  }
  assign_data_order(feeds, o.shuffle, o.seed);
  return Status();
}

// Allocates each feed's micro-batch once the plan has been validated (its
// shapes are then the arena's): a scalar input gets its value, a synthetic
// one fixed pseudo-random features in [-1, 1) (integer inputs, labels, 0:
// a valid class for any classifier).
void allocate_batches(std::vector<Feed>* feeds, int rank) {
  for (Feed& f : *feeds) {
    const bool scalar = f.info.shape.empty();
    f.batch.resize(f.row_bytes * size_t(scalar ? 1 : f.info.shape[0]));
    if (f.dataset && scalar) {
      const NpyView& data = f.dataset->array();
      f.batch.assign(data.data, data.data + data.bytes);
    } else if (!f.dataset && f.info.dtype == DType::F32) {
      uint64_t state = 0x9e3779b97f4a7c15ull * uint64_t(rank + 1);
      float* p = reinterpret_cast<float*>(f.batch.data());
      for (size_t i = 0; i < f.batch.size() / 4; ++i) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = float(state >> 40) / float(1 << 23) - 1.f;
      }
    }
  }
}

// Rank r of N at micro-step a of step s (K micro-steps a step) takes the
// rows at positions base + ((s*K + a)*N + r)*b + j, j < b (data_order.h):
// a run resumed from a checkpoint counts s from its first step and starts
// at the rows consumed before (base); otherwise both are 0.
Status bind_feeds(Session* session, std::vector<Feed>* feeds, long step, uint64_t base, int rank, int world) {
  const uint64_t micro_steps = session->micro_steps();
  for (Feed& f : *feeds) {
    if (f.rows > 0) {
      const uint64_t b = uint64_t(f.info.shape[0]);
      const uint64_t batch = uint64_t(step) * micro_steps + f.info.micro_step;
      const uint64_t first = base + (batch * uint64_t(world) + uint64_t(rank)) * b;
      for (uint64_t j = 0; j < b; ++j)
        std::memcpy(f.batch.data() + j * f.row_bytes, f.dataset->array().data + f.order->row(first + j) * f.row_bytes,
                    f.row_bytes);
    }
    ZERO_RETURN_IF_ERROR(
        session->bind_input(f.info.name, f.info.micro_step, f.batch.data(), f.info.dtype, f.info.shape));
  }
  return Status();
}

// The evaluation set: the batches of N * b rows that fit in every input's
// data, rank r's i-th batch being rows (i*N + r)*b + j, j < b.
Status count_eval_batches(const std::vector<Feed>& feeds, const Options& o, int world, int64_t* batches,
                          int64_t* rows) {
  *batches = -1;
  for (const Feed& f : feeds) {
    if (f.rows == 0) continue;
    const int64_t global = int64_t(world) * f.info.shape[0];
    if (*batches < 0 || f.rows / global < *batches) {
      *batches = f.rows / global;
      *rows = *batches * global;
    }
    if (*batches == 0)
      return Status::invalid_argument(data_path(o.eval_dir, f.info.name) + ": " + std::to_string(f.rows) +
                                      " rows, fewer than one evaluation batch of " + std::to_string(global) +
                                      " (world size x micro-batch)");
  }
  if (*batches < 0) return Status::invalid_argument("--eval-data: the plan's evaluation has no batched input");
  return Status();
}

Status bind_eval_feeds(Session* session, std::vector<Feed>* feeds, int64_t batch, int rank, int world) {
  for (Feed& f : *feeds) {
    if (f.rows > 0) {
      const uint64_t b = uint64_t(f.info.shape[0]);
      const uint64_t first = (uint64_t(batch) * uint64_t(world) + uint64_t(rank)) * b;
      std::memcpy(f.batch.data(), f.dataset->array().data + first * f.row_bytes, b * f.row_bytes);
    }
    ZERO_RETURN_IF_ERROR(session->bind_eval_input(f.info.name, f.batch.data(), f.info.dtype, f.info.shape));
  }
  return Status();
}

// The mean of the evaluation losses over the evaluation set, each batch
// within the watchdog's timeout. Collective.
Status evaluate(Session* session, std::vector<Feed>* feeds, int64_t batches, int rank, int world, Watchdog* watchdog,
                long step, double* mean) {
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    watchdog->arm(step >= 0 ? "evaluating after step" : "evaluating the initial parameters", step);
    ZERO_RETURN_IF_ERROR(bind_eval_feeds(session, feeds, i, rank, world));
    float loss = 0;
    ZERO_RETURN_IF_ERROR(session->evaluate(&loss));
    sum += loss;
  }
  *mean = sum / double(batches);
  return Status();
}

// Loads --resume's checkpoint: the run continues at its step, from its data
// position, in its data order (a --seed or --shuffle that differs is an
// error unless --resume-override, which takes the flags).
Status resume_run(Session* session, int rank, Options* o, std::vector<Feed>* feeds, RunPosition* position) {
#ifdef ZERO_HAVE_CHECKPOINTS
  std::string checkpoint;
  ZERO_RETURN_IF_ERROR(find_checkpoint(o->resume, &checkpoint));
  ZERO_RETURN_IF_ERROR(load_checkpoint(session, rank, checkpoint, o->resume_override, position));
  // --steps 0 trains nothing (an export, an evaluation); otherwise --steps
  // is the run's total.
  if (o->steps != 0 && position->step > o->steps)
    return Status::invalid_argument(checkpoint + ": the run is at step " + std::to_string(position->step) +
                                    ", past --steps " + std::to_string(o->steps) +
                                    " (the run's total number of steps)");
  const bool differs = (o->seed_given && o->seed != position->seed) || (o->shuffle && !position->shuffle);
  if (differs && !o->resume_override)
    return Status::failed_precondition(checkpoint + ": the run was trained with --seed " +
                                       std::to_string(position->seed) + (position->shuffle ? " --shuffle" : "") +
                                       "; resume it so, or pass --resume-override for the flags given");
  if (!o->resume_override) {
    o->seed = position->seed;
    o->shuffle = position->shuffle;
  }
  assign_data_order(feeds, o->shuffle, o->seed);
  return Status();
#else
  (void)session, (void)rank, (void)o, (void)feeds, (void)position;
  return Status::failed_precondition(kNoCheckpoints);
#endif
}

// --checkpoint-dir: the state after `position.step` steps, and a log line
// with the bytes rank 0 wrote (each rank writes its share).
Status write_checkpoint(const Session& session, Communicator* comm, const Options& o, const RunPosition& position,
                        AtomicFile* log) {
#ifdef ZERO_HAVE_CHECKPOINTS
  uint64_t bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ZERO_RETURN_IF_ERROR(save_checkpoint(session, comm, o.checkpoint_dir, position, int(o.keep_checkpoints), &bytes));
  if (!log) return Status();
  char ms[32];
  std::snprintf(ms, sizeof(ms), "%.3f",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  const std::string line = "{\"step\": " + std::to_string(position.step - 1) + ", \"checkpoint\": \"step-" +
                           std::to_string(position.step) + "\", \"checkpoint_bytes\": " + std::to_string(bytes) +
                           ", \"checkpoint_ms\": " + ms + "}\n";
  Status written = log->write(line.data(), line.size());
  return written.ok() ? written : written.with_context("writing log file ");
#else
  (void)session, (void)comm, (void)o, (void)position, (void)log;
  return Status::failed_precondition(kNoCheckpoints);
#endif
}

int64_t peak_rss_bytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// A tensor name as a file name: '/' and '\\' (and control characters) become
// '_', and "", "." and ".." get a leading '_'.
std::string file_name(const std::string& name) {
  std::string file = name;
  for (char& c : file)
    if (c == '/' || c == '\\' || (unsigned char)c < 0x20) c = '_';
  if (file.empty() || file == "." || file == "..") file = "_" + file;
  return file;
}

// The file --init-params or --save-params uses for a parameter.
std::string param_path(const std::string& dir, const std::string& name) { return dir + "/" + file_name(name) + ".npy"; }

// --init-params DIR: every trainable parameter from DIR/NAME.npy (float32,
// its full shape); model state keeps the plan's values unless a file is given.
// With session == nullptr only checks the files (the launcher, before ranks).
Status init_params(Session* session, const PlanSummary& plan, const Options& o) {
  if (o.init_params.empty()) return Status();
  for (size_t i = 0; i < plan.parameters.size(); ++i) {
    const TensorInfo& info = plan.parameters[i];
    const std::string path = param_path(o.init_params, info.name);
    if (access(path.c_str(), F_OK) != 0) {
      if (plan.trainable[i]) return Status::not_found(path + ": missing (initial value of parameter '" + info.name + "')");
      continue;
    }
    NpyFile file;
    ZERO_RETURN_IF_ERROR(file.open(path));
    const NpyView& array = file.array();
    if (array.dtype != DType::F32 || array.shape != info.shape)
      return Status::invalid_argument(path + ": expected float32 " + shape_string(info.shape) + " for parameter '" + info.name +
                           "', got " + dtype_name(array.dtype) + " " + shape_string(array.shape));
    if (!session) continue;
    // The mapping need not be 4-byte aligned (a .npy header may have any length).
    std::vector<float> values(array.bytes / sizeof(float));
    std::memcpy(values.data(), array.data, array.bytes);
    ZERO_RETURN_IF_ERROR(session->write_parameter(info.name, values.data(), values.size()));
  }
  return Status();
}

// A path with its directory resolved, so two spellings of one file compare
// equal even before the file exists.
std::string resolved(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  char real[PATH_MAX];
  return realpath(directory_of(path).c_str(), real) ? std::string(real) + "/" + base : path;
}

struct NamedPath {
  std::string what;  // "--log", "the plan", "data file for input 'x'"
  std::string path;
  // A file written into a directory that must exist (not one zero-run
  // creates): the error when that directory is not writable.
  const char* unwritable = nullptr;
};

// Refuses a run that would write over one of its inputs (the plan is mapped:
// truncating it kills the run with SIGBUS) or write one file twice, before
// anything is opened for writing.
Status check_output_paths(const Options& o, const PlanSummary& plan) {
  std::vector<NamedPath> inputs = {{"the plan", o.plan}}, outputs;
  if (!o.data_dir.empty())
    for (const TensorInfo& in : plan.inputs)
      inputs.push_back({"the data of input '" + in.name + "'", data_path(o.data_dir, in.name)});
  if (!o.eval_dir.empty())
    for (const TensorInfo& in : plan.eval_inputs)
      inputs.push_back({"the evaluation data of input '" + in.name + "'", data_path(o.eval_dir, in.name)});
  for (const TensorInfo& p : plan.parameters) {
    if (!o.init_params.empty())
      inputs.push_back({"--init-params of '" + p.name + "'", param_path(o.init_params, p.name)});
    if (!o.save_params.empty())
      outputs.push_back({"--save-params of '" + p.name + "'", param_path(o.save_params, p.name)});
  }
  if (!o.save_outputs.empty())
    for (const TensorInfo& out : plan.outputs)
      outputs.push_back({"--save-outputs of '" + out.name + "'", param_path(o.save_outputs, out.name)});
  if (!o.log.empty()) outputs.push_back({"--log", o.log, "cannot open log file "});
  if (!o.export_onnx.empty()) outputs.push_back({"--export-onnx", o.export_onnx, "cannot write --export-onnx "});
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::string out = resolved(outputs[i].path);
    if (outputs[i].unwritable && access(directory_of(out).c_str(), W_OK) != 0)
      return Status::unavailable(outputs[i].unwritable + outputs[i].path + ": " + std::strerror(errno));
    for (const NamedPath& in : inputs)
      if (same_file(outputs[i].path, in.path) || out == resolved(in.path))
        return Status::invalid_argument(outputs[i].what + " " + outputs[i].path + " is " + in.what +
                             ": an output may not overwrite an input");
    for (size_t j = 0; j < i; ++j)
      if (out == resolved(outputs[j].path))
        return Status::invalid_argument(outputs[i].what + " " + outputs[i].path + " is also " + outputs[j].what);
  }
  return Status();
}

Status make_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    return Status::unavailable(dir + ": cannot create directory: " + std::strerror(errno));
  return Status();
}

// --save-outputs: rank 0's value of every plan output, DIR/NAME.npy.
Status write_plan_outputs(Session* session, const Options& o) {
  ZERO_RETURN_IF_ERROR(make_dir(o.save_outputs));
  for (const TensorInfo& info : session->outputs()) {
    std::vector<uint8_t> bytes;
    ZERO_RETURN_IF_ERROR(session->read_output_bytes(info.name, &bytes));
    ZERO_RETURN_IF_ERROR(write_npy(param_path(o.save_outputs, info.name), info.dtype, info.shape, bytes.data()));
  }
  return Status();
}

Status save_outputs(Session* session, const Options& o, int rank) {
  if (rank == 0 && !o.save_outputs.empty()) ZERO_RETURN_IF_ERROR(write_plan_outputs(session, o));
  if (o.save_params.empty() && o.export_onnx.empty()) return Status();
  std::vector<NamedTensor> params;
  for (const TensorInfo& info : session->parameters()) {
    NamedTensor t{info.name, info.shape, {}};
    ZERO_RETURN_IF_ERROR(session->read_parameter(info.name, &t.values));  // collective
    params.push_back(std::move(t));
  }
  if (rank != 0) return Status();
  if (!o.save_params.empty()) {
    ZERO_RETURN_IF_ERROR(make_dir(o.save_params));
    for (const NamedTensor& p : params)
      ZERO_RETURN_IF_ERROR(write_npy(param_path(o.save_params, p.name), DType::F32, p.shape, p.values.data()));
  }
#ifdef ZERO_HAVE_ONNX
  if (!o.export_onnx.empty()) {
    size_t size = 0;
    const uint8_t* model = session->onnx_model(&size);
    ZERO_RETURN_IF_ERROR(export_onnx(model, size, params, o.export_onnx));
  }
#endif
  return Status();
}

// Everything that can be checked before a rank opens the plan (and before
// the launcher starts ranks): the plan's header and world size, the data
// files' headers against the plan's inputs, initial parameters and output
// paths. Nothing is allocated from what a file claims; the data files stay
// mapped in `feeds`.
Status preflight(const Options& o, int world, PlanSummary* plan, std::vector<Feed>* feeds,
                 std::vector<Feed>* eval_feeds, int64_t* eval_batches, int64_t* eval_rows) {
  ZERO_RETURN_IF_ERROR(describe_plan(o.plan, plan));
  if (plan->world_size != uint32_t(world))
    return Status::failed_precondition(o.plan + ": plan was compiled for world size " + std::to_string(plan->world_size) +
                         " but running with " + std::to_string(world) + " rank(s)");
  if (!o.save_outputs.empty() && plan->outputs.empty())
    return Status::failed_precondition(o.plan + ": --save-outputs needs a forward-only plan (this plan has no outputs)");
  if (plan->weights_omitted && o.init_params.empty() && o.resume.empty())
    return Status::invalid_argument(o.plan +
                         ": the plan has no initial weights (zero-opt --omit-weights); pass --init-params DIR");
  ZERO_RETURN_IF_ERROR(check_output_paths(o, *plan));
  ZERO_RETURN_IF_ERROR(init_params(nullptr, *plan, o));
  ZERO_RETURN_IF_ERROR(load_feeds(plan->inputs, training_source(o), feeds));
  if (o.eval_dir.empty()) return Status();
  if (!plan->has_evaluation)
    return Status::failed_precondition(o.plan + ": --eval-data needs a plan with an evaluation program (zero-opt --eval)");
  ZERO_RETURN_IF_ERROR(load_feeds(plan->eval_inputs, evaluation_source(o), eval_feeds));
  return count_eval_batches(*eval_feeds, o, world, eval_batches, eval_rows);
}

// --nproc N: check what can be checked once, then start the ranks.
int launch(int argc, char** argv, const Options& o) {
  PlanSummary plan;
  std::vector<Feed> feeds, eval_feeds;
  int64_t eval_batches = 0, eval_rows = 0;
  Status st = preflight(o, o.nproc, &plan, &feeds, &eval_feeds, &eval_batches, &eval_rows);
  if (st.ok() && !plan.cuda) {
    // N ranks on this host each zero an arena: refuse what cannot fit.
    const uint64_t available = host_memory_available();
    const uint64_t needed = plan.arena_bytes * uint64_t(o.nproc);
    if (available && needed > available)
      st = Status::resource_exhausted(o.plan + ": " + std::to_string(o.nproc) + " ranks need " + byte_size_string(needed) +
                         " of arenas (" + byte_size_string(plan.arena_bytes) + " each), but only " +
                         byte_size_string(available) + " of host memory is available");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "zero-run: error: %s\n", st.message().c_str());
    return 1;
  }
  return launch_ranks(argc, argv, o.nproc);
}

std::string log_line(long step, float loss, const std::vector<float>& metrics, double ms, const Session& session,
                     const CudaRank* gpu) {
  // The plan's metrics ("lr", "grad_norm") by name; peak_bytes: the planned
  // arena and kernel scratch (the report's peak); device_bytes: measured on
  // the GPU.
  std::string named;
  for (size_t i = 0; i < metrics.size(); ++i)
    named += ", \"" + session.metric_names()[i] + "\": " + json_number(metrics[i]);
  const std::string device = gpu ? ", \"device_bytes\": " + std::to_string(gpu->device_bytes()) : "";
  char time[32];
  std::snprintf(time, sizeof(time), "%.3f", ms);
  return "{\"step\": " + std::to_string(step) + ", \"loss\": " + json_number(loss) + named + ", \"ms\": " + time +
         ", \"peak_bytes\": " + std::to_string(session.arena_bytes() + session.kernel_scratch_bytes()) +
         ", \"rss_bytes\": " + std::to_string(peak_rss_bytes()) + device + "}\n";
}

int run(int argc, char** argv) {
  Options o;
  Status st = parse_args(argc, argv, &o);
  if (!st.ok()) {
    if (env_rank_zero()) std::fprintf(stderr, "zero-run: error: %s (see zero-run --help)\n", st.message().c_str());
    return 1;
  }
  if (o.nproc > 1) return launch(argc, argv, o);

  // From the start: MPI_Init itself waits for every rank.
  Watchdog watchdog(o.timeout_s, env_rank());
  watchdog.arm("starting MPI");
  std::unique_ptr<Communicator> comm;
  if (under_mpi()) {
#ifdef ZERO_HAVE_MPI
    st = make_mpi_communicator(&argc, &argv, &comm);
    if (!st.ok()) {
      std::fprintf(stderr, "zero-run: error: %s\n", st.message().c_str());
      return 1;
    }
#endif
  } else {
    comm = make_single_rank_communicator();
  }
  const int rank = comm->rank(), world = comm->size();
  StepBoard board(rank);

  watchdog.arm("loading");
  PlanSummary plan;
  std::vector<Feed> feeds, eval_feeds;
  int64_t eval_batches = 0, eval_rows = 0;
  st = preflight(o, world, &plan, &feeds, &eval_feeds, &eval_batches, &eval_rows);
  if (!all_ok(comm.get(), st)) return 1;

  // A plan compiled with --target=cuda runs on this rank's GPU: device arena,
  // and collectives over NCCL (bootstrapped over `comm`); `comm` stays the
  // host communicator for the launcher's own agreement.
  Communicator* session_comm = comm.get();
  Allocator* session_alloc = default_allocator();
  const Backend* backend = nullptr;
  std::unique_ptr<CudaRank> gpu;
  if (plan.cuda) {
    const CudaModule* cuda = nullptr;
    st = load_cuda_module(&cuda);
    if (st.ok()) {
      CudaRankOptions copt;
      copt.local_rank = local_rank_from_env();
#ifdef ZERO_HAVE_MPI
      if (copt.local_rank < 0 && world > 1) (void)mpi_local_rank(&copt.local_rank);
#endif
      copt.allow_tf32 = o.tf32;
      st = cuda->open_rank(copt, comm.get(), &gpu);
    }
    if (st.ok()) {
      session_comm = gpu->communicator();
      session_alloc = gpu->allocator();
      backend = gpu->backend();
    } else {
      st = st.with_context(o.plan + ": plan targets CUDA but ");
    }
  }
  if (!all_ok(comm.get(), st)) return 1;
  std::unique_ptr<Session> session;
  st = Session::open(o.plan, session_comm, session_alloc, backend, &session);
  if (st.ok()) st = init_params(session.get(), plan, o);
  // --resume: the state, the step and the data position of a checkpoint.
  RunPosition resumed;
  const auto restore_start = std::chrono::steady_clock::now();
  if (st.ok() && !o.resume.empty()) st = resume_run(session.get(), rank, &o, &feeds, &resumed);
  const double restore_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - restore_start).count();
  if (!all_ok(comm.get(), st)) return 1;
  session->set_seed(o.seed);
  allocate_batches(&feeds, rank);
  allocate_batches(&eval_feeds, rank);

  // The log goes to a temporary file beside --log (FILE.tmp-XXXXXX while the
  // run lasts) and replaces FILE when the run ends, also when it fails.
  std::unique_ptr<AtomicFile> log;
  if (rank == 0 && !o.log.empty()) {
    log = std::make_unique<AtomicFile>();
    st = log->open(o.log);
    if (!st.ok()) st = st.with_context("cannot open log file ");
  }
  if (st.ok() && log && !o.resume.empty()) {
    char ms[32];
    std::snprintf(ms, sizeof(ms), "%.3f", restore_ms);
    const std::string line = "{\"step\": " + std::to_string(resumed.step - 1) + ", \"resumed\": \"step-" +
                             std::to_string(resumed.step) + "\", \"restore_ms\": " + ms + "}\n";
    st = log->write(line.data(), line.size());
  }
  if (!all_ok(comm.get(), st)) return 1;
  const bool progress = rank == 0 && isatty(STDERR_FILENO);

  // --eval-data: the evaluation loss after every --eval-every steps and after
  // the last, logged with the index of the step it follows (-1 without
  // steps: the initial parameters).
  const auto evaluate_after = [&](long step) -> Status {
    double eval_loss = 0;
    ZERO_RETURN_IF_ERROR(evaluate(session.get(), &eval_feeds, eval_batches, rank, world, &watchdog, step, &eval_loss));
    if (progress) std::fprintf(stderr, "\nafter step %ld/%ld  eval_loss %.6g\n", step + 1, o.steps, eval_loss);
    if (!log) return Status();
    const std::string line = "{\"step\": " + std::to_string(step) + ", \"eval_loss\": " + json_number(eval_loss) +
                             ", \"eval_rows\": " + std::to_string(eval_rows) + "}\n";
    Status written = log->write(line.data(), line.size());
    return written.ok() ? written : written.with_context("writing log file ");
  };
  if (!o.eval_dir.empty() && o.steps == 0) {
    st = evaluate_after(-1);
    if (!all_ok(comm.get(), st)) {
      if (log) (void)log->commit();
      return 1;
    }
  }

  // Rows a step consumes (of each batched input): the data position a
  // checkpoint records.
  uint64_t rows_per_step = 0;
  for (const Feed& f : feeds)
    if (f.rows > 0) rows_per_step = uint64_t(session->micro_steps()) * uint64_t(world) * uint64_t(f.info.shape[0]);
  const long first = long(resumed.step);
  for (long step = first; step < o.steps; ++step) {
    watchdog.arm("step", step);
    board.publish(step);
    const auto t0 = std::chrono::steady_clock::now();
    if (step == first || !o.synthetic)
      st = bind_feeds(session.get(), &feeds, step - first, resumed.rows, rank, world);
    if (st.ok()) st = session->step();
    float loss = NAN;  // a forward-only plan has none: logged as null
    if (st.ok() && !session->forward_only()) st = session->loss(&loss);
    std::vector<float> metrics;
    if (st.ok()) st = session->read_metrics(&metrics);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (st.ok() && log) {
      const std::string line = log_line(step, loss, metrics, ms, *session, gpu.get());
      st = log->write(line.data(), line.size());
      if (!st.ok()) st = st.with_context("writing log file ");
    }
    const long done = step + 1;
    if (st.ok() && std::isfinite(loss) && !o.eval_dir.empty() &&
        ((o.eval_every && done % o.eval_every == 0) || done == o.steps))
      st = evaluate_after(step);
    if (st.ok() && std::isfinite(loss) && !o.checkpoint_dir.empty() &&
        ((o.checkpoint_every && done % o.checkpoint_every == 0) || done == o.steps)) {
      watchdog.arm("writing the checkpoint after step", step);
      const RunPosition position{done, resumed.rows + uint64_t(done - first) * rows_per_step, o.seed, o.shuffle};
      st = write_checkpoint(*session, comm.get(), o, position, log.get());
    }
    if (!st.ok()) {
      // Other ranks may already wait in a collective: end the whole job.
      if (log) (void)log->commit();
      std::fprintf(stderr, "zero-run: error: rank %d: step %ld: %s\n", rank, step, st.message().c_str());
      std::fflush(stderr);
#ifdef ZERO_HAVE_MPI
      if (world > 1) mpi_abort(1);
#endif
      return 1;
    }
    if (!session->forward_only() && !std::isfinite(loss)) {
      // The loss is the global mean: every rank sees it and stops here, and
      // nothing trained on it is saved.
      if (log) (void)log->commit();
      if (rank == 0)
        std::fprintf(stderr, "zero-run: error: loss is %s at step %ld; stopped without saving parameters or exports\n",
                     std::isnan(loss) ? "NaN" : "infinite", step);
      return 1;
    }
    if (progress && session->forward_only())
      std::fprintf(stderr, "\rstep %ld/%ld  %.2f ms   ", step + 1, o.steps, ms);
    else if (progress)
      std::fprintf(stderr, "\rstep %ld/%ld  loss %.6g  %.2f ms   ", step + 1, o.steps, loss, ms);
  }
  if (progress) std::fputc('\n', stderr);
  if (log) {
    st = log->commit();
    if (!st.ok()) st = st.with_context("writing log file ");
  }

  watchdog.arm("saving outputs and parameters after step", o.steps);
  if (st.ok()) st = save_outputs(session.get(), o, rank);
  const bool ok = all_ok(comm.get(), st);
  watchdog.disarm();
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace zero

int main(int argc, char** argv) {
  // Past a file-size limit a write fails with EFBIG, reported like any other
  // write error, instead of the signal ending the rank.
  signal(SIGXFSZ, SIG_IGN);
  return zero::run(argc, argv);
}
