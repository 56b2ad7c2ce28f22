// status.h — errors as values for every layer of cairn (pure).
//
// A Status is either ok or carries one Code, a human message, an optional
// machine-readable reason (a finer code such as "stale_epoch" that the HTTP
// layer shows as `error.code`) and optional JSON details (e.g. the holder of a
// lease). Ok statuses cost one null pointer.
//
// Each Code tells a caller what to do next; add a code only when callers must
// react differently to it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "model/assert.h"
#include "model/json.h"

namespace cairn {

enum class Code : std::uint8_t {
  kOk = 0,
  // The request is malformed or breaks a rule of the model. Do not retry it
  // unchanged.
  kInvalid,
  // The named thing does not exist (or no longer exists). Do not retry.
  kNotFound,
  // The request lost a race or does not fit the current state (claimed by
  // someone else, stale epoch, failed precondition). Re-read, then decide.
  kConflict,
  // The caller may not do this (not the holder, not the creator). Do not retry.
  kForbidden,
  // A dependency (storage, network) is down. Retry later; nothing was applied.
  kUnavailable,
  // The request may or may not have been applied (e.g. a commit whose
  // acknowledgement was lost). Read back, or retry with the same
  // idempotency key.
  kOutcomeUnknown,
  // A size limit was exceeded. Do not retry unchanged.
  kTooLarge,
  // A bug or a broken invariant inside cairn. Report it.
  kInternal,
};

// "invalid", "not_found", ... ("ok" for kOk).
std::string_view code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string message);
  Status(Code code, std::string message, std::string reason, Json details = Json());

  Status(const Status& o) : rep_(o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr) {}
  Status& operator=(const Status& o) {
    if (this != &o) rep_ = o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok_status() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // Empty for ok.
  const std::string& message() const;
  // The finer machine-readable code; falls back to code_name(code()).
  std::string_view reason() const;
  // Details object (null when none).
  const Json& details() const;

  // "conflict: intent is claimed by a1 (stale_epoch)".
  std::string to_string() const;

  // Marks this status as ignored on purpose.
  void ignore() const {}

 private:
  struct Rep {
    Code code;
    std::string message;
    std::string reason;
    Json details;
  };
  std::unique_ptr<Rep> rep_;
};

// Convenience constructors.
Status invalid(std::string message, std::string reason = {}, Json details = Json());
Status not_found(std::string message, std::string reason = {}, Json details = Json());
Status conflict(std::string message, std::string reason = {}, Json details = Json());
Status forbidden(std::string message, std::string reason = {}, Json details = Json());
Status unavailable(std::string message, std::string reason = {}, Json details = Json());
Status outcome_unknown(std::string message, std::string reason = {}, Json details = Json());
Status too_large(std::string message, std::string reason = {}, Json details = Json());
Status internal_error(std::string message, std::string reason = {}, Json details = Json());

// Either a T or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Status status) : status_(std::move(status)) {
    CAIRN_ASSERT_MSG(!status_.ok(), "Result constructed from an ok Status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  Status take_status() { return std::move(status_); }

  // REQUIRES: ok() (asserted).
  const T& value() const& {
    CAIRN_ASSERT_MSG(ok(), status_.message().c_str());
    return *value_;
  }
  T& value() & {
    CAIRN_ASSERT_MSG(ok(), status_.message().c_str());
    return *value_;
  }
  T&& value() && {
    CAIRN_ASSERT_MSG(ok(), status_.message().c_str());
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace cairn

// Propagates a non-ok Status from an expression returning Status.
#define CAIRN_RETURN_IF_ERROR(expr) \
  do {                              \
    ::cairn::Status _st = (expr);   \
    if (!_st.ok()) [[unlikely]]     \
      return _st;                   \
  } while (false)

#define CAIRN_CONCAT_INNER(a, b) a##b
#define CAIRN_CONCAT(a, b) CAIRN_CONCAT_INNER(a, b)

// `CAIRN_ASSIGN_OR_RETURN(auto x, expr)`: unwraps a Result or returns its Status.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL(CAIRN_CONCAT(_res_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) [[unlikely]]                       \
    return tmp.take_status();                       \
  lhs = std::move(tmp).value()
