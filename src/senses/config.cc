// config.cc — see config.h.
#include "senses/config.h"

namespace cairn::senses {

bool is_reserved_log_kind(std::string_view kind) {
  return kind == "log" || kind.starts_with("log.");
}

}  // namespace cairn::senses
