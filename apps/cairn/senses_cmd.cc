// senses_cmd.cc — see senses_cmd.h.
#include "senses_cmd.h"

#include <csignal>
#include <cstdio>
#include <memory>

#include <pthread.h>

#include "output.h"
#include "senses/runtime.h"
#include "server/observe_config.h"

namespace cairn::cli {

namespace {

// The member `key` of `obj`, or null.
const Json& field(const Json& obj, std::string_view key) {
  static const Json kNull;
  const Json* v = obj.find(key);
  return v != nullptr ? *v : kNull;
}

void print_senses(const Globals& g, const Json& doc) {
  if (g.json) {
    print_json_line(doc);
    return;
  }
  Table t({"SENSE", "HEALTH", "RUNNING", "RUNS", "FAILURES", "LAST_RUN", "NEXT_RUN", "LAST_ERROR"});
  for (const Json& s : field(doc, "senses").as_array()) {
    t.add({text_of(s, "name"), text_of(s, "health"),
           field(s, "running").bool_if().value_or(false) ? "yes" : "no", text_of(s, "runs"),
           text_of(s, "failures"), format_time_ms(field(s, "last_run_at")),
           format_time_ms(field(s, "next_run_at")),
           text_of(s, "last_error").empty() ? "-" : shorten(text_of(s, "last_error"), 60, g.wide)});
  }
  if (t.empty()) {
    std::printf("no senses\n");
    return;
  }
  t.print(stdout);
}

void print_runs(const Globals& g, const Json& doc) {
  if (g.json) {
    print_json_line(doc);
    return;
  }
  Table t({"RUN", "WORKFLOW", "STATUS", "INTENT", "TRIGGER", "UPDATED", "DETAIL"});
  for (const Json& r : field(doc, "runs").as_array()) {
    t.add({text_of(r, "id"), text_of(r, "workflow"), text_of(r, "status"), text_of(r, "intent"),
           short_ref(text_of(r, "trigger_fact"), g.wide), format_time_ms(field(r, "updated_at")),
           text_of(r, "detail").empty() ? "-" : shorten(text_of(r, "detail"), 60, g.wide)});
  }
  if (t.empty()) {
    std::printf("no runs\n");
    return;
  }
  t.print(stdout);
}

}  // namespace

int senses_status(const Globals& g, const std::string& data_dir) {
  if (!data_dir.empty()) {
    auto doc = senses::Runtime::read_status(data_dir);
    if (!doc.ok()) return report(g, doc.status(), 0);
    print_senses(g, *doc);
    return kExitOk;
  }
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  auto doc = s.client->get("/v1/senses");
  if (!doc.ok()) return report(g, doc.status(), s.client->last_http_status());
  print_senses(g, *doc);
  return kExitOk;
}

int workflow_runs(const Globals& g, const std::string& data_dir, const std::string& workflow,
                  int limit) {
  if (!data_dir.empty()) {
    auto doc = senses::Runtime::read_runs(data_dir, workflow,
                                          limit > 0 ? static_cast<std::size_t>(limit) : 100);
    if (!doc.ok()) return report(g, doc.status(), 0);
    print_runs(g, *doc);
    return kExitOk;
  }
  Session s = open_session(g);
  if (!s.client) return s.exit_code;
  std::string target = "/v1/workflows/runs";
  char sep = '?';
  if (!workflow.empty()) {
    target += "?workflow=" + workflow;  // names are [a-z0-9_-]: nothing to escape
    sep = '&';
  }
  if (limit > 0) target += std::string(1, sep) + "limit=" + std::to_string(limit);
  auto doc = s.client->get(target);
  if (!doc.ok()) return report(g, doc.status(), s.client->last_http_status());
  print_runs(g, *doc);
  return kExitOk;
}

int senses_run(const Globals& g, const SensesRunArgs& a) {
  auto loaded = server::load_observe_file(a.config);
  if (!loaded.ok()) return report(g, loaded.status(), 0);
  if (loaded->first.empty()) {
    return usage_error(a.config + " configures no senses, workflows or reflexes");
  }
  // Signals are taken by sigwait below, not by any thread the runtime starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  senses::RuntimeOptions o;
  o.data_dir = a.data;
  o.api.url = g.url;
  o.api.token = g.token;
  o.api.timeout_ms = g.timeout_ms;
  o.api.retries = g.retries;
  o.local_log = [](std::string_view level, std::string_view message) {
    std::fprintf(stderr, "cairn senses: %.*s: %.*s\n", static_cast<int>(level.size()), level.data(),
                 static_cast<int>(message.size()), message.data());
  };
  auto rt = std::make_unique<senses::Runtime>(loaded->first, o);
  if (Status s = rt->start(); !s.ok()) return report(g, s, 0);
  std::fprintf(stderr, "cairn senses: running %zu senses, %zu workflows, %zu reflexes against %s\n",
               loaded->first.senses.size(), loaded->first.workflows.size(),
               loaded->first.reflexes.size(), g.url.c_str());
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    auto again = server::load_observe_file(a.config);
    if (!again.ok()) {
      std::fprintf(stderr, "cairn senses: reload refused, the running configuration stays: %s\n",
                   again.status().message().c_str());
      continue;
    }
    if (again->first == loaded->first) {
      std::fprintf(stderr, "cairn senses: configuration unchanged; still running\n");
      continue;
    }
    loaded = std::move(again);
    rt->stop();
    rt = std::make_unique<senses::Runtime>(loaded->first, o);
    if (Status s = rt->start(); !s.ok()) return report(g, s, 0);
    std::fprintf(stderr, "cairn senses: configuration reloaded\n");
  }
  rt->stop();
  return kExitOk;
}

}  // namespace cairn::cli
