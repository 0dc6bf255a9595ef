#include "checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "zero/files.h"

namespace zero {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string rank_file(int rank) {
  char name[32];
  std::snprintf(name, sizeof(name), "rank-%05d.bin", rank);
  return name;
}

std::string step_dir_name(int64_t step) { return "step-" + std::to_string(step); }

uint32_t crc32_of(uint32_t crc, const uint8_t* data, size_t size) {
  // zlib's crc32 takes at most 4 GiB a call.
  while (size > 0) {
    const uInt chunk = uInt(std::min<size_t>(size, 1u << 30));
    crc = uint32_t(crc32(crc, data, chunk));
    data += chunk;
    size -= chunk;
  }
  return crc;
}

// The elements of a tensor of `numel` that writer rank `rank` of `world`
// stores in the checkpoint: a slice of `slice` elements of the flattened
// tensor, or the whole tensor for per-rank model state.
struct Slice {
  uint64_t begin, count;
};
Slice slice_of(uint64_t numel, uint64_t slice, bool per_rank, int rank) {
  if (per_rank) return {0, numel};
  const uint64_t begin = std::min(numel, uint64_t(rank) * slice);
  return {begin, std::min(slice, numel - begin)};
}

// How many elements each rank writes of a state tensor: its shard when the
// plan shards it, else an equal share of the flattened tensor.
uint64_t slice_numel(const StateTensor& t, int world) {
  if (t.sharded) return t.shard_numel;
  return (t.numel() + uint64_t(world) - 1) / uint64_t(world);
}

const char* dtype_key(DType dtype) { return dtype == DType::F32 ? "float32" : "int64"; }

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status::unavailable(dir + ": cannot open directory: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::unavailable(dir + ": fsync failed: " + std::strerror(errno));
  return Status();
}

// Every rank's status after a phase: the first failure (this rank's own if
// it failed), so that all ranks return alike. Collective.
Status agree(Communicator* comm, const Status& mine, const char* phase) {
  std::vector<float> flags(size_t(comm->size()));
  const float flag = mine.ok() ? 0.f : 1.f;
  Status st = comm->all_gather(&flag, flags.data(), 1);
  if (!st.ok()) return st;
  if (!mine.ok()) return mine;
  for (size_t r = 0; r < flags.size(); ++r)
    if (flags[r] != 0.f) return Status::unavailable("rank " + std::to_string(r) + " failed " + phase);
  return Status();
}

// This rank's share of every state tensor, back to back (the manifest's
// layout), and its CRC-32.
Status write_rank_file(const Session& session, int rank, int world, const std::string& path, uint64_t* bytes,
                       uint32_t* crc) {
  AtomicFile file;
  ZERO_RETURN_IF_ERROR(file.open(path));
  *bytes = 0;
  *crc = uint32_t(crc32(0, nullptr, 0));
  std::vector<uint8_t> stored;
  for (size_t i = 0; i < session.state().size(); ++i) {
    const StateTensor& t = session.state()[i];
    ZERO_RETURN_IF_ERROR(session.read_state(i, &stored));
    const size_t element = dtype_size(t.dtype);
    const bool per_rank = t.kind == StateTensor::Kind::ModelState;
    const Slice s = slice_of(t.numel(), slice_numel(t, world), per_rank, rank);
    // A shard holds the slice from its start; a whole tensor at its offset.
    const uint8_t* data = stored.data() + (t.sharded ? 0 : s.begin * element);
    const size_t size = size_t(s.count) * element;
    ZERO_RETURN_IF_ERROR(file.write(data, size));
    *crc = crc32_of(*crc, data, size);
    *bytes += size;
  }
  return file.commit();
}

json manifest_of(const Session& session, int world, const RunPosition& position,
                 const std::vector<uint32_t>& crcs) {
  json tensors = json::array();
  std::vector<uint64_t> offsets(size_t(world), 0);
  for (const StateTensor& t : session.state()) {
    const bool per_rank = t.kind == StateTensor::Kind::ModelState;
    const uint64_t slice = slice_numel(t, world);
    json at = json::array();
    for (int r = 0; r < world; ++r) {
      at.push_back(offsets[size_t(r)]);
      offsets[size_t(r)] += slice_of(t.numel(), slice, per_rank, r).count * dtype_size(t.dtype);
    }
    tensors.push_back({{"name", t.name},
                       {"kind", state_kind_name(t.kind)},
                       {"dtype", dtype_key(t.dtype)},
                       {"shape", t.shape},
                       {"per_rank", per_rank},
                       {"slice", slice},
                       {"offsets", at}});
  }
  json files = json::array();
  for (int r = 0; r < world; ++r)
    files.push_back({{"name", rank_file(r)}, {"bytes", offsets[size_t(r)]}, {"crc32", crcs[size_t(r)]}});
  return {{"format", "zero-checkpoint"},
          {"version", kCheckpointFormatVersion},
          {"model", model_identity(session)},
          {"training", session.training_config()},
          {"precision", "fp32"},
          {"world_size", world},
          {"zero_stage", session.zero_stage()},
          {"step", position.step},
          {"rows", position.rows},
          {"seed", position.seed},
          {"shuffle", position.shuffle},
          {"tensors", tensors},
          {"files", files}};
}

// The checkpoints under `dir` (step-S with a manifest), oldest first.
std::vector<int64_t> complete_checkpoints(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.size() == 5) continue;
    if (!std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    if (!fs::exists(entry.path() / "manifest.json", ec)) continue;
    steps.push_back(std::stoll(name.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// Rank 0's part once every rank file is written: the manifest, the rename
// into place, `latest`, and the removal of old checkpoints.
Status publish(const Session& session, int world, const std::string& dir, const std::string& partial,
               const RunPosition& position, const std::vector<uint32_t>& crcs, int keep) {
  const std::string text = manifest_of(session, world, position, crcs).dump(1) + "\n";
  ZERO_RETURN_IF_ERROR(write_file_atomically(partial + "/manifest.json", text.data(), text.size()));
  ZERO_RETURN_IF_ERROR(fsync_dir(partial));
  const std::string final_dir = dir + "/" + step_dir_name(position.step);
  std::error_code ec;
  if (fs::exists(final_dir, ec)) {
    // The same step written again (a rerun): the new one replaces it.
    const std::string old = dir + "/." + step_dir_name(position.step) + ".old";
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    if (ec) return Status::unavailable(final_dir + ": cannot move aside: " + ec.message());
    fs::rename(partial, final_dir, ec);
    fs::remove_all(old, ec);
  } else {
    fs::rename(partial, final_dir, ec);
  }
  if (ec) return Status::unavailable(final_dir + ": cannot rename the checkpoint into place: " + ec.message());
  ZERO_RETURN_IF_ERROR(fsync_dir(dir));
  const std::string latest = step_dir_name(position.step) + "\n";
  ZERO_RETURN_IF_ERROR(write_file_atomically(dir + "/latest", latest.data(), latest.size()));
  if (keep > 0) {
    std::vector<int64_t> steps = complete_checkpoints(dir);
    steps.erase(std::remove(steps.begin(), steps.end(), position.step), steps.end());
    for (size_t i = 0; i + size_t(keep) - 1 < steps.size(); ++i) fs::remove_all(dir + "/" + step_dir_name(steps[i]), ec);
  }
  return Status();
}

Status read_manifest(const std::string& checkpoint, json* manifest) {
  const std::string path = checkpoint + "/manifest.json";
  std::ifstream in(path);
  if (!in)
    return Status::not_found(checkpoint + ": not a complete checkpoint (no manifest.json)");
  try {
    *manifest = json::parse(in);
    if (manifest->value("format", "") != "zero-checkpoint")
      return Status::invalid_argument(path + ": not a zero checkpoint manifest");
    if (manifest->at("version").get<int>() != kCheckpointFormatVersion)
      return Status::failed_precondition(path + ": checkpoint format version " +
                                         std::to_string(manifest->at("version").get<int>()) +
                                         " is not supported (zero-run reads " +
                                         std::to_string(kCheckpointFormatVersion) + ")");
  } catch (const json::exception& e) {
    return Status::invalid_argument(path + ": corrupt manifest: " + e.what());
  }
  return Status();
}

// A writer rank's file, mapped and checked against its size and CRC-32.
Status open_rank_file(const std::string& checkpoint, const json& manifest, int rank, MappedFile* file) {
  const json& entry = manifest.at("files").at(size_t(rank));
  const std::string path = checkpoint + "/" + entry.at("name").get<std::string>();
  if (access(path.c_str(), F_OK) != 0) return Status::not_found(path + ": missing checkpoint file");
  ZERO_RETURN_IF_ERROR(file->open(path, "checkpoint file"));
  if (file->size() != entry.at("bytes").get<uint64_t>())
    return Status::invalid_argument(path + ": " + std::to_string(file->size()) + " bytes, the manifest says " +
                                    std::to_string(entry.at("bytes").get<uint64_t>()));
  if (crc32_of(uint32_t(crc32(0, nullptr, 0)), file->data(), file->size()) != entry.at("crc32").get<uint32_t>())
    return Status::invalid_argument(path + ": checksum mismatch (corrupt checkpoint file)");
  return Status();
}

}  // namespace

std::string model_identity(const Session& session) {
  size_t size = 0;
  const uint8_t* model = session.onnx_model(&size);
  uint32_t crc = crc32_of(uint32_t(crc32(0, nullptr, 0)), model, size);
  for (const StateTensor& t : session.state()) {
    if (t.kind != StateTensor::Kind::Parameter && t.kind != StateTensor::Kind::ModelState) continue;
    const std::string key = t.name + shape_string(t.shape);
    crc = crc32_of(crc, reinterpret_cast<const uint8_t*>(key.data()), key.size());
  }
  char hex[16];
  std::snprintf(hex, sizeof(hex), "%08x", crc);
  return hex;
}

Status save_checkpoint(const Session& session, Communicator* comm, const std::string& dir,
                       const RunPosition& position, int keep, uint64_t* rank_bytes) {
  const int rank = comm->rank(), world = comm->size();
  const std::string partial = dir + "/." + step_dir_name(position.step) + ".partial";
  Status st;
  if (rank == 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!ec) fs::remove_all(partial, ec);  // a write that was killed
    if (!ec) fs::create_directory(partial, ec);
    if (ec) st = Status::unavailable(partial + ": cannot create the checkpoint directory: " + ec.message());
  }
  ZERO_RETURN_IF_ERROR(agree(comm, st, "creating the checkpoint directory"));
  uint32_t crc = 0;
  st = write_rank_file(session, rank, world, partial + "/" + rank_file(rank), rank_bytes, &crc);
  // Test hook: a run killed in the middle of writing this checkpoint (the
  // rank files written, the manifest not), as a crash would leave it.
  if (const char* kill_at = std::getenv("ZERO_RUN_TEST_KILL_IN_CHECKPOINT"))
    if (rank == 0 && std::to_string(position.step) == kill_at) std::raise(SIGKILL);
  ZERO_RETURN_IF_ERROR(agree(comm, st, "writing its checkpoint file"));
  // CRCs travel as two exact 16-bit halves over the float all-gather.
  const float halves[2] = {float(crc >> 16), float(crc & 0xffff)};
  std::vector<float> gathered(size_t(world) * 2);
  ZERO_RETURN_IF_ERROR(comm->all_gather(halves, gathered.data(), 2));
  std::vector<uint32_t> crcs(static_cast<size_t>(world));
  for (size_t r = 0; r < crcs.size(); ++r)
    crcs[r] = uint32_t(gathered[2 * r]) << 16 | uint32_t(gathered[2 * r + 1]);
  if (rank == 0) st = publish(session, world, dir, partial, position, crcs, keep);
  return agree(comm, st, "publishing the checkpoint");
}

Status find_checkpoint(const std::string& path, std::string* checkpoint) {
  std::ifstream latest(path + "/latest");
  std::string name;
  if (latest && std::getline(latest, name) && !name.empty()) {
    if (name.find('/') != std::string::npos || name == "." || name == "..")
      return Status::invalid_argument(path + "/latest: names no checkpoint directory ('" + name + "')");
    *checkpoint = path + "/" + name;
  } else {
    *checkpoint = path;
  }
  struct stat st;
  if (stat(checkpoint->c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::not_found(*checkpoint + ": no checkpoint directory");
  return Status();
}

Status load_checkpoint(Session* session, int rank, const std::string& checkpoint, bool override_config,
                       RunPosition* position) {
  json manifest;
  ZERO_RETURN_IF_ERROR(read_manifest(checkpoint, &manifest));
  const std::string where = checkpoint + ": ";
  try {
    if (manifest.at("model").get<std::string>() != model_identity(*session))
      return Status::failed_precondition(where + "a checkpoint of another model (model " +
                                         manifest.at("model").get<std::string>() + ", the plan's " +
                                         model_identity(*session) + ")");
    const std::string training = manifest.at("training").get<std::string>();
    if (!override_config && training != session->training_config())
      return Status::failed_precondition(where + "trained with '" + training + "', the plan with '" +
                                         session->training_config() +
                                         "' (--resume-override continues with the plan's)");
    const int writers = manifest.at("world_size").get<int>();
    if (writers < 1 || size_t(writers) != manifest.at("files").size())
      return Status::invalid_argument(where + "manifest: world_size and files disagree");
    const int world = session->world_size();
    std::vector<MappedFile> files(static_cast<size_t>(writers));
    std::vector<bool> opened(static_cast<size_t>(writers), false);
    const auto file = [&](int r) -> Status {
      if (!opened[size_t(r)]) ZERO_RETURN_IF_ERROR(open_rank_file(checkpoint, manifest, r, &files[size_t(r)]));
      opened[size_t(r)] = true;
      return Status();
    };
    const json& tensors = manifest.at("tensors");
    for (size_t i = 0; i < session->state().size(); ++i) {
      const StateTensor& t = session->state()[i];
      const auto entry = std::find_if(tensors.begin(), tensors.end(),
                                      [&](const json& e) { return e.at("name").get<std::string>() == t.name; });
      if (entry == tensors.end())
        return Status::failed_precondition(where + "has no state '" + t.name + "' (" + state_kind_name(t.kind) +
                                           ") of the plan");
      if (entry->at("shape").get<std::vector<int64_t>>() != t.shape ||
          entry->at("dtype").get<std::string>() != dtype_key(t.dtype))
        return Status::failed_precondition(where + "state '" + t.name + "' is " + entry->at("dtype").get<std::string>() +
                                           " " + shape_string(entry->at("shape").get<std::vector<int64_t>>()) +
                                           ", the plan's " + dtype_key(t.dtype) + " " + shape_string(t.shape));
      const uint64_t numel = t.numel(), element = dtype_size(t.dtype);
      const bool per_rank = entry->at("per_rank").get<bool>();
      const uint64_t slice = entry->at("slice").get<uint64_t>();
      // What this rank stores: its shard (zero past the end) or everything.
      const uint64_t begin = t.sharded ? uint64_t(rank) * t.shard_numel : 0;
      const uint64_t stored = t.sharded ? t.shard_numel : numel;
      std::vector<uint8_t> bytes(size_t(stored * element), 0);
      if (per_rank) {
        // Model state as each rank trained it; rank 0's seeds new ranks.
        const int source = writers == world ? rank : 0;
        ZERO_RETURN_IF_ERROR(file(source));
        const uint64_t offset = entry->at("offsets").at(size_t(source)).get<uint64_t>();
        if (offset + numel * element > files[size_t(source)].size())
          return Status::invalid_argument(where + "state '" + t.name + "' lies outside its file");
        std::memcpy(bytes.data(), files[size_t(source)].data() + offset, size_t(numel * element));
      } else {
        for (int q = 0; q < writers; ++q) {
          const Slice s = slice_of(numel, slice, false, q);
          const uint64_t lo = std::max(s.begin, begin), hi = std::min(s.begin + s.count, begin + stored);
          if (lo >= hi) continue;
          ZERO_RETURN_IF_ERROR(file(q));
          const uint64_t offset = entry->at("offsets").at(size_t(q)).get<uint64_t>() + (lo - s.begin) * element;
          if (offset + (hi - lo) * element > files[size_t(q)].size())
            return Status::invalid_argument(where + "state '" + t.name + "' lies outside its file");
          std::memcpy(bytes.data() + (lo - begin) * element, files[size_t(q)].data() + offset,
                      size_t((hi - lo) * element));
        }
      }
      ZERO_RETURN_IF_ERROR(session->write_state(i, bytes.data(), bytes.size()));
    }
    position->step = manifest.at("step").get<int64_t>();
    position->rows = manifest.at("rows").get<uint64_t>();
    position->seed = manifest.at("seed").get<uint64_t>();
    position->shuffle = manifest.at("shuffle").get<bool>();
  } catch (const json::exception& e) {
    return Status::invalid_argument(where + "corrupt manifest: " + e.what());
  }
  return Status();
}

}  // namespace zero
