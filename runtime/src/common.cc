// Small shared pieces of the public API: dtypes, the default allocator and
// the single-rank communicator.
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backend.h"
#include "zero/runtime.h"

namespace zero {

size_t dtype_size(DType dtype) { return dtype == DType::I64 ? 8 : 4; }

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kFailedPrecondition: return "failed precondition";
    case StatusCode::kResourceExhausted: return "resource exhausted";
    case StatusCode::kOutOfRange: return "out of range";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

const char* dtype_name(DType dtype) { return dtype == DType::I64 ? "int64" : "float32"; }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string byte_size_string(uint64_t bytes) {
  char text[64];
  if (bytes < (uint64_t(1) << 20))
    std::snprintf(text, sizeof(text), "%llu bytes", (unsigned long long)bytes);
  else
    std::snprintf(text, sizeof(text), "%.2f GiB (%llu bytes)", double(bytes) / double(uint64_t(1) << 30),
                  (unsigned long long)bytes);
  return text;
}

uint64_t host_memory_available() {
  FILE* meminfo = std::fopen("/proc/meminfo", "r");
  if (!meminfo) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof(line), meminfo))
    if (std::sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  std::fclose(meminfo);
  return uint64_t(kib) * 1024;
}

uint64_t Backend::available_memory() const { return host_memory_available(); }

std::string tensor_shape_string(const Tensor& t) {
  return shape_string(std::vector<int64_t>(t.dims, t.dims + t.ndim));
}

namespace {

class HostAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, size_t alignment) override {
    // aligned_alloc wants a size that is a multiple of the alignment.
    size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    return std::aligned_alloc(alignment, rounded ? rounded : alignment);
  }
  void deallocate(void* ptr) override { std::free(ptr); }
};

class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  // With one rank, sum and mean are both the identity.
  Status all_reduce(const float* in, float* out, size_t count, Reduction) override {
    return copy(in, out, count);
  }
  Status reduce_scatter(const float* in, float* out, size_t count, Reduction) override {
    return copy(in, out, count);
  }
  Status all_gather(const float* in, float* out, size_t count) override { return copy(in, out, count); }

 private:
  static Status copy(const float* in, float* out, size_t count) {
    if (in != out) std::memmove(out, in, count * sizeof(float));
    return Status();
  }
};

}  // namespace

Allocator* default_allocator() {
  static HostAllocator* allocator = new HostAllocator();
  return allocator;
}

std::unique_ptr<Communicator> make_single_rank_communicator() {
  return std::make_unique<SingleRankCommunicator>();
}

int local_rank_from_env() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"}) {
    const char* v = std::getenv(name);
    if (v && *v) {
      char* end = nullptr;
      long r = std::strtol(v, &end, 10);
      if (*end == '\0' && r >= 0 && r < INT_MAX) return int(r);
    }
  }
  return -1;
}

}  // namespace zero
