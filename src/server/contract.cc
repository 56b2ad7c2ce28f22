// contract.cc — loading contract.yaml (shell; yaml-cpp throws, so every call
// into it is inside one try block per entry point).
#include "server/contract.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <exception>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <utility>

#include "model/json_parse.h"
#include "model/limits.h"
#include "model/names.h"
#include "model/sha256.h"
#include "server/yaml_read.h"

namespace cairn::server {

namespace {

// Where errors point: the file (and its reason), plus the limits at hand.
struct Ctx : YamlDoc {
  const ContractLimits& limits;
  ModelLimits model;
};

// A scalar member as text; absent leaves `out` alone unless required.
Status get_string(const Ctx& ctx, const YAML::Node& map, std::string_view key,
                  std::string_view field, std::string& out, bool required) {
  const YAML::Node n = map[std::string(key)];
  if (!n.IsDefined() || n.IsNull()) {
    if (required) return yaml_error(ctx, map, field, "is required");
    return Status();
  }
  if (!n.IsScalar()) return yaml_error(ctx, n, field, "must be a string");
  out = n.Scalar();
  return Status();
}

Status get_int(const Ctx& ctx, const YAML::Node& map, std::string_view key, std::string_view field,
               std::int64_t& out, bool required) {
  const YAML::Node n = map[std::string(key)];
  if (!n.IsDefined() || n.IsNull()) {
    if (required) return yaml_error(ctx, map, field, "is required");
    return Status();
  }
  const std::string& s = n.IsScalar() ? n.Scalar() : std::string();
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (!n.IsScalar() || s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return yaml_error(ctx, n, field, "must be an integer");
  }
  out = v;
  return Status();
}

// Applies a model Status (from names.h, whose message starts with the field
// name it was given) at a node.
Status model_error(const Ctx& ctx, const YAML::Node& n, std::string_view field, const Status& st) {
  return yaml_error_at(ctx, yaml_line(n), field, st.message());
}

Status check_kind_at(const Ctx& ctx, const YAML::Node& n, std::string_view field,
                     std::string_view value) {
  Status st = check_kind(field, value, ctx.model);
  if (!st.ok()) return model_error(ctx, n, field, st);
  return Status();
}

Status read_selector(const Ctx& ctx, const YAML::Node& n, std::string_view where,
                     HintSelector& out) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  CAIRN_RETURN_IF_ERROR(only_members(ctx, n, where, {"kind", "lane", "identity", "creator"}));
  CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "kind", yaml_join(where, "kind"), out.kind, false));
  CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "lane", yaml_join(where, "lane"), out.lane, false));
  CAIRN_RETURN_IF_ERROR(
      get_string(ctx, n, "identity", yaml_join(where, "identity"), out.identity, false));
  CAIRN_RETURN_IF_ERROR(
      get_string(ctx, n, "creator", yaml_join(where, "creator"), out.creator, false));
  if (!out.kind.empty()) {
    CAIRN_RETURN_IF_ERROR(check_kind_at(ctx, n["kind"], yaml_join(where, "kind"), out.kind));
  }
  for (auto [key, value] : {std::pair<const char*, const std::string*>{"lane", &out.lane},
                            {"identity", &out.identity},
                            {"creator", &out.creator}}) {
    if (value->empty()) continue;
    Status st = check_name(yaml_join(where, key), *value, ctx.model);
    if (!st.ok()) return model_error(ctx, n[key], yaml_join(where, key), st);
  }
  return Status();
}

