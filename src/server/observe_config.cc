// observe_config.cc — see observe_config.h. yaml-cpp throws: read_observe's
// callers hold the try block (load_config_file, load_observe_file).
#include "server/observe_config.h"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <filesystem>
#include <system_error>
#include <vector>

#include "model/json.h"
#include "model/limits.h"
#include "model/names.h"
#include "senses/duration.h"
#include "server/yaml_read.h"

namespace cairn::server {

namespace {

using senses::LogsConfig;
using senses::ObserveConfig;
using senses::Overflow;
using senses::ReflexConfig;
using senses::SenseConfig;
using senses::WorkflowConfig;

constexpr std::string_view kSignalPrefix = "signal.";

std::string shown(std::string_view s) {
  constexpr std::size_t kShown = 64;
  std::string out = "\"" + std::string(s.substr(0, kShown));
  if (s.size() > kShown) out += "...";
  return out + "\"";
}

// Names of senses, workflows, reflexes and groups: [a-z0-9_-]{1,64} (a
// sense's name is also its database's file name).
Status check_config_name(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                         std::string_view value) {
  bool ok = !value.empty() && value.size() <= senses::kConfigNameBytesMax;
  for (char c : value)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  if (ok) return Status();
  return yaml_error(doc, n, field,
                    "is not a valid name (" + shown(value) + "): use 1.." +
                        std::to_string(senses::kConfigNameBytesMax) +
                        " characters of a-z, 0-9, _ and -");
}

std::string duration_text(std::int64_t ms) {
  if (ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
  return std::to_string(ms) + "ms";
}

// A duration ("250ms", "5s", "10m", "1h", "1d") in [min_ms, max_ms].
Status read_duration(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                     std::int64_t min_ms, std::int64_t max_ms, std::int64_t& out) {
  if (!n.IsScalar() || n.Scalar().empty()) {
    return yaml_error(doc, n, field, "must be a duration such as 30s (units: ms, s, m, h, d)");
  }
  Result<std::int64_t> ms = senses::parse_duration_ms(n.Scalar());
  if (!ms.ok()) return yaml_error(doc, n, field, ms.status().message());
  if (*ms < min_ms) return yaml_error(doc, n, field, "must be at least " + duration_text(min_ms));
  if (*ms > max_ms) return yaml_error(doc, n, field, "must be at most " + duration_text(max_ms));
  out = *ms;
  return Status();
}

Status read_optional_duration(const YamlDoc& doc, const YAML::Node& map, const char* key,
                              std::string_view where, std::int64_t min_ms, std::int64_t max_ms,
                              std::int64_t& out) {
  const YAML::Node n = map[key];
  if (!n.IsDefined()) return Status();
  return read_duration(doc, n, yaml_join(where, key), min_ms, max_ms, out);
}

// A fact kind that triggers something (a sense's on:, a reflex's on:).
Status read_trigger_kind(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                         std::string& out) {
  if (!n.IsScalar()) return yaml_error(doc, n, field, "must be a fact kind");
  const std::string& kind = n.Scalar();
  if (Status st = check_kind(field, kind, ModelLimits{}); !st.ok()) {
    return yaml_error_at(doc, yaml_line(n), field, st.message());
  }
  if (senses::is_reserved_log_kind(kind)) {
    return yaml_error(doc, n, field,
                      "names " + shown(kind) +
                          ": log records are not facts and never trigger senses or reflexes "
                          "(the fact kinds log and log.* are reserved)");
  }
  out = kind;
  return Status();
}

// A scalar that is not null; `what` describes it in the error.
Status read_text(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                 std::string_view what, std::string& out) {
  if (!n.IsScalar()) return yaml_error(doc, n, field, "must be " + std::string(what));
  out = n.Scalar();
  return Status();
}

Status read_command(const YamlDoc& doc, const YAML::Node& key, const YAML::Node& c,
                    std::string_view where, SenseConfig& s) {
  const std::string field = yaml_join(where, "command");
  constexpr std::string_view kShape =
      "a list of strings such as [df, -P, /] or a string run by /bin/sh -c";
  if (!c.IsDefined() || c.IsNull()) {
    return yaml_error(doc, key, field, "is required: " + std::string(kShape));
  }
  std::size_t bytes = 0;
  const auto check_text = [&](const YAML::Node& n, const std::string& f,
                              const std::string& text) -> Status {
    if (text.find('\0') != std::string::npos) return yaml_error(doc, n, f, "contains a NUL byte");
    bytes += text.size();
    if (bytes > senses::kCommandBytesMax) {
      return yaml_error(doc, n, field,
                        "is longer than " + std::to_string(senses::kCommandBytesMax) + " bytes");
    }
    return Status();
  };
  if (c.IsScalar()) {
    if (c.Scalar().find_first_not_of(" \t\r\n") == std::string::npos) {
      return yaml_error(doc, c, field, "is empty: " + std::string(kShape));
    }
    CAIRN_RETURN_IF_ERROR(check_text(c, field, c.Scalar()));
    s.shell = c.Scalar();
    return Status();
  }
  if (!c.IsSequence()) return yaml_error(doc, c, field, "must be " + std::string(kShape));
  if (c.size() == 0) return yaml_error(doc, c, field, "is empty: " + std::string(kShape));
  if (c.size() > senses::kCommandArgsMax) {
    return yaml_error(doc, c, field,
                      "has more than " + std::to_string(senses::kCommandArgsMax) + " items");
  }
  std::size_t i = 0;
  for (const YAML::Node& item : c) {
    const std::string f = yaml_index(field, i++);
    if (!item.IsScalar()) {
      return yaml_error(doc, item, f,
                        "must be a string (a command's program and arguments are strings)");
    }
    CAIRN_RETURN_IF_ERROR(check_text(item, f, item.Scalar()));
    s.argv.push_back(item.Scalar());
  }
  if (s.argv[0].empty())
    return yaml_error(doc, c, yaml_index(field, 0), "is an empty program name");
  return Status();
}

Status read_sense(const YamlDoc& doc, const YAML::Node& key, const YAML::Node& v,
                  std::string_view where, SenseConfig& s) {
  CAIRN_RETURN_IF_ERROR(only_members(
      doc, v, where,
      {"command", "interval", "on", "throttle", "timeout", "grace_period", "migrations", "group"}));
  CAIRN_RETURN_IF_ERROR(read_command(doc, key, v["command"], where, s));
  CAIRN_RETURN_IF_ERROR(
      read_optional_duration(doc, v, "interval", where, 1, senses::kDurationMsMax, s.interval_ms));
  if (const YAML::Node on = v["on"]; on.IsDefined()) {
    const std::string field = yaml_join(where, "on");
    std::vector<YAML::Node> items;
    if (on.IsScalar()) {
      items.push_back(on);
    } else if (on.IsSequence()) {
      for (const YAML::Node& item : on) items.push_back(item);
    } else {
      return yaml_error(doc, on, field, "must be a list of fact kinds");
    }
    if (items.size() > senses::kSenseOnKindsMax) {
      return yaml_error(doc, on, field,
                        "has more than " + std::to_string(senses::kSenseOnKindsMax) + " kinds");
    }
    const std::string own = std::string(kSignalPrefix) + s.name;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string f = on.IsScalar() ? field : yaml_index(field, i);
      std::string kind;
      CAIRN_RETURN_IF_ERROR(read_trigger_kind(doc, items[i], f, kind));
      if (kind == own) {
        return yaml_error(
            doc, items[i], f,
            "is the sense's own signal (" + own + "): each run would trigger the next, in a loop");
      }
      s.on.push_back(std::move(kind));
    }
  }
  CAIRN_RETURN_IF_ERROR(
      read_optional_duration(doc, v, "throttle", where, 1, senses::kDurationMsMax, s.throttle_ms));
  CAIRN_RETURN_IF_ERROR(read_optional_duration(doc, v, "timeout", where, 1,
                                               senses::kSenseTimeoutMsMax, s.timeout_ms));
  CAIRN_RETURN_IF_ERROR(read_optional_duration(doc, v, "grace_period", where, 1,
                                               senses::kSenseGraceMsMax, s.grace_ms));
  if (const YAML::Node m = v["migrations"]; m.IsDefined()) {
    const std::string field = yaml_join(where, "migrations");
    std::string text;
    CAIRN_RETURN_IF_ERROR(read_text(doc, m, field, "a directory path", text));
    if (text.empty()) return yaml_error(doc, m, field, "must be a directory path");
    std::filesystem::path dir(text);
    if (dir.is_relative()) dir = std::filesystem::path(doc.file).parent_path() / dir;
    std::error_code ec;
    dir = std::filesystem::absolute(dir, ec).lexically_normal();
    if (!dir.has_filename() && dir.has_parent_path() && dir != dir.root_path()) {
      dir = dir.parent_path();  // "/a/b/" → "/a/b"
    }
    if (ec || !std::filesystem::is_directory(dir, ec)) {
      return yaml_error(
          doc, m, field,
          "must be an existing directory of .sql files; " + dir.string() + " is not a directory");
    }
    s.migrations_dir = dir.string();
  }
  if (const YAML::Node g = v["group"]; g.IsDefined()) {
    const std::string field = yaml_join(where, "group");
    CAIRN_RETURN_IF_ERROR(read_text(doc, g, field, "a group name", s.group));
    CAIRN_RETURN_IF_ERROR(check_config_name(doc, g, field, s.group));
  }
  return Status();
}

Status read_senses(const YamlDoc& doc, const YAML::Node& n, ObserveConfig& o) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  if (!n.IsMap()) return yaml_error(doc, n, "senses", "must be a map of sense names to senses");
  if (n.size() > senses::kSensesMax) {
    return yaml_error(doc, n, "senses",
                      "has more than " + std::to_string(senses::kSensesMax) + " senses");
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar())
      return yaml_error(doc, kv.first, "senses", "has a key that is not a name");
    SenseConfig s;
    s.name = kv.first.Scalar();
    s.line = yaml_line(kv.first);
    const std::string where = "senses." + s.name;
    CAIRN_RETURN_IF_ERROR(check_config_name(doc, kv.first, where, s.name));
    for (const SenseConfig& other : o.senses) {
      if (other.name == s.name) {
        return yaml_error(doc, kv.first, where,
                          "is defined twice (first at line " + std::to_string(other.line) + ")");
      }
    }
    CAIRN_RETURN_IF_ERROR(read_sense(doc, kv.first, kv.second, where, s));
    o.senses.push_back(std::move(s));
  }
  return Status();
}

