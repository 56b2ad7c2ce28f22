// config.cc — YAML configuration for cairnd (shell; yaml-cpp throws, so every
// call into it is inside one try block).
#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <exception>
#include <filesystem>

#include "model/names.h"
#include "model/sha256.h"
#include "server/observe_config.h"
#include "server/yaml_read.h"

namespace cairn::server {

std::string_view scope_name(Scope s) {
  switch (s) {
    case Scope::kRead:
      return "read";
    case Scope::kAgent:
      return "agent";
    case Scope::kAdmin:
      return "admin";
  }
  return "read";
}

Status parse_listen(std::string_view text, std::string& host, std::uint16_t& port) {
  std::string_view h;
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid("listen address must look like [::1]:7400", "invalid_listen");
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return invalid("listen address must look like 127.0.0.1:7400", "invalid_listen");
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (h.empty() || ec != std::errc() || ptr != p.data() + p.size() || v > 65535) {
    return invalid("listen address must look like 127.0.0.1:7400", "invalid_listen");
  }
  host = std::string(h);
  port = static_cast<std::uint16_t>(v);
  return Status();
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

namespace {

template <class T>
void read_scalar(const YAML::Node& n, const char* key, T& out) {
  if (n[key]) out = n[key].as<T>();
}

Scope parse_scope(const std::string& s, bool& ok) {
  ok = true;
  if (s == "read") return Scope::kRead;
  if (s == "agent") return Scope::kAgent;
  if (s == "admin") return Scope::kAdmin;
  ok = false;
  return Scope::kRead;
}

// lanes:, default_lane: and plan: (docs/server.md#lanes-and-the-plan) into
// the engine's admission and plan settings.
Status read_admission(const YamlDoc& doc, const YAML::Node& root, engine::EngineConfig& e) {
  const PlanLimits& pl = e.plan.limits;
  if (const YAML::Node lanes = root["lanes"]) {
    if (!lanes.IsMap()) return yaml_error(doc, lanes, "lanes", "must be a map of lane budgets");
    if (lanes.size() > pl.lanes_max) {
      return yaml_error(doc, lanes, "lanes",
                        "has more than lanes_max = " + std::to_string(pl.lanes_max) + " lanes");
    }
    AdmissionConfig& a = e.core.admission;
    a.budgets = true;
    a.lanes.clear();
    for (const auto& kv : lanes) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
      const std::string field = "lanes." + key;
      if (Status s = check_name("lane", key, ModelLimits{}); !s.ok()) {
        return yaml_error(doc, kv.first, field,
                          "is not a lane name or lane/provider: " + s.message());
      }
      const YAML::Node b = kv.second;
      CAIRN_RETURN_IF_ERROR(
          only_members(doc, b, field, {"max_concurrency", "max_cost_units", "duration_ms"}));
      if (!b["max_concurrency"]) return yaml_error(doc, b, field, "needs max_concurrency");
      LaneBudget budget;
      CAIRN_RETURN_IF_ERROR(read_bounded(doc, b["max_concurrency"], field + ".max_concurrency", 1,
                                         pl.concurrency_max, budget.max_concurrency));
      budget.max_cost_units = std::min(budget.max_concurrency, pl.cost_units_max);
      if (const YAML::Node c = b["max_cost_units"]) {
        CAIRN_RETURN_IF_ERROR(read_bounded(doc, c, field + ".max_cost_units", 1, pl.cost_units_max,
                                           budget.max_cost_units));
      }
      if (const YAML::Node d = b["duration_ms"]) {
        std::int64_t ms = 0;
        CAIRN_RETURN_IF_ERROR(
            read_bounded(doc, d, field + ".duration_ms", 1, pl.duration_ms_max, ms));
        e.plan.lane_duration_ms[key] = ms;
      }
      if (!a.lanes.emplace(key, budget).second) {
        return yaml_error(doc, kv.first, field, "is configured twice");
      }
    }
  }
  if (const YAML::Node d = root["default_lane"]) {
    if (!d.IsScalar() || (d.Scalar() != "true" && d.Scalar() != "false")) {
      return yaml_error(doc, d, "default_lane", "must be true or false");
    }
    e.core.admission.default_lane = d.Scalar() == "true";
  }
  if (const YAML::Node p = root["plan"]) {
    CAIRN_RETURN_IF_ERROR(only_members(
        doc, p, "plan",
        {"first_response_budget_ms", "all_responses_budget_ms", "default_duration_ms"}));
    if (const YAML::Node v = p["first_response_budget_ms"]) {
      CAIRN_RETURN_IF_ERROR(read_bounded(doc, v, "plan.first_response_budget_ms", 0,
                                         pl.duration_ms_max, e.plan.first_response_budget_ms));
    }
    if (const YAML::Node v = p["all_responses_budget_ms"]) {
      CAIRN_RETURN_IF_ERROR(read_bounded(doc, v, "plan.all_responses_budget_ms", 0,
                                         pl.duration_ms_max, e.plan.all_responses_budget_ms));
    }
    if (const YAML::Node v = p["default_duration_ms"]) {
      CAIRN_RETURN_IF_ERROR(read_bounded(doc, v, "plan.default_duration_ms", 0, pl.duration_ms_max,
                                         e.plan.default_duration_ms));
    }
  }
  return Status();
}

}  // namespace

Result<ServerConfig> load_config_file(const std::string& path, ServerConfig c) {
  const YamlDoc doc{path, "invalid_config"};
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root.IsMap()) return invalid("config " + path + ": the top level must be a map");
    if (root["listen"]) {
      CAIRN_RETURN_IF_ERROR(
          parse_listen(root["listen"].as<std::string>(), c.listen_host, c.listen_port));
    }
    read_scalar(root, "data", c.data_dir);
    read_scalar(root, "store", c.store_url);
    read_scalar(root, "node", c.engine.node);
    read_scalar(root, "writer_turn_wait_ms", c.writer_turn_wait_ms);
    read_scalar(root, "log_level", c.log_level);
    if (root["contract"]) {
      const std::filesystem::path contract = root["contract"].as<std::string>();
      if (contract.empty()) return invalid("config " + path + ": contract must be a path");
      c.contract_path = contract.is_absolute()
                            ? contract.string()
                            : (std::filesystem::path(path).parent_path() / contract).string();
    }
    if (const YAML::Node l = root["limits"]) {
      ServerLimits& x = c.limits;
      read_scalar(l, "body_bytes_max", x.body_bytes_max);
      read_scalar(l, "header_bytes_max", x.header_bytes_max);
      read_scalar(l, "idempotency_key_bytes_max", x.idempotency_key_bytes_max);
      read_scalar(l, "connections_max", x.connections_max);
      read_scalar(l, "idle_timeout_ms", x.idle_timeout_ms);
      read_scalar(l, "write_timeout_ms", x.write_timeout_ms);
      read_scalar(l, "linger_bytes_max", x.linger_bytes_max);
      read_scalar(l, "ingress_depth_max", x.ingress_depth_max);
      read_scalar(l, "caller_rate_per_s", x.caller_rate_per_s);
      read_scalar(l, "caller_burst", x.caller_burst);
      read_scalar(l, "watchers_max", x.watchers_max);
      read_scalar(l, "watch_buffer_events_max", x.watch_buffer_events_max);
      read_scalar(l, "watch_heartbeat_ms", x.watch_heartbeat_ms);
      read_scalar(l, "list_limit_max", x.list_limit_max);
      read_scalar(l, "shutdown_grace_ms", x.shutdown_grace_ms);
      read_scalar(l, "json_depth_max", x.json.depth_max);
      read_scalar(l, "json_string_bytes_max", x.json.string_bytes_max);
      read_scalar(l, "json_array_items_max", x.json.array_items_max);
      read_scalar(l, "json_object_members_max", x.json.object_members_max);
      read_scalar(l, "engine_ingress_max", c.engine.ingress_max);
      read_scalar(l, "leases_per_agent_max", c.engine.leases_per_agent_max);
    }
    CAIRN_RETURN_IF_ERROR(read_admission(doc, root, c.engine));
    CAIRN_RETURN_IF_ERROR(read_observe(path, root, c.observe, c.logs));
    if (const YAML::Node t = root["tokens"]) {
      if (!t.IsSequence()) return invalid("config " + path + ": tokens must be a list");
      for (const YAML::Node& n : t) {
        TokenConfig tok;
        tok.name = n["name"].as<std::string>("");
        tok.sha256_hex = n["sha256"].as<std::string>("");
        bool any = false;
        if (const YAML::Node s = n["scopes"]) {
          for (const YAML::Node& sc : s) {
            bool ok = false;
            const Scope v = parse_scope(sc.as<std::string>(), ok);
            if (!ok) {
              return invalid("config " + path + ": unknown scope '" + sc.as<std::string>() +
                             "' (read, agent, admin)");
            }
            if (!any || v > tok.scope) tok.scope = v;
            any = true;
          }
        }
        if (!any) return invalid("config " + path + ": token " + tok.name + " has no scopes");
        c.tokens.push_back(std::move(tok));
      }
    }
  } catch (const YAML::ParserException& e) {
    return yaml_syntax_error(doc, e);
  } catch (const std::exception& e) {
    return invalid("config " + path + ": " + e.what(), "invalid_config");
  }
  return c;
}

