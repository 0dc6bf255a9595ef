// Finds and loads libzero_cuda.so at run time (zero/cuda_module.h).
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <mutex>
#include <string>

#include "zero/cuda_module.h"

namespace zero {

Status load_cuda_module(const CudaModule** module) {
  static std::once_flag once;
  static const CudaModule* loaded = nullptr;
  static std::string error;
  std::call_once(once, [] {
    std::string tried;
    void* handle = nullptr;
    // Installed and build layouts alike: bin/zero-run next to lib/.
    char exe[PATH_MAX];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
      std::string dir(exe, size_t(n));
      dir.resize(dir.rfind('/'));
      const std::string path = dir + "/../lib/libzero_cuda.so";
      if (access(path.c_str(), F_OK) == 0) {
        handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) tried = dlerror();
      }
    }
    if (!handle && tried.empty()) {
      handle = dlopen("libzero_cuda.so", RTLD_NOW | RTLD_LOCAL);
      if (!handle) tried = dlerror();
    }
    if (!handle) {
      error = "cannot load the CUDA backend: " + tried;
      return;
    }
    using Entry = const CudaModule* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "zero_cuda_module"));
    const CudaModule* m = entry ? entry() : nullptr;
    if (!m || m->abi != ZERO_CUDA_MODULE_ABI) {
      error = "libzero_cuda.so was built from other runtime sources than this program (rebuild both)";
      return;
    }
    loaded = m;  // never unloaded: kernels and NCCL threads live until exit
  });
  if (!loaded) return Status::unavailable(error);
  *module = loaded;
  return Status();
}

}  // namespace zero