Status read_workflow(const YamlDoc& doc, const YAML::Node& key, const YAML::Node& v,
                     std::string_view where, WorkflowConfig& w) {
  const ModelLimits model;
  CAIRN_RETURN_IF_ERROR(only_members(
      doc, v, where, {"kind", "lane", "spec", "priority", "concurrency", "overflow", "max_queue"}));
  const YAML::Node kind = v["kind"];
  const std::string f_kind = yaml_join(where, "kind");
  if (!kind.IsDefined() || kind.IsNull()) {
    return yaml_error(doc, key, f_kind, "is required (the kind of the intent each run creates)");
  }
  CAIRN_RETURN_IF_ERROR(read_text(doc, kind, f_kind, "an intent kind", w.kind));
  if (Status st = check_kind(f_kind, w.kind, model); !st.ok()) {
    return yaml_error_at(doc, yaml_line(kind), f_kind, st.message());
  }
  if (const YAML::Node lane = v["lane"]; lane.IsDefined()) {
    const std::string f = yaml_join(where, "lane");
    CAIRN_RETURN_IF_ERROR(read_text(doc, lane, f, "a lane name", w.lane));
    if (Status st = check_name(f, w.lane, model); !st.ok()) {
      return yaml_error_at(doc, yaml_line(lane), f, st.message());
    }
  }
  if (const YAML::Node spec = v["spec"]; spec.IsDefined()) {
    const std::string f = yaml_join(where, "spec");
    if (!spec.IsMap()) return yaml_error(doc, spec, f, "must be a map (the intent's spec object)");
    CAIRN_ASSIGN_OR_RETURN(w.spec, yaml_to_json(doc, spec, f));
    if (to_jcs(w.spec).size() > model.spec_bytes_max) {
      return yaml_error(doc, spec, f,
                        "is larger than " + std::to_string(model.spec_bytes_max) + " bytes");
    }
  }
  if (const YAML::Node p = v["priority"]; p.IsDefined()) {
    CAIRN_RETURN_IF_ERROR(read_bounded(doc, p, yaml_join(where, "priority"),
                                       -model.priority_abs_max, model.priority_abs_max,
                                       w.priority));
  }
  if (const YAML::Node c = v["concurrency"]; c.IsDefined()) {
    CAIRN_RETURN_IF_ERROR(read_bounded(doc, c, yaml_join(where, "concurrency"), 1,
                                       senses::kWorkflowConcurrencyMax, w.concurrency));
  }
  if (const YAML::Node o = v["overflow"]; o.IsDefined()) {
    const std::string f = yaml_join(where, "overflow");
    if (!o.IsScalar() || (o.Scalar() != "drop" && o.Scalar() != "queue")) {
      return yaml_error(doc, o, f, "must be drop or queue");
    }
    w.overflow = o.Scalar() == "drop" ? Overflow::kDrop : Overflow::kQueue;
  }
  if (const YAML::Node q = v["max_queue"]; q.IsDefined()) {
    const std::string f = yaml_join(where, "max_queue");
    if (w.overflow == Overflow::kDrop) {
      return yaml_error(doc, q, f,
                        "applies only to overflow: queue (with overflow: drop a run beyond "
                        "concurrency is dropped, never queued)");
    }
    CAIRN_RETURN_IF_ERROR(read_bounded(doc, q, f, 1, senses::kWorkflowQueueMax, w.max_queue));
  }
  return Status();
}

