// config.h — what the observation runtime runs (shell): senses, workflows and
// reflexes, read from cairn.yaml (server/observe_config.h parses and
// validates them; docs/senses.md describes every field).
//
//   senses.<name>     a program cairn runs on an interval and/or when facts
//                     of given kinds arrive; its output becomes a signal fact
//                     of kind signal.<name>
//   workflows.<name>  an intent template plus a concurrency limit and an
//                     overflow policy
//   reflexes          "when a fact of kind K (matching predicates) arrives,
//                     run sense S / start workflow W", with a throttle
//
// Durations are milliseconds here; the file spells them "250ms", "5s",
// "10m", "1h", "1d".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/json.h"
#include "model/predicate.h"

namespace cairn::senses {

struct SenseConfig {
  std::string name;  // [a-z0-9_-], 1..64 bytes: also its database's file name
  // Exactly one of these is set: `argv` for a list command (argv[0] is looked
  // up in PATH), `shell` for a string run as /bin/sh -c <shell>.
  std::vector<std::string> argv;
  std::string shell;
  std::int64_t interval_ms = 0;  // 0: no schedule (runs on triggers only)
  std::vector<std::string> on;   // fact kinds whose arrival triggers a run
  std::int64_t throttle_ms = 0;  // at most one run per window; 0: none
  std::int64_t timeout_ms = 30'000;
  std::int64_t grace_ms = 5'000;  // after SIGTERM, before SIGKILL
  // Absolute path of a directory of *.sql files applied in name order, each
  // once (the database's _migrations journal); empty: none.
  std::string migrations_dir;
  // Senses of one group see each other's databases read-only.
  std::string group = "default";
  std::size_t line = 0;  // where it is defined in the file (for messages)
};

enum class Overflow : std::uint8_t { kDrop, kQueue };

struct WorkflowConfig {
  std::string name;
  // The intent template of every run.
  std::string kind;
  std::string lane = "default";
  Json spec = Json::object();
  std::int64_t priority = 0;
  // Runs active at once (an intent that is not terminal).
  std::int64_t concurrency = 1;
  // drop: a run that would exceed `concurrency` is refused (status dropped);
  // queue: it waits, at most max_queue of them, the oldest dropped when full.
  Overflow overflow = Overflow::kQueue;
  std::int64_t max_queue = 100;
  std::size_t line = 0;
};

struct ReflexConfig {
  std::string name;              // from the file, or "reflex-<n>" (its position, from 1)
  std::string on;                // the fact kind that fires it
  std::vector<Predicate> match;  // all must hold on the fact's content
  std::int64_t throttle_ms = 0;  // at most one firing per window; 0: none
  // Exactly one of these is set.
  std::string run_sense;
  std::string start_workflow;
  std::size_t line = 0;
};

struct ObserveConfig {
  std::vector<SenseConfig> senses;
  std::vector<WorkflowConfig> workflows;
  std::vector<ReflexConfig> reflexes;
  bool empty() const { return senses.empty() && workflows.empty() && reflexes.empty(); }
};

// Log records (server/log_records.h).
struct LogsConfig {
  // Whole UTC days older than this are archived to
  // <data>/archive/logs/YYYY-MM-DD.jsonl, then deleted.
  std::int64_t retention_days = 30;
  // How often cairnd checks whether a day is due (and once at start).
  std::int64_t archive_interval_ms = 3'600'000;
};

}  // namespace cairn::senses
