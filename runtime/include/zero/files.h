// Files as zero's tools use them. Every file zero writes (plans, reports,
// logs, exports, parameters) goes through AtomicFile, so a failed or
// interrupted write never leaves a truncated file where a good one was;
// plans and datasets are read through MappedFile, so a file larger than
// memory is paged in as it is used.
#ifndef ZERO_FILES_H
#define ZERO_FILES_H

#include <cstddef>
#include <string>

#include "zero/status.h"

namespace zero {

// Writes to a temporary file beside `path` (same directory, so the rename
// cannot cross file systems); commit() flushes and fsyncs it, renames it over
// `path` and fsyncs the directory. Until commit() succeeds `path` is
// untouched; destroying an uncommitted AtomicFile removes the temporary. An
// existing `path` that is not a regular file (a device, a pipe, /dev/stdout)
// is written directly; a symbolic link keeps pointing at the new file.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Fails (naming `path`) when the directory is missing or not writable, or
  // `path` is a directory.
  Status open(const std::string& path);
  // Appends; after a failure every later call fails with the first error.
  Status write(const void* data, size_t size);
  Status commit();
  // Removes the temporary; `path` keeps its old contents (if any).
  void discard();

  const std::string& path() const { return path_; }

 private:
  Status fail(const std::string& what);

  std::string path_, target_, temp_;  // target_: path_ through symbolic links
  int fd_ = -1;
  Status error_;
};

// One-shot form: `path` holds exactly `size` bytes of `data`, or is unchanged.
Status write_file_atomically(const std::string& path, const void* data, size_t size);

// A read-only mapping of a whole regular file.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // `what` names the file's role in errors ("plan", "data file").
  Status open(const std::string& path, const char* what);
  const unsigned char* data() const { return static_cast<const unsigned char*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// The directory a path names a file in: "." for a bare name, "/" at the root.
std::string directory_of(const std::string& path);

// Whether two paths name the same existing file (device and inode), so an
// output can be refused before it would overwrite an input.
bool same_file(const std::string& a, const std::string& b);

}  // namespace zero

#endif  // ZERO_FILES_H