Status read_workflows(const YamlDoc& doc, const YAML::Node& n, ObserveConfig& o) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  if (!n.IsMap()) {
    return yaml_error(doc, n, "workflows", "must be a map of workflow names to workflows");
  }
  if (n.size() > senses::kWorkflowsMax) {
    return yaml_error(doc, n, "workflows",
                      "has more than " + std::to_string(senses::kWorkflowsMax) + " workflows");
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      return yaml_error(doc, kv.first, "workflows", "has a key that is not a name");
    }
    WorkflowConfig w;
    w.name = kv.first.Scalar();
    w.line = yaml_line(kv.first);
    const std::string where = "workflows." + w.name;
    CAIRN_RETURN_IF_ERROR(check_config_name(doc, kv.first, where, w.name));
    for (const WorkflowConfig& other : o.workflows) {
      if (other.name == w.name) {
        return yaml_error(doc, kv.first, where,
                          "is defined twice (first at line " + std::to_string(other.line) + ")");
      }
    }
    CAIRN_RETURN_IF_ERROR(read_workflow(doc, kv.first, kv.second, where, w));
    o.workflows.push_back(std::move(w));
  }
  return Status();
}

template <class T>
std::string names_of(const std::vector<T>& items) {
  std::string out;
  for (const T& x : items) out += (out.empty() ? "" : ", ") + x.name;
  return out;
}

