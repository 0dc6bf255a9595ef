#include "zero/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace zero {
namespace {

std::string errno_text() { return std::strerror(errno); }

}  // namespace

AtomicFile::~AtomicFile() { discard(); }

Status AtomicFile::open(const std::string& path) {
  discard();
  path_ = path;
  error_ = Status();
  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return fail("cannot write: it is a directory");
  if ((exists && !S_ISREG(st.st_mode)) || path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0) {
    // A device, a pipe or a descriptor (/dev/null, /dev/stdout) is written
    // as it is: a rename would replace the device node or the link.
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) return fail("cannot write: " + errno_text());
    return Status();
  }
  // Through a symbolic link, the file it names is replaced, not the link.
  std::string target = path;
  if (exists) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real) target = real;
    std::free(real);
  }
  target_ = target;
  temp_ = target + ".tmp-XXXXXX";
  fd_ = ::mkstemp(&temp_[0]);
  if (fd_ < 0) {
    temp_.clear();
    return fail("cannot write: " + errno_text());
  }
  // mkstemp creates 0600; an output gets the usual permissions.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  (void)::fchmod(fd_, 0666 & ~mask);
  return Status();
}

Status AtomicFile::fail(const std::string& what) {
  const int e = errno;  // a full disk or a file-size limit is a resource, not a broken system
  const StatusCode code = e == ENOSPC || e == EFBIG || e == EDQUOT ? StatusCode::kResourceExhausted
                                                                   : StatusCode::kUnavailable;
  if (error_.ok()) error_ = Status(code, path_ + ": " + what);
  discard();
  return error_;
}

Status AtomicFile::write(const void* data, size_t size) {
  if (!error_.ok()) return error_;
  if (fd_ < 0) return fail("write to a file that is not open");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write failed: " + (n < 0 ? errno_text() : std::string("no progress")));
    p += n;
    size -= size_t(n);
  }
  return Status();
}

Status AtomicFile::commit() {
  if (!error_.ok()) return error_;
  if (fd_ < 0) return fail("commit of a file that is not open");
  const int fd = fd_;
  fd_ = -1;
  if (temp_.empty()) {  // written in place: a device
    if (::close(fd) != 0) return fail("write failed (close): " + errno_text());
    return Status();
  }
  if (::fsync(fd) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    return fail("write failed (fsync): " + why);
  }
  if (::close(fd) != 0) return fail("write failed (close): " + errno_text());
  if (::rename(temp_.c_str(), target_.c_str()) != 0) return fail("cannot replace: " + errno_text());
  temp_.clear();
  // The rename is durable once the directory entry is.
  const int dir = ::open(directory_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return Status();
}

void AtomicFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

Status write_file_atomically(const std::string& path, const void* data, size_t size) {
  AtomicFile file;
  ZERO_RETURN_IF_ERROR(file.open(path));
  ZERO_RETURN_IF_ERROR(file.write(data, size));
  return file.commit();
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

Status MappedFile::open(const std::string& path, const char* what) {
  if (data_) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const StatusCode code = errno == ENOENT ? StatusCode::kNotFound : StatusCode::kUnavailable;
    return Status(code, path + ": cannot open " + what + ": " + errno_text());
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid_argument(path + ": " + what + " is not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return Status::invalid_argument(path + ": " + what + " is empty");
  }
  void* p = ::mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Status::unavailable(path + ": cannot map " + what + ": " + errno_text());
  data_ = p;
  size_ = size_t(st.st_size);
  return Status();
}

std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace zero
