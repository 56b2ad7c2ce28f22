// log.cc — JSON lines through spdlog (see log.h).
#include "server/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace cairn::server {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  auto l = spdlog::get("cairnd");
  if (!l) {
    l = spdlog::stderr_logger_mt("cairnd");
    l->set_pattern("%v");
    l->flush_on(spdlog::level::info);
  }
  return l;
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

}  // namespace

void init_logging(std::string_view level) {
  auto l = logger();
  const spdlog::level::level_enum lv = spdlog::level::from_str(std::string(level));
  l->set_level(lv);
}

void log(LogLevel level, std::string_view msg, const Json& fields) {
  auto l = logger();
  spdlog::level::level_enum lv = spdlog::level::info;
  std::string_view name = "info";
  switch (level) {
    case LogLevel::kDebug:
      lv = spdlog::level::debug;
      name = "debug";
      break;
    case LogLevel::kInfo:
      break;
    case LogLevel::kWarn:
      lv = spdlog::level::warn;
      name = "warn";
      break;
    case LogLevel::kError:
      lv = spdlog::level::err;
      name = "error";
      break;
  }
  if (!l->should_log(lv)) return;
  Json o(JsonObject{{"ts", Json(iso_now())}, {"level", Json(name)}, {"msg", Json(msg)}});
  if (const JsonObject* f = fields.object_if()) {
    for (const auto& [k, v] : *f) o.set(k, v);
  }
  l->log(lv, to_json(o));
}

}  // namespace cairn::server
