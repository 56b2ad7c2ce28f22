// yaml_read.cc — see yaml_read.h.
#include "server/yaml_read.h"

#include <charconv>
#include <utility>

#include "model/json_parse.h"

namespace cairn::server {

std::size_t yaml_line(const YAML::Node& n, std::size_t fallback) {
  if (!n.IsDefined()) return fallback;
  const YAML::Mark m = n.Mark();
  return m.line < 0 ? fallback : static_cast<std::size_t>(m.line) + 1;
}

Status yaml_error_at(const YamlDoc& doc, std::size_t line, std::string_view field,
                     std::string message) {
  std::string text = doc.file + ":" + std::to_string(line) + ": " + message;
  return invalid(
      std::move(text), doc.reason,
      Json(JsonObject{
          {"file", Json(doc.file)}, {"line", Json(std::uint64_t{line})}, {"field", Json(field)}}));
}

Status yaml_error(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                  std::string_view problem) {
  return yaml_error_at(doc, yaml_line(n), field, std::string(field) + " " + std::string(problem));
}

Status yaml_syntax_error(const YamlDoc& doc, const YAML::Exception& e) {
  const std::size_t line = e.mark.line < 0 ? 1 : static_cast<std::size_t>(e.mark.line) + 1;
  return yaml_error_at(doc, line, "", "is not valid YAML: " + e.msg);
}

std::string yaml_join(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return std::string(where) + "." + std::string(key);
}

std::string yaml_index(std::string_view where, std::size_t i) {
  return std::string(where) + "[" + std::to_string(i) + "]";
}

Status only_members(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                    std::initializer_list<std::string_view> allowed) {
  if (!n.IsMap()) {
    return yaml_error(doc, n, field.empty() ? std::string_view("the top level") : field,
                      "must be a map");
  }
  std::vector<std::pair<std::string, std::size_t>> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) {
      return yaml_error(doc, kv.first, field, "has a key that is not a name");
    }
    const std::string& k = kv.first.Scalar();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return yaml_error(doc, kv.first, yaml_join(field, k), "is not a known field (" + list + ")");
    }
    for (const auto& [name, line] : seen) {
      if (name == k) {
        return yaml_error(doc, kv.first, yaml_join(field, k),
                          "is repeated (first at line " + std::to_string(line) + ")");
      }
    }
    seen.emplace_back(k, yaml_line(kv.first));
  }
  return Status();
}

Status read_bounded(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                    std::int64_t lo, std::int64_t hi, std::int64_t& out) {
  const std::string range =
      "must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!n.IsScalar()) return yaml_error(doc, n, field, range);
  const std::string& s = n.Scalar();
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    return yaml_error(doc, n, field, range);
  }
  out = v;
  return Status();
}

Result<Json> yaml_to_json(const YamlDoc& doc, const YAML::Node& n, std::string_view field,
                          std::size_t depth) {
  if (depth > 16) return yaml_error(doc, n, field, "is nested too deeply");
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return Json();
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return Json(s);  // quoted
      if (s == "null" || s == "~" || s.empty()) return Json();
      if (s == "true") return Json(true);
      if (s == "false") return Json(false);
      const char c = s[0];
      if (c == '-' || (c >= '0' && c <= '9')) {
        Result<Json> num = parse_json(s);
        if (num.ok() && num->is_number()) return std::move(num).value();
      }
      return Json(s);
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      std::size_t i = 0;
      for (const YAML::Node& item : n) {
        CAIRN_ASSIGN_OR_RETURN(Json v, yaml_to_json(doc, item, yaml_index(field, i++), depth + 1));
        out.push_back(std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return yaml_error(doc, kv.first, field, "has a key that is not a name");
        }
        const std::string& key = kv.first.Scalar();
        if (out.find(key) != nullptr) {
          return yaml_error(doc, kv.first, yaml_join(field, key), "is repeated");
        }
        CAIRN_ASSIGN_OR_RETURN(Json v,
                               yaml_to_json(doc, kv.second, yaml_join(field, key), depth + 1));
        out.set(key, std::move(v));
      }
      return out;
    }
  }
  return Json();
}

Result<Predicate> read_predicate(const YamlDoc& doc, const YAML::Node& n, std::string_view where,
                                 const PredicateLimits& limits, bool result_check) {
  CAIRN_ASSIGN_OR_RETURN(Json j, yaml_to_json(doc, n, where, 0));
  Result<Predicate> p =
      result_check ? parse_result_check(j, limits, where) : parse_predicate(j, limits, where);
  if (p.ok()) return p;
  const Status& st = p.status();
  std::string field(where);
  if (const Json* f = st.details().find("field"); f != nullptr && f->is_string()) {
    field = f->as_string();
  }
  std::size_t line = yaml_line(n);
  if (n.IsMap() && field.size() > where.size() + 1) {
    const std::string member = field.substr(where.size() + 1);
    for (const auto& kv : n) {
      if (kv.first.IsScalar() && kv.first.Scalar() == member) line = yaml_line(kv.second, line);
    }
  }
  return yaml_error_at(doc, line, field, st.message());
}

Result<std::vector<Predicate>> read_predicates(const YamlDoc& doc, const YAML::Node& n,
                                               std::string_view where, std::size_t max,
                                               const PredicateLimits& limits, bool result_check) {
  std::vector<Predicate> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence()) return yaml_error(doc, n, where, "must be a list of predicates");
  if (n.size() > max) {
    return yaml_error(doc, n, where, "has more than " + std::to_string(max) + " predicates");
  }
  std::size_t i = 0;
  for (const YAML::Node& item : n) {
    CAIRN_ASSIGN_OR_RETURN(Predicate p,
                           read_predicate(doc, item, yaml_index(where, i++), limits, result_check));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace cairn::server