Status read_emit(const Ctx& ctx, const YAML::Node& n, std::string_view where, ContractRule& r) {
  if (!n.IsDefined() || n.IsNull()) return yaml_error(ctx, n, where, "is required");
  CAIRN_RETURN_IF_ERROR(only_members(
      ctx, n, where,
      {"effect", "n", "defer_ms", "fact_kind", "ttl_ms", "selector", "kind", "reason"}));
  std::string effect;
  CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "effect", yaml_join(where, "effect"), effect, true));
  const std::string f_n = yaml_join(where, "n");
  const std::string f_defer = yaml_join(where, "defer_ms");
  const std::string f_fact = yaml_join(where, "fact_kind");
  auto forbid = [&](const char* key, const std::string& field) -> Status {
    if (n[key].IsDefined())
      return yaml_error(ctx, n[key], field, "does not apply to effect " + effect);
    return Status();
  };
  if (effect == "deny") {
    r.effect.type = HintEffectType::kDeny;
    CAIRN_RETURN_IF_ERROR(forbid("n", f_n));
    CAIRN_RETURN_IF_ERROR(forbid("defer_ms", f_defer));
    CAIRN_RETURN_IF_ERROR(forbid("fact_kind", f_fact));
  } else if (effect == "cap") {
    r.effect.type = HintEffectType::kCap;
    CAIRN_RETURN_IF_ERROR(get_int(ctx, n, "n", f_n, r.effect.n, true));
    if (r.effect.n < 0 || r.effect.n > ctx.model.hint_cap_max) {
      return yaml_error(ctx, n["n"], f_n,
                        "must be within 0.." + std::to_string(ctx.model.hint_cap_max));
    }
    CAIRN_RETURN_IF_ERROR(forbid("defer_ms", f_defer));
    CAIRN_RETURN_IF_ERROR(forbid("fact_kind", f_fact));
  } else if (effect == "priority") {
    r.effect.type = HintEffectType::kPriority;
    CAIRN_RETURN_IF_ERROR(get_int(ctx, n, "n", f_n, r.effect.n, true));
    const std::int64_t m = ctx.model.priority_abs_max;
    if (r.effect.n < -m || r.effect.n > m) {
      return yaml_error(ctx, n["n"], f_n, "must be within ±" + std::to_string(m));
    }
    CAIRN_RETURN_IF_ERROR(forbid("defer_ms", f_defer));
    CAIRN_RETURN_IF_ERROR(forbid("fact_kind", f_fact));
  } else if (effect == "defer") {
    r.effect.type = HintEffectType::kDefer;
    CAIRN_RETURN_IF_ERROR(get_int(ctx, n, "defer_ms", f_defer, r.defer_ms, true));
    if (r.defer_ms <= 0 || r.defer_ms > ctx.limits.ttl_ms_max) {
      return yaml_error(ctx, n["defer_ms"], f_defer,
                        "must be within 1.." + std::to_string(ctx.limits.ttl_ms_max));
    }
    CAIRN_RETURN_IF_ERROR(forbid("n", f_n));
    CAIRN_RETURN_IF_ERROR(forbid("fact_kind", f_fact));
  } else if (effect == "require") {
    r.effect.type = HintEffectType::kRequire;
    CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "fact_kind", f_fact, r.effect.fact_kind, true));
    CAIRN_RETURN_IF_ERROR(check_kind_at(ctx, n["fact_kind"], f_fact, r.effect.fact_kind));
    CAIRN_RETURN_IF_ERROR(forbid("n", f_n));
    CAIRN_RETURN_IF_ERROR(forbid("defer_ms", f_defer));
  } else {
    return yaml_error(ctx, n["effect"], yaml_join(where, "effect"),
                      "must be one of deny, cap, defer, priority, require");
  }
  const std::string f_ttl = yaml_join(where, "ttl_ms");
  CAIRN_RETURN_IF_ERROR(get_int(ctx, n, "ttl_ms", f_ttl, r.ttl_ms, true));
  if (r.ttl_ms <= 0 || r.ttl_ms > ctx.limits.ttl_ms_max) {
    return yaml_error(ctx, n["ttl_ms"], f_ttl,
                      "must be within 1.." + std::to_string(ctx.limits.ttl_ms_max));
  }
  CAIRN_RETURN_IF_ERROR(
      read_selector(ctx, n["selector"], yaml_join(where, "selector"), r.selector));
  CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "kind", yaml_join(where, "kind"), r.hint_kind, false));
  CAIRN_RETURN_IF_ERROR(check_kind_at(ctx, n["kind"], yaml_join(where, "kind"), r.hint_kind));
  CAIRN_RETURN_IF_ERROR(get_string(ctx, n, "reason", yaml_join(where, "reason"), r.reason, false));
  Status st = check_text(yaml_join(where, "reason"), r.reason, ctx.model.reason_bytes_max);
  if (!st.ok()) return model_error(ctx, n["reason"], yaml_join(where, "reason"), st);
  return Status();
}

