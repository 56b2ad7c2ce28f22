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
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/predicate.h"

namespace cairn::senses {

// Bounds of the configuration (server/observe_config.cc refuses a file that
// exceeds them; docs/senses.md#configuration lists them).
inline constexpr std::size_t kSensesMax = 64;
inline constexpr std::size_t kWorkflowsMax = 64;
inline constexpr std::size_t kReflexesMax = 256;
// Names of senses, workflows, reflexes and groups: 1..this many of [a-z0-9_-].
inline constexpr std::size_t kConfigNameBytesMax = 64;
inline constexpr std::size_t kSenseOnKindsMax = 64;            // kinds in one sense's on:
inline constexpr std::size_t kCommandArgsMax = 256;            // items of a list command
inline constexpr std::size_t kCommandBytesMax = 64u << 10;     // a command's text, all items
inline constexpr std::int64_t kSenseTimeoutMsMax = 3'600'000;  // 1h
inline constexpr std::int64_t kSenseGraceMsMax = 600'000;      // 10m
inline constexpr std::size_t kReflexMatchMax = 16;             // predicates in one reflex's match:
inline constexpr std::int64_t kWorkflowConcurrencyMax = 1'000;
inline constexpr std::int64_t kWorkflowQueueMax = 100'000;
inline constexpr std::int64_t kLogRetentionDaysMax = 3'650;
inline constexpr std::int64_t kArchiveIntervalMsMin = 1'000;       // 1s
inline constexpr std::int64_t kArchiveIntervalMsMax = 86'400'000;  // 1d

// Fact kinds "log" and "log.*" are reserved: log records are not facts and
// never trigger senses or reflexes, so no on: may name them and POST
// /v1/facts refuses them (reserved_kind).
bool is_reserved_log_kind(std::string_view kind);

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
  // The directory it runs in: the configuration file's (so relative paths in
  // `command` mean what they say in the file); empty: cairnd's own.
  std::string workdir;
  std::size_t line = 0;  // where it is defined in the file (for messages)

  // Every field but `line` (the same sense moved in the file is the same).
  friend bool operator==(const SenseConfig& a, const SenseConfig& b);
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

  // Every field but `line`.
  friend bool operator==(const WorkflowConfig& a, const WorkflowConfig& b);
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

  // Every field but `line`; predicates compare by their JSON form.
  friend bool operator==(const ReflexConfig& a, const ReflexConfig& b);
};

struct ObserveConfig {
  std::vector<SenseConfig> senses;
  std::vector<WorkflowConfig> workflows;
  std::vector<ReflexConfig> reflexes;
  bool empty() const { return senses.empty() && workflows.empty() && reflexes.empty(); }

  // Same senses, workflows and reflexes (a SIGHUP that changes none of them
  // leaves the runtime running). Lines in the file do not count.
  friend bool operator==(const ObserveConfig&, const ObserveConfig&) = default;
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
