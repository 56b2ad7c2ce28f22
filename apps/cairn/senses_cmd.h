// senses_cmd.h — `cairn senses status|run` and `cairn workflows runs`
// (docs/cli.md#senses).
#pragma once

#include <string>

#include "commands.h"

namespace cairn::cli {

struct SensesRunArgs {
  std::string config;                 // cairn.yaml (its senses:, workflows:, reflexes:)
  std::string data = "./cairn-data";  // where the runtime keeps runtime.db and sense databases
};

// Each sense's health, runs, failures, last and next run, last error. With
// `data_dir`: read from that runtime's runtime.db (a runtime beside a remote
// cairnd); without: GET /v1/senses (the runtime inside cairnd).
int senses_status(const Globals& g, const std::string& data_dir);
// Workflow runs, newest first (same sources as senses_status).
int workflow_runs(const Globals& g, const std::string& data_dir, const std::string& workflow,
                  int limit);
// Runs the observation runtime in this process against --url until SIGINT or
// SIGTERM; SIGHUP re-reads the config file (an invalid one is refused, the
// running one stays).
int senses_run(const Globals& g, const SensesRunArgs& a);

}  // namespace cairn::cli