Status read_rules(const Ctx& ctx, const YAML::Node& n, Contract& c) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  if (!n.IsSequence()) return yaml_error(ctx, n, "rules", "must be a list");
  if (n.size() > ctx.limits.rules_max) {
    return yaml_error(ctx, n, "rules",
                      "has more than " + std::to_string(ctx.limits.rules_max) + " rules");
  }
  std::size_t i = 0;
  for (const YAML::Node& rn : n) {
    const std::string where = yaml_index("rules", i++);
    CAIRN_RETURN_IF_ERROR(only_members(ctx, rn, where, {"name", "when", "emit"}));
    ContractRule r;
    r.line = yaml_line(rn);
    CAIRN_RETURN_IF_ERROR(get_string(ctx, rn, "name", yaml_join(where, "name"), r.name, true));
    CAIRN_RETURN_IF_ERROR(check_kind_at(ctx, rn["name"], yaml_join(where, "name"), r.name));
    for (const ContractRule& other : c.rules) {
      if (other.name == r.name) {
        return yaml_error(ctx, rn["name"], yaml_join(where, "name"),
                          "repeats the name of the rule at line " + std::to_string(other.line));
      }
    }
    const YAML::Node when = rn["when"];
    const std::string w = yaml_join(where, "when");
    if (!when.IsDefined() || when.IsNull()) return yaml_error(ctx, rn, w, "is required");
    CAIRN_RETURN_IF_ERROR(only_members(ctx, when, w, {"kind", "match"}));
    CAIRN_RETURN_IF_ERROR(get_string(ctx, when, "kind", yaml_join(w, "kind"), r.when_kind, true));
    CAIRN_RETURN_IF_ERROR(check_kind_at(ctx, when["kind"], yaml_join(w, "kind"), r.when_kind));
    CAIRN_ASSIGN_OR_RETURN(
        r.match, read_predicates(ctx, when["match"], yaml_join(w, "match"), ctx.limits.match_max,
                                 ctx.limits.predicate, false));
    const YAML::Node emit = rn["emit"];
    if (!emit.IsDefined() || emit.IsNull())
      return yaml_error(ctx, rn, yaml_join(where, "emit"), "is required");
    CAIRN_RETURN_IF_ERROR(read_emit(ctx, emit, yaml_join(where, "emit"), r));
    c.rules.push_back(std::move(r));
  }
  return Status();
}

bool valid_pattern(std::string_view p) {
  if (p.empty() || p.size() > 128) return false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char ch = p[i];
    if (ch <= ' ' || ch > '~') return false;
    if (ch == '*' && i + 1 != p.size()) return false;
  }
  return true;
}

Status read_patterns(const Ctx& ctx, const YAML::Node& map, const char* key, std::string_view field,
                     std::vector<std::string>& out) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull())
    return yaml_error(ctx, map, field, "is required (a list; [] for none)");
  if (!n.IsSequence()) return yaml_error(ctx, n, field, "must be a list");
  if (n.size() > ctx.limits.schema_patterns_max) {
    return yaml_error(
        ctx, n, field,
        "has more than " + std::to_string(ctx.limits.schema_patterns_max) + " patterns");
  }
  std::size_t i = 0;
  for (const YAML::Node& p : n) {
    const std::string f = yaml_index(field, i++);
    if (!p.IsScalar() || !valid_pattern(p.Scalar())) {
      return yaml_error(
          ctx, p, f,
          "must be a name, a prefix ending in '*', or '*' (printable ASCII, no spaces, "
          "at most 128 bytes)");
    }
    out.push_back(p.Scalar());
  }
  return Status();
}

Status read_schema(const Ctx& ctx, const YAML::Node& n, Contract& c) {
  if (!n.IsDefined()) return Status();
  if (n.IsNull())
    return yaml_error(ctx, n, "schema", "must be a map of scopes (read, agent, admin)");
  CAIRN_RETURN_IF_ERROR(only_members(ctx, n, "schema", {"read", "agent", "admin"}));
  std::vector<SchemaGate> gates;
  for (const auto& kv : n) {
    const std::string scope = kv.first.Scalar();
    const std::string where = yaml_join("schema", scope);
    SchemaGate g;
    g.scope = scope == "read" ? Scope::kRead : scope == "agent" ? Scope::kAgent : Scope::kAdmin;
    CAIRN_RETURN_IF_ERROR(only_members(ctx, kv.second, where, {"kinds", "content_types"}));
    CAIRN_RETURN_IF_ERROR(
        read_patterns(ctx, kv.second, "kinds", yaml_join(where, "kinds"), g.kinds));
    CAIRN_RETURN_IF_ERROR(read_patterns(ctx, kv.second, "content_types",
                                        yaml_join(where, "content_types"), g.content_types));
    gates.push_back(std::move(g));
  }
  c.schema = std::move(gates);
  return Status();
}

