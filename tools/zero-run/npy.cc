#include "npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace zero {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileCloser>;

// Returns the text after `'key':` in the header dict, or npos.
size_t find_key(const std::string& header, const char* key) {
  const std::string k = std::string("'") + key + "'";
  size_t p = header.find(k);
  if (p == std::string::npos) return p;
  p = header.find(':', p + k.size());
  return p == std::string::npos ? p : p + 1;
}

}  // namespace

Status read_npy(const std::string& path, NpyArray* array) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Status::error(path + ": cannot open: " + std::strerror(errno));
  const auto bad = [&](const std::string& why) { return Status::error(path + ": not a valid .npy file (" + why + ")"); };
  unsigned char pre[8];
  if (std::fread(pre, 1, 8, f.get()) != 8 || std::memcmp(pre, kMagic, 6) != 0) return bad("missing magic");
  size_t header_len = 0;
  if (pre[6] == 1) {
    unsigned char l[2];
    if (std::fread(l, 1, 2, f.get()) != 2) return bad("truncated header");
    header_len = size_t(l[0]) | size_t(l[1]) << 8;
  } else if (pre[6] == 2 || pre[6] == 3) {
    unsigned char l[4];
    if (std::fread(l, 1, 4, f.get()) != 4) return bad("truncated header");
    header_len = size_t(l[0]) | size_t(l[1]) << 8 | size_t(l[2]) << 16 | size_t(l[3]) << 24;
  } else {
    return bad("unsupported version " + std::to_string(pre[6]));
  }
  if (header_len > (1u << 20)) return bad("header too large");
  std::string header(header_len, '\0');
  if (std::fread(&header[0], 1, header_len, f.get()) != header_len) return bad("truncated header");

  size_t p = find_key(header, "descr");
  if (p == std::string::npos) return bad("no descr");
  size_t q1 = header.find('\'', p), q2 = q1 == std::string::npos ? q1 : header.find('\'', q1 + 1);
  if (q2 == std::string::npos) return bad("bad descr");
  const std::string descr = header.substr(q1 + 1, q2 - q1 - 1);
  if (descr == "<f4") array->dtype = DType::F32;
  else if (descr == "<i8") array->dtype = DType::I64;
  else return Status::error(path + ": dtype '" + descr + "' is not supported (need '<f4' float32 or '<i8' int64)");

  p = find_key(header, "fortran_order");
  if (p == std::string::npos) return bad("no fortran_order");
  if (header.compare(header.find_first_not_of(' ', p), 4, "True") == 0)
    return Status::error(path + ": Fortran-order arrays are not supported (save with C order)");

  p = find_key(header, "shape");
  if (p == std::string::npos) return bad("no shape");
  size_t open = header.find('(', p), close = header.find(')', p);
  if (open == std::string::npos || close == std::string::npos || close < open) return bad("bad shape");
  array->shape.clear();
  uint64_t numel = 1;
  const std::string dims = header.substr(open + 1, close - open - 1);
  for (size_t i = 0; i < dims.size();) {
    if (dims[i] == ' ' || dims[i] == ',') {
      ++i;
      continue;
    }
    char* end = nullptr;
    long long d = std::strtoll(dims.c_str() + i, &end, 10);
    if (end == dims.c_str() + i || d < 0 || __builtin_mul_overflow(numel, uint64_t(d), &numel)) return bad("bad shape");
    array->shape.push_back(d);
    i = size_t(end - dims.c_str());
  }
  const uint64_t bytes = numel * dtype_size(array->dtype);
  array->data.resize(bytes);
  if (std::fread(array->data.data(), 1, bytes, f.get()) != bytes)
    return Status::error(path + ": truncated data (expected " + std::to_string(bytes) + " bytes for shape " +
                         shape_string(array->shape) + ")");
  return Status();
}

Status write_npy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data) {
  std::string dims;  // Python tuple syntax: "2, 3", "5," or ""
  uint64_t numel = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dims += (i ? ", " : "") + std::to_string(shape[i]);
    numel *= uint64_t(shape[i]);
  }
  if (shape.size() == 1) dims += ',';
  std::string header = std::string("{'descr': '") + (dtype == DType::I64 ? "<i8" : "<f4") +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad so the data starts at a multiple of 64 bytes, newline-terminated.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) return Status::error(path + ": cannot write: " + std::strerror(errno));
  const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(header.size() & 0xff),
                                 (unsigned char)(header.size() >> 8)};
  const size_t bytes = numel * dtype_size(dtype);
  if (std::fwrite(pre, 1, 10, f.get()) != 10 || std::fwrite(header.data(), 1, header.size(), f.get()) != header.size() ||
      (bytes && std::fwrite(data, 1, bytes, f.get()) != bytes) || std::fflush(f.get()) != 0)
    return Status::error(path + ": write failed: " + std::strerror(errno));
  return Status();
}

}  // namespace zero
