// log.h — structured JSON logs for cairnd: one object per line on stderr
// (shell; spdlog underneath). Fields are a Json object merged after
// {"ts", "level", "msg"}.
#pragma once

#include <string_view>

#include "model/json.h"

namespace cairn::server {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Sets up the stderr logger; `level` is trace|debug|info|warn|error|off
// (unknown names mean info). Safe to call more than once.
void init_logging(std::string_view level);
void log(LogLevel level, std::string_view msg, const Json& fields = Json());

}  // namespace cairn::server