template <class T>
bool has_name(const std::vector<T>& items, std::string_view name) {
  for (const T& x : items) {
    if (x.name == name) return true;
  }
  return false;
}

Status read_reflex(const YamlDoc& doc, const YAML::Node& v, std::size_t i, const ObserveConfig& o,
                   ReflexConfig& r) {
  const std::string where = yaml_index("reflexes", i);
  CAIRN_RETURN_IF_ERROR(
      only_members(doc, v, where, {"name", "on", "match", "throttle", "start", "run"}));
  r.line = yaml_line(v);
  r.name = "reflex-" + std::to_string(i + 1);
  const YAML::Node name = v["name"];
  if (name.IsDefined()) {
    const std::string f = yaml_join(where, "name");
    CAIRN_RETURN_IF_ERROR(read_text(doc, name, f, "a name", r.name));
    CAIRN_RETURN_IF_ERROR(check_config_name(doc, name, f, r.name));
  }
  for (const ReflexConfig& other : o.reflexes) {
    if (other.name != r.name) continue;
    if (name.IsDefined()) {
      return yaml_error(doc, name, yaml_join(where, "name"),
                        "repeats the name of the reflex at line " + std::to_string(other.line));
    }
    return yaml_error(doc, v, where,
                      "has no name and its default, " + r.name +
                          ", is the name of the reflex at line " + std::to_string(other.line) +
                          "; give it a name");
  }
  const YAML::Node on = v["on"];
  const std::string f_on = yaml_join(where, "on");
  if (!on.IsDefined() || on.IsNull()) {
    return yaml_error(doc, v, f_on, "is required (the fact kind that fires the reflex)");
  }
  CAIRN_RETURN_IF_ERROR(read_trigger_kind(doc, on, f_on, r.on));
  CAIRN_ASSIGN_OR_RETURN(
      r.match, read_predicates(doc, v["match"], yaml_join(where, "match"), senses::kReflexMatchMax,
                               PredicateLimits{}, false));
  CAIRN_RETURN_IF_ERROR(
      read_optional_duration(doc, v, "throttle", where, 1, senses::kDurationMsMax, r.throttle_ms));
  const YAML::Node run = v["run"];
  const YAML::Node start = v["start"];
  if (run.IsDefined() && start.IsDefined()) {
    return yaml_error(doc, v, where,
                      "has both run: and start: (a reflex runs one sense or starts one "
                      "workflow; write two reflexes for both)");
  }
  if (!run.IsDefined() && !start.IsDefined()) {
    return yaml_error(doc, v, where, "needs run: <sense> or start: <workflow>");
  }
  if (run.IsDefined()) {
    const std::string f = yaml_join(where, "run");
    CAIRN_RETURN_IF_ERROR(read_text(doc, run, f, "a sense name", r.run_sense));
    if (!has_name(o.senses, r.run_sense)) {
      return yaml_error(doc, run, f,
                        "names " + shown(r.run_sense) + ", which is not a sense under senses: (" +
                            (o.senses.empty() ? std::string("none is configured")
                                              : "configured: " + names_of(o.senses)) +
                            ")");
    }
    if (r.on == std::string(kSignalPrefix) + r.run_sense) {
      return yaml_error(doc, run, f,
                        "runs " + r.run_sense + " on its own signal (" + r.on +
                            "): each run would trigger the next, in a loop");
    }
  } else {
    const std::string f = yaml_join(where, "start");
    CAIRN_RETURN_IF_ERROR(read_text(doc, start, f, "a workflow name", r.start_workflow));
    if (!has_name(o.workflows, r.start_workflow)) {
      return yaml_error(doc, start, f,
                        "names " + shown(r.start_workflow) +
                            ", which is not a workflow under workflows: (" +
                            (o.workflows.empty() ? std::string("none is configured")
                                                 : "configured: " + names_of(o.workflows)) +
                            ")");
    }
  }
  return Status();
}

