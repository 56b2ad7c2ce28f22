// config.cc — see config.h.
#include "senses/config.h"

namespace cairn::senses {

bool operator==(const SenseConfig& a, const SenseConfig& b) {
  return a.name == b.name && a.argv == b.argv && a.shell == b.shell &&
         a.interval_ms == b.interval_ms && a.on == b.on && a.throttle_ms == b.throttle_ms &&
         a.timeout_ms == b.timeout_ms && a.grace_ms == b.grace_ms &&
         a.migrations_dir == b.migrations_dir && a.group == b.group && a.workdir == b.workdir;
}

bool operator==(const WorkflowConfig& a, const WorkflowConfig& b) {
  return a.name == b.name && a.kind == b.kind && a.lane == b.lane && a.spec == b.spec &&
         a.priority == b.priority && a.concurrency == b.concurrency && a.overflow == b.overflow &&
         a.max_queue == b.max_queue;
}

bool operator==(const ReflexConfig& a, const ReflexConfig& b) {
  if (a.match.size() != b.match.size()) return false;
  for (std::size_t i = 0; i < a.match.size(); ++i) {
    if (predicate_to_json(a.match[i]) != predicate_to_json(b.match[i])) return false;
  }
  return a.name == b.name && a.on == b.on && a.throttle_ms == b.throttle_ms &&
         a.run_sense == b.run_sense && a.start_workflow == b.start_workflow;
}

bool is_reserved_log_kind(std::string_view kind) {
  return kind == "log" || kind.starts_with("log.");
}

}  // namespace cairn::senses
