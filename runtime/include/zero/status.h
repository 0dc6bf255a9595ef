// Status: the error channel of the runtime API. Nothing in the runtime throws
// across the API; every fallible call returns a Status whose message is one
// line naming the thing that failed and whose code says what kind of failure
// it is, for callers that act on the kind (report a bad input, free memory,
// retry on another device). [[nodiscard]]: an ignored Status is a compiler
// warning (an error in CI); `(void)` marks the deliberate ones.
#ifndef ZERO_STATUS_H
#define ZERO_STATUS_H

#include <cstdint>
#include <string>
#include <utility>

namespace zero {

// The kinds of failure the runtime reports (a subset of absl's and IREE's).
enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,     // malformed input: a plan, a data file, an option, a tensor's shape
  kNotFound,            // a named file, input, output or parameter that does not exist
  kFailedPrecondition,  // valid input this run cannot take (another world size, build, plan kind)
  kResourceExhausted,   // memory (the arena, a device allocation) or a size limit
  kOutOfRange,          // data found out of range while running (an index, a label, the loss)
  kUnavailable,         // the system failed us: I/O, a device, CUDA, NCCL, MPI
  kInternal,            // an invariant of zero itself broke
};

// "invalid argument", "not found", ...
const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // success
  // code must not be kOk.
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The same failure with `context` ("file.zplan: ") before its message.
  Status with_context(const std::string& context) const { return ok() ? Status() : Status(code_, context + message_); }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

#define ZERO_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::zero::Status zero_status_ = (expr);        \
    if (!zero_status_.ok()) return zero_status_; \
  } while (0)

}  // namespace zero

#endif  // ZERO_STATUS_H
