// status.cc — Status construction and rendering.
#include "model/status.h"

namespace cairn {

std::string_view code_name(Code c) {
  switch (c) {
    case Code::kOk:
      return "ok";
    case Code::kInvalid:
      return "invalid";
    case Code::kNotFound:
      return "not_found";
    case Code::kConflict:
      return "conflict";
    case Code::kForbidden:
      return "forbidden";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kOutcomeUnknown:
      return "outcome_unknown";
    case Code::kTooLarge:
      return "too_large";
    case Code::kInternal:
      return "internal";
  }
  CAIRN_UNREACHABLE();
}

Status::Status(Code code, std::string message)
    : Status(code, std::move(message), std::string(), Json()) {}

Status::Status(Code code, std::string message, std::string reason, Json details) {
  CAIRN_ASSERT_MSG(code != Code::kOk, "an error Status needs a non-ok code");
  rep_ =
      std::make_unique<Rep>(Rep{code, std::move(message), std::move(reason), std::move(details)});
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string_view Status::reason() const {
  if (!rep_) return code_name(Code::kOk);
  if (!rep_->reason.empty()) return rep_->reason;
  return code_name(rep_->code);
}

const Json& Status::details() const {
  static const Json kNull;
  return rep_ ? rep_->details : kNull;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string out(code_name(code()));
  out += ": ";
  out += rep_->message;
  if (!rep_->reason.empty()) {
    out += " (";
    out += rep_->reason;
    out += ")";
  }
  return out;
}

#define CAIRN_STATUS_CTOR(fn, code_value)                                                 \
  Status fn(std::string message, std::string reason, Json details) {                      \
    return Status(code_value, std::move(message), std::move(reason), std::move(details)); \
  }
CAIRN_STATUS_CTOR(invalid, Code::kInvalid)
CAIRN_STATUS_CTOR(not_found, Code::kNotFound)
CAIRN_STATUS_CTOR(conflict, Code::kConflict)
CAIRN_STATUS_CTOR(forbidden, Code::kForbidden)
CAIRN_STATUS_CTOR(unavailable, Code::kUnavailable)
CAIRN_STATUS_CTOR(outcome_unknown, Code::kOutcomeUnknown)
CAIRN_STATUS_CTOR(too_large, Code::kTooLarge)
CAIRN_STATUS_CTOR(internal_error, Code::kInternal)
#undef CAIRN_STATUS_CTOR

}  // namespace cairn
