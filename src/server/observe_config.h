// observe_config.h — the senses:, workflows:, reflexes: and logs: sections
// of cairn.yaml (shell): read and validated into senses/config.h's structs.
// docs/senses.md#configuration describes every field, default and bound.
//
//   senses:
//     disk:                          # [a-z0-9_-]{1,64}
//       command: [df, -P, /]         # or a string, run by /bin/sh -c
//       interval: 30s                # and/or on: [deploy.finished]
//       throttle: 10s
//       timeout: 30s                 # default 30s, at most 1h
//       grace_period: 5s             # default 5s, at most 10m
//       migrations: ./disk-sql       # a directory, relative to the file
//       group: default
//   workflows:
//     cleanup: {kind: disk.cleanup, lane: maintenance, spec: {path: /var/tmp},
//               priority: 5, concurrency: 1, overflow: queue, max_queue: 100}
//   reflexes:
//     - {name: disk-full, on: signal.disk,
//        match: [{path: $.used_pct, op: gt, value: 90}], throttle: 1m, start: cleanup}
//   logs: {retention_days: 30, archive_interval: 1h}
//
// Every error is `invalid` / "invalid_config" with a message
// "FILE:LINE: field problem" and details {file, line, field}.
#pragma once

#include <string>
#include <utility>

#include "model/status.h"
#include "senses/config.h"

namespace YAML {
class Node;
}

namespace cairn::server {

// Reads senses:, workflows:, reflexes: and logs: of the YAML document `root`
// (from file `path`, named in messages; a relative migrations directory is
// resolved against the file's directory and must exist). On success both
// outputs are replaced by what the file says (defaults for what it leaves
// out); on error they are left alone. Throws what yaml-cpp throws.
Status read_observe(const std::string& path, const YAML::Node& root, senses::ObserveConfig& observe,
                    senses::LogsConfig& logs);

// The same from a file, ignoring every other top-level key (cairn.yaml is
// shared with cairnd's own settings). Safe to call at any time, e.g. again
// on SIGHUP: it reads the file afresh and returns the validated
// configuration or the error, and never throws.
Result<std::pair<senses::ObserveConfig, senses::LogsConfig>> load_observe_file(
    const std::string& path);

}  // namespace cairn::server