Status validate_config(const ServerConfig& c) {
  for (const TokenConfig& t : c.tokens) {
    if (t.name.empty()) return invalid("a token has no name", "invalid_config");
    if (!is_hex_digest(t.sha256_hex)) {
      return invalid("token " + t.name + ": sha256 must be 64 lowercase hex characters",
                     "invalid_config");
    }
  }
  if (!c.store_url.empty() && c.store_url.rfind("postgres://", 0) != 0 &&
      c.store_url.rfind("postgresql://", 0) != 0) {
    return invalid("store must be a postgres:// or postgresql:// URL (or empty for SQLite)",
                   "invalid_config");
  }
  if (!c.engine.node.empty()) {
    if (c.store_url.empty()) {
      return invalid("node '" + c.engine.node +
                         "': shared mode needs a PostgreSQL store (store: postgres://...)",
                     "invalid_config");
    }
    const std::string& n = c.engine.node;
    bool ok = !n.empty() && n.size() <= 63;
    for (std::size_t i = 0; ok && i < n.size(); ++i) {
      const char ch = n[i];
      const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
      ok = alnum || (i > 0 && (ch == '_' || ch == '-'));
    }
    if (!ok) return invalid("node must match [a-z0-9][a-z0-9_-]{0,62}", "invalid_config");
    if (c.writer_turn_wait_ms < 0 || c.writer_turn_wait_ms > 60'000) {
      return invalid("writer_turn_wait_ms must be in 0..60000", "invalid_config");
    }
  }
  if (c.tokens.empty() && !is_loopback_host(c.listen_host)) {
    return invalid("refusing to listen on " + c.listen_host +
                       " without auth tokens; configure tokens or use a loopback address",
                   "insecure_listen");
  }
  const engine::EngineConfig& e = c.engine;
  const PlanLimits& pl = e.plan.limits;
  if (e.core.admission.lanes.size() > pl.lanes_max) {
    return invalid("more than lanes_max = " + std::to_string(pl.lanes_max) + " lanes",
                   "invalid_config");
  }
  for (const auto& [key, b] : e.core.admission.lanes) {
    if (b.max_concurrency < 1 || b.max_concurrency > pl.concurrency_max || b.max_cost_units < 1 ||
        b.max_cost_units > pl.cost_units_max) {
      return invalid("lanes." + key + ": max_concurrency must be in 1.." +
                         std::to_string(pl.concurrency_max) + " and max_cost_units in 1.." +
                         std::to_string(pl.cost_units_max),
                     "invalid_config");
    }
  }
  for (const auto& [key, ms] : e.plan.lane_duration_ms) {
    if (ms < 1 || ms > pl.duration_ms_max) {
      return invalid(
          "lanes." + key + ".duration_ms must be in 1.." + std::to_string(pl.duration_ms_max),
          "invalid_config");
    }
  }
  for (std::int64_t ms : {e.plan.first_response_budget_ms, e.plan.all_responses_budget_ms,
                          e.plan.default_duration_ms}) {
    if (ms < 0 || ms > pl.duration_ms_max) {
      return invalid(
          "plan budgets and durations must be in 0.." + std::to_string(pl.duration_ms_max) + " ms",
          "invalid_config");
    }
  }
  const ServerLimits& l = c.limits;
  if (l.body_bytes_max == 0 || l.header_bytes_max == 0 || l.connections_max == 0 ||
      l.ingress_depth_max == 0 || l.list_limit_max == 0 || l.idle_timeout_ms <= 0 ||
      l.write_timeout_ms <= 0 || l.watch_buffer_events_max == 0) {
    return invalid("limits must be positive", "invalid_config");
  }
  return Status();
}

}  // namespace cairn::server