Status read_result_checks(const Ctx& ctx, const YAML::Node& n, Contract& c) {
  if (!n.IsDefined() || n.IsNull()) return Status();
  if (!n.IsSequence()) return yaml_error(ctx, n, "result_checks", "must be a list");
  if (n.size() > ctx.limits.result_checks_max) {
    return yaml_error(ctx, n, "result_checks",
                      "has more than " + std::to_string(ctx.limits.result_checks_max) + " entries");
  }
  std::size_t i = 0;
  for (const YAML::Node& e : n) {
    const std::string where = yaml_index("result_checks", i++);
    CAIRN_RETURN_IF_ERROR(only_members(ctx, e, where, {"intent_kind", "checks"}));
    ResultCheck rc;
    rc.line = yaml_line(e);
    CAIRN_RETURN_IF_ERROR(
        get_string(ctx, e, "intent_kind", yaml_join(where, "intent_kind"), rc.intent_kind, false));
    if (rc.intent_kind == "*") rc.intent_kind.clear();
    if (!rc.intent_kind.empty()) {
      CAIRN_RETURN_IF_ERROR(
          check_kind_at(ctx, e["intent_kind"], yaml_join(where, "intent_kind"), rc.intent_kind));
    }
    const YAML::Node checks = e["checks"];
    if (!checks.IsDefined() || checks.IsNull() || (checks.IsSequence() && checks.size() == 0)) {
      return yaml_error(ctx, e, yaml_join(where, "checks"), "is required (at least one check)");
    }
    CAIRN_ASSIGN_OR_RETURN(
        rc.checks, read_predicates(ctx, checks, yaml_join(where, "checks"), ctx.limits.checks_max,
                                   ctx.limits.predicate, true));
    c.result_checks.push_back(std::move(rc));
  }
  return Status();
}

Result<Contract> parse_root(const Ctx& ctx, const YAML::Node& root) {
  Contract c;
  c.file = ctx.file;
  if (!root.IsMap()) {
    return yaml_error_at(ctx, yaml_line(root, 1), "",
                         "the top level must be a map (version, rules, schema, result_checks)");
  }
  CAIRN_RETURN_IF_ERROR(
      only_members(ctx, root, "", {"version", "rules", "schema", "result_checks"}));
  if (root["version"].IsDefined()) {
    std::int64_t v = 0;
    CAIRN_RETURN_IF_ERROR(get_int(ctx, root, "version", "version", v, true));
    if (v != 1) return yaml_error(ctx, root["version"], "version", "must be 1");
  }
  CAIRN_RETURN_IF_ERROR(read_rules(ctx, root["rules"], c));
  CAIRN_RETURN_IF_ERROR(read_schema(ctx, root["schema"], c));
  CAIRN_RETURN_IF_ERROR(read_result_checks(ctx, root["result_checks"], c));
  return c;
}

}  // namespace

Result<Contract> parse_contract(std::string_view yaml, std::string_view file,
                                const ContractLimits& limits) {
  Ctx ctx{{std::string(file), "invalid_contract"}, limits, ModelLimits{}};
  if (yaml.size() > limits.file_bytes_max) {
    return too_large(ctx.file + ": larger than " + std::to_string(limits.file_bytes_max) + " bytes",
                     "too_large", Json(JsonObject{{"file", Json(ctx.file)}}));
  }
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    CAIRN_ASSIGN_OR_RETURN(Contract c, parse_root(ctx, root));
    c.sha256 = to_hex(sha256(yaml));
    return c;
  } catch (const YAML::Exception& e) {
    const std::size_t line = e.mark.line < 0 ? 1 : static_cast<std::size_t>(e.mark.line) + 1;
    return yaml_error_at(ctx, line, "", e.msg);
  } catch (const std::exception& e) {
    return yaml_error_at(ctx, 1, "", e.what());
  }
}

Result<Contract> load_contract_file(const std::string& path, const ContractLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return invalid(path + ": cannot be read", "invalid_contract",
                   Json(JsonObject{{"file", Json(path)}}));
  }
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > limits.file_bytes_max) break;
  }
  return parse_contract(text, path, limits);
}

std::shared_ptr<const engine::Governance> to_governance(const Contract& c) {
  auto g = std::make_shared<engine::Governance>();
  g->file = c.file;
  g->sha256 = c.sha256;
  g->rules = c.rules;
  g->result_checks = c.result_checks;
  return g;
}

bool pattern_matches(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') {
    return name.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == name;
}

bool schema_allows(const Contract& c, Scope scope, std::string_view kind,
                   std::string_view content_type) {
  if (!c.schema) return true;
  for (const SchemaGate& g : *c.schema) {
    if (g.scope != scope) continue;
    bool kind_ok = false;
    bool type_ok = false;
    for (const std::string& p : g.kinds) kind_ok = kind_ok || pattern_matches(p, kind);
    for (const std::string& p : g.content_types)
      type_ok = type_ok || pattern_matches(p, content_type);
    return kind_ok && type_ok;
  }
  return false;
}

}  // namespace cairn::server
