// Status: the error channel of the runtime API. Nothing in the runtime throws
// across the API; every fallible call returns a Status whose message is one
// line naming the thing that failed. [[nodiscard]]: an ignored Status is a
// compiler warning (an error in CI); `(void)` marks the deliberate ones.
#ifndef ZERO_STATUS_H
#define ZERO_STATUS_H

#include <string>
#include <utility>

namespace zero {

class [[nodiscard]] Status {
 public:
  Status() = default;  // success
  static Status error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}

  bool failed_ = false;
  std::string message_;
};

#define ZERO_RETURN_IF_ERROR(expr)            \
  do {                                        \
    ::zero::Status zero_status_ = (expr);     \
    if (!zero_status_.ok()) return zero_status_; \
  } while (0)

}  // namespace zero

#endif  // ZERO_STATUS_H