Status read_reflexes(const YamlDoc& doc, const YAML::Node& n, ObserveConfig& o) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  if (!n.IsSequence()) return yaml_error(doc, n, "reflexes", "must be a list of reflexes");
  if (n.size() > senses::kReflexesMax) {
    return yaml_error(doc, n, "reflexes",
                      "has more than " + std::to_string(senses::kReflexesMax) + " reflexes");
  }
  std::size_t i = 0;
  for (const YAML::Node& item : n) {
    ReflexConfig r;
    CAIRN_RETURN_IF_ERROR(read_reflex(doc, item, i++, o, r));
    o.reflexes.push_back(std::move(r));
  }
  return Status();
}

// The sense whose signal kind is `kind`, or -1.
int sense_of_signal(const ObserveConfig& o, std::string_view kind) {
  if (!kind.starts_with(kSignalPrefix)) return -1;
  const std::string_view name = kind.substr(kSignalPrefix.size());
  for (std::size_t i = 0; i < o.senses.size(); ++i) {
    if (o.senses[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int sense_index(const ObserveConfig& o, std::string_view name) {
  for (std::size_t i = 0; i < o.senses.size(); ++i) {
    if (o.senses[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// A sense must run some way: on an interval, on facts, or by a reflex.
// And no sense's signal may lead back to running it (through on: lists and
// run: reflexes): the loop would never end.
Status check_senses_run(const YamlDoc& doc, const ObserveConfig& o) {
  const std::size_t n = o.senses.size();
  std::vector<std::vector<int>> next(n);  // next[a]: senses a's signal runs
  for (std::size_t b = 0; b < n; ++b) {
    for (const std::string& kind : o.senses[b].on) {
      if (int a = sense_of_signal(o, kind); a >= 0) next[a].push_back(static_cast<int>(b));
    }
  }
  std::vector<bool> run_by_reflex(n, false);
  for (const ReflexConfig& r : o.reflexes) {
    if (r.run_sense.empty()) continue;
    const int b = sense_index(o, r.run_sense);
    run_by_reflex[b] = true;
    if (int a = sense_of_signal(o, r.on); a >= 0) next[a].push_back(b);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const SenseConfig& s = o.senses[i];
    if (s.interval_ms == 0 && s.on.empty() && !run_by_reflex[i]) {
      return yaml_error_at(doc, s.line, "senses." + s.name,
                           "senses." + s.name +
                               " never runs: give it an interval:, an on: list of fact kinds, "
                               "or a reflex with run: " +
                               s.name);
    }
  }
  // Depth-first search for a cycle; 0 unseen, 1 on the path, 2 done.
  std::vector<int> state(n, 0);
  std::vector<int> path;
  std::vector<int> cycle;
  auto visit = [&](auto& self, int a) -> bool {
    state[a] = 1;
    path.push_back(a);
    for (int b : next[a]) {
      if (state[b] == 1) {
        auto it = path.begin();
        while (*it != b) ++it;
        cycle.assign(it, path.end());
        cycle.push_back(b);
        return true;
      }
      if (state[b] == 0 && self(self, b)) return true;
    }
    path.pop_back();
    state[a] = 2;
    return false;
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (state[i] != 0 || !visit(visit, static_cast<int>(i))) continue;
    std::string chain;
    for (int c : cycle) chain += (chain.empty() ? "" : " -> ") + o.senses[c].name;
    const SenseConfig& s = o.senses[cycle.front()];
    return yaml_error_at(doc, s.line, "senses." + s.name,
                         "senses." + s.name + " is in a loop: " + chain +
                             " (each one's signal runs the next, through on: lists or run: "
                             "reflexes, without end)");
  }
  return Status();
}

Status read_logs(const YamlDoc& doc, const YAML::Node& n, LogsConfig& l) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  CAIRN_RETURN_IF_ERROR(only_members(doc, n, "logs", {"retention_days", "archive_interval"}));
  if (const YAML::Node d = n["retention_days"]; d.IsDefined()) {
    CAIRN_RETURN_IF_ERROR(read_bounded(doc, d, "logs.retention_days", 1,
                                       senses::kLogRetentionDaysMax, l.retention_days));
  }
  CAIRN_RETURN_IF_ERROR(
      read_optional_duration(doc, n, "archive_interval", "logs", senses::kArchiveIntervalMsMin,
                             senses::kArchiveIntervalMsMax, l.archive_interval_ms));
  return Status();
}

}  // namespace

Status read_observe(const std::string& path, const YAML::Node& root, senses::ObserveConfig& observe,
                    senses::LogsConfig& logs) {
  const YamlDoc doc{path, "invalid_config"};
  if (!root.IsMap())
    return yaml_error_at(doc, yaml_line(root, 1), "", "the top level must be a map");
  // The other top-level keys are cairnd's; these four may not repeat (the
  // second would be ignored without a word).
  std::vector<std::pair<std::string, std::size_t>> seen;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) continue;
    const std::string& k = kv.first.Scalar();
    if (k != "senses" && k != "workflows" && k != "reflexes" && k != "logs") continue;
    for (const auto& [name, line] : seen) {
      if (name == k) {
        return yaml_error(doc, kv.first, k,
                          "is repeated (first at line " + std::to_string(line) + ")");
      }
    }
    seen.emplace_back(k, yaml_line(kv.first));
  }
  ObserveConfig o;
  LogsConfig l;
  CAIRN_RETURN_IF_ERROR(read_senses(doc, root["senses"], o));
  CAIRN_RETURN_IF_ERROR(read_workflows(doc, root["workflows"], o));
  CAIRN_RETURN_IF_ERROR(read_reflexes(doc, root["reflexes"], o));
  CAIRN_RETURN_IF_ERROR(check_senses_run(doc, o));
  CAIRN_RETURN_IF_ERROR(read_logs(doc, root["logs"], l));
  observe = std::move(o);
  logs = l;
  return Status();
}

Result<std::pair<senses::ObserveConfig, senses::LogsConfig>> load_observe_file(
    const std::string& path) {
  const YamlDoc doc{path, "invalid_config"};
  try {
    const YAML::Node root = YAML::LoadFile(path);
    std::pair<senses::ObserveConfig, senses::LogsConfig> out;
    CAIRN_RETURN_IF_ERROR(read_observe(path, root, out.first, out.second));
    return out;
  } catch (const YAML::BadFile&) {
    return invalid(path + ": cannot be read", "invalid_config",
                   Json(JsonObject{{"file", Json(path)}}));
  } catch (const YAML::ParserException& e) {
    return yaml_syntax_error(doc, e);
  } catch (const std::exception& e) {
    return invalid(path + ": " + e.what(), "invalid_config",
                   Json(JsonObject{{"file", Json(path)}}));
  }
}

}  // namespace cairn::server
