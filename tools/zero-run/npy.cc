#include "npy.h"

#include <cstring>

namespace zero {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

// Returns the position after `'key':` in the header dict, or npos.
size_t find_key(const std::string& header, const char* key) {
  const std::string k = std::string("'") + key + "'";
  size_t p = header.find(k);
  if (p == std::string::npos) return p;
  p = header.find_first_not_of(' ', p + k.size());
  return p == std::string::npos || header[p] != ':' ? std::string::npos : p + 1;
}

}  // namespace

Status parse_npy(const uint8_t* image, size_t size, const std::string& what, NpyView* view) {
  const auto bad = [&](const std::string& why) {
    return Status::invalid_argument(what + ": not a valid .npy file (" + why + ")");
  };
  if (size < 10 || std::memcmp(image, kMagic, 6) != 0) return bad("missing magic");
  uint64_t header_len = 0, prefix = 0;
  if (image[6] == 1) {
    header_len = uint64_t(image[8]) | uint64_t(image[9]) << 8;
    prefix = 10;
  } else if (image[6] == 2 || image[6] == 3) {
    if (size < 12) return bad("truncated header");
    header_len = uint64_t(image[8]) | uint64_t(image[9]) << 8 | uint64_t(image[10]) << 16 | uint64_t(image[11]) << 24;
    prefix = 12;
  } else {
    return bad("unsupported version " + std::to_string(image[6]));
  }
  if (header_len > size - prefix) return bad("truncated header");
  const std::string header(reinterpret_cast<const char*>(image + prefix), size_t(header_len));

  size_t p = find_key(header, "descr");
  if (p == std::string::npos) return bad("no descr");
  const size_t q1 = header.find('\'', p), q2 = q1 == std::string::npos ? q1 : header.find('\'', q1 + 1);
  if (q2 == std::string::npos) return bad("bad descr");
  const std::string descr = header.substr(q1 + 1, q2 - q1 - 1);
  if (descr == "<f4")
    view->dtype = DType::F32;
  else if (descr == "<i8")
    view->dtype = DType::I64;
  else
    return Status::invalid_argument(what + ": dtype '" + descr + "' is not supported (need '<f4' float32 or '<i8' int64)");

  p = find_key(header, "fortran_order");
  if (p == std::string::npos) return bad("no fortran_order");
  p = header.find_first_not_of(' ', p);
  if (p != std::string::npos && header.compare(p, 4, "True") == 0)
    return Status::invalid_argument(what + ": Fortran-order arrays are not supported (save with C order)");
  if (p == std::string::npos || header.compare(p, 5, "False") != 0) return bad("bad fortran_order");

  p = find_key(header, "shape");
  if (p == std::string::npos) return bad("no shape");
  const size_t open = header.find_first_not_of(' ', p), close = header.find(')', p);
  if (open == std::string::npos || header[open] != '(' || close == std::string::npos) return bad("bad shape");
  view->shape.clear();
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = open + 1; i < close;) {
    if (header[i] == ' ' || header[i] == ',') {
      ++i;
      continue;
    }
    if (header[i] < '0' || header[i] > '9') return bad("bad shape");
    uint64_t d = 0;
    for (; i < close && header[i] >= '0' && header[i] <= '9'; ++i)
      overflow |=
          __builtin_mul_overflow(d, uint64_t(10), &d) || __builtin_add_overflow(d, uint64_t(header[i] - '0'), &d);
    overflow |= d > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel);
    view->shape.push_back(int64_t(d));
  }
  uint64_t bytes = 0;
  if (overflow || __builtin_mul_overflow(numel, uint64_t(dtype_size(view->dtype)), &bytes))
    return Status::invalid_argument(what + ": shape " + header.substr(open, close - open + 1) + " is too large");
  const uint64_t available = size - prefix - header_len;
  if (bytes > available)
    return Status::invalid_argument(what + ": truncated data (shape " + shape_string(view->shape) + " needs " +
                         std::to_string(bytes) + " bytes, the file has " + std::to_string(available) + ")");
  if (bytes < available)
    return Status::invalid_argument(what + ": " + std::to_string(available - bytes) + " bytes after the data of shape " +
                         shape_string(view->shape));
  view->data = image + prefix + header_len;
  view->bytes = bytes;
  return Status();
}

Status NpyFile::open(const std::string& path) {
  ZERO_RETURN_IF_ERROR(file_.open(path, "data file"));
  return parse_npy(file_.data(), file_.size(), path, &view_);
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
  const unsigned char pre[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(header.size() & 0xff), (unsigned char)(header.size() >> 8)};
  AtomicFile file;
  ZERO_RETURN_IF_ERROR(file.open(path));
  ZERO_RETURN_IF_ERROR(file.write(pre, sizeof(pre)));
  ZERO_RETURN_IF_ERROR(file.write(header.data(), header.size()));
  ZERO_RETURN_IF_ERROR(file.write(data, numel * dtype_size(dtype)));
  return file.commit();
}

}  // namespace zero
