// predicate.cc — JSON paths, predicate parsing and evaluation.
#include "model/predicate.h"

#include <array>
#include <string>
#include <utility>

namespace cairn {

namespace {

struct OpEntry {
  PredicateOp op;
  std::string_view name;
};

constexpr std::array<OpEntry, 11> kOps = {{
    {PredicateOp::kEq, "eq"},
    {PredicateOp::kNe, "ne"},
    {PredicateOp::kGt, "gt"},
    {PredicateOp::kLt, "lt"},
    {PredicateOp::kGe, "ge"},
    {PredicateOp::kLe, "le"},
    {PredicateOp::kExists, "exists"},
    {PredicateOp::kIn, "in"},
    {PredicateOp::kPrefix, "prefix"},
    {PredicateOp::kPositive, "positive"},
    {PredicateOp::kEven, "even"},
}};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

Status path_error(std::size_t offset, std::string_view problem) {
  return invalid("invalid path: " + std::string(problem) + " at byte " + std::to_string(offset),
                 "invalid_path", Json(JsonObject{{"offset", Json(std::uint64_t{offset})}}));
}

std::string field_name(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  std::string out(where);
  out += '.';
  out += key;
  return out;
}

Status bad_field(std::string_view field, std::string_view problem) {
  return invalid(std::string(field) + " " + std::string(problem), "invalid_field",
                 Json(JsonObject{{"field", Json(field)}}));
}

Status field_too_large(std::string_view field, std::string_view problem) {
  return too_large(std::string(field) + " " + std::string(problem), "too_large",
                   Json(JsonObject{{"field", Json(field)}}));
}

bool is_ordering(PredicateOp op) {
  return op == PredicateOp::kGt || op == PredicateOp::kLt || op == PredicateOp::kGe ||
         op == PredicateOp::kLe;
}

// eq: same type and deep-equal.
bool same_type_equal(const Json& a, const Json& b) {
  return a.type() == b.type() && a == b;
}

// Three-way comparison of two numbers or two strings; false when unordered.
bool compare(const Json& v, const Json& operand, int& out) {
  if (v.is_number() && operand.is_number()) {
    double a = v.as_number();
    double b = operand.as_number();
    out = a < b ? -1 : (a > b ? 1 : 0);
    return true;
  }
  if (v.is_string() && operand.is_string()) {
    int c = v.as_string().compare(operand.as_string());  // char_traits: unsigned bytes
    out = c < 0 ? -1 : (c > 0 ? 1 : 0);
    return true;
  }
  return false;
}

}  // namespace

std::string_view op_name(PredicateOp op) {
  for (const OpEntry& e : kOps) {
    if (e.op == op) return e.name;
  }
  CAIRN_ASSERT_MSG(false, "unknown predicate op");
  return {};
}

bool op_from_name(std::string_view name, PredicateOp& out) {
  for (const OpEntry& e : kOps) {
    if (e.name == name) {
      out = e.op;
      return true;
    }
  }
  return false;
}

Result<JsonPath> parse_json_path(std::string_view text, const PredicateLimits& limits) {
  if (text.size() > limits.path_bytes_max) {
    return too_large("path is longer than " + std::to_string(limits.path_bytes_max) + " bytes",
                     "too_large");
  }
  if (text.empty() || text[0] != '$') return path_error(0, "must start with '$'");
  JsonPath path;
  path.text = std::string(text);
  std::size_t i = 1;
  while (i < text.size()) {
    if (path.steps.size() == limits.path_steps_max) {
      return too_large("path has more than " + std::to_string(limits.path_steps_max) + " steps",
                       "too_large");
    }
    PathStep step;
    if (text[i] == '.') {
      std::size_t start = ++i;
      while (i < text.size() && is_name_char(text[i])) ++i;
      if (i == start) return path_error(start, "expected a member name after '.'");
      step.name = std::string(text.substr(start, i - start));
    } else if (text[i] == '[') {
      ++i;
      if (i < text.size() && text[i] == '"') {
        ++i;
        bool closed = false;
        while (i < text.size()) {
          char c = text[i];
          if (c == '"') {
            closed = true;
            ++i;
            break;
          }
          if (c == '\\') {
            if (i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
              step.name += text[i + 1];
              i += 2;
              continue;
            }
            return path_error(i, "only \\\" and \\\\ may be escaped in a quoted name");
          }
          step.name += c;
          ++i;
        }
        if (!closed) return path_error(text.size(), "unterminated quoted name");
      } else {
        std::size_t start = i;
        std::uint32_t n = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
          if (i - start == 9) return path_error(start, "array index must be below 10^9");
          n = n * 10 + static_cast<std::uint32_t>(text[i] - '0');
          ++i;
        }
        if (i == start) return path_error(start, "expected an array index or a quoted name");
        if (text[start] == '0' && i - start > 1) {
          return path_error(start, "array index has a leading zero");
        }
        step.is_index = true;
        step.index = n;
      }
      if (i >= text.size() || text[i] != ']') return path_error(i, "expected ']'");
      ++i;
    } else {
      return path_error(i, "expected '.' or '['");
    }
    path.steps.push_back(std::move(step));
  }
  return path;
}

const Json* resolve(const JsonPath& path, const Json& doc) {
  const Json* at = &doc;
  for (const PathStep& s : path.steps) {
    if (s.is_index) {
      const JsonArray* a = at->array_if();
      if (a == nullptr || s.index >= a->size()) return nullptr;
      at = &(*a)[s.index];
    } else {
      if (!at->is_object()) return nullptr;
      at = at->find(s.name);
      if (at == nullptr) return nullptr;
    }
  }
  return at;
}

namespace {

Result<Predicate> parse_impl(const Json& obj, const PredicateLimits& limits, std::string_view where,
                             bool result_check) {
  std::string self = where.empty() ? std::string("predicate") : std::string(where);
  if (!obj.is_object()) return bad_field(self, "must be a JSON object");
  for (const JsonMember& m : obj.as_object()) {
    if (m.first != "path" && m.first != "op" && m.first != "value") {
      std::string f = field_name(where, m.first);
      return invalid(f + " is not a known field (path, op, value)", "unknown_field",
                     Json(JsonObject{{"field", Json(f)}}));
    }
  }
  Predicate p;

  const std::string path_field = field_name(where, "path");
  const Json* path = obj.find("path");
  if (path == nullptr || path->is_null()) return bad_field(path_field, "is required");
  if (!path->is_string()) return bad_field(path_field, "must be a string");
  Result<JsonPath> parsed = parse_json_path(path->as_string(), limits);
  if (!parsed.ok()) {
    const Status& st = parsed.status();
    Json details = JsonObject{{"field", Json(path_field)}};
    if (const Json* off = st.details().find("offset")) details.set("offset", *off);
    std::string message = path_field + ": " + st.message();
    if (st.code() == Code::kTooLarge) {
      return too_large(std::move(message), "too_large", std::move(details));
    }
    return invalid(std::move(message), "invalid_field", std::move(details));
  }
  p.path = std::move(parsed).value();

  const std::string op_field = field_name(where, "op");
  const Json* op = obj.find("op");
  if (op == nullptr || op->is_null()) return bad_field(op_field, "is required");
  if (!op->is_string() || !op_from_name(op->as_string(), p.op)) {
    return bad_field(op_field,
                     "must be one of eq, ne, gt, lt, ge, le, exists, in, prefix, positive, even");
  }
  if (result_check &&
      (p.op == PredicateOp::kExists || p.op == PredicateOp::kIn || p.op == PredicateOp::kPrefix)) {
    return bad_field(op_field,
                     "must be a numeric check: one of eq, ne, gt, lt, ge, le, positive, even");
  }

  const std::string value_field = field_name(where, "value");
  const Json* value = obj.find("value");  // present, even when null
  switch (p.op) {
    case PredicateOp::kPositive:
    case PredicateOp::kEven:
      if (value != nullptr) {
        return bad_field(value_field, "must be absent for " + std::string(op_name(p.op)));
      }
      return p;
    case PredicateOp::kExists:
      if (value == nullptr) {
        p.value = Json(true);
      } else if (!value->is_bool()) {
        return bad_field(value_field, "must be a boolean for exists");
      } else {
        p.value = *value;
      }
      return p;
    default:
      break;
  }
  if (value == nullptr) {
    return bad_field(value_field, "is required for " + std::string(op_name(p.op)));
  }
  if (to_jcs(*value).size() > limits.value_bytes_max) {
    return field_too_large(value_field,
                           "is larger than " + std::to_string(limits.value_bytes_max) + " bytes");
  }
  if (result_check && !value->is_number()) {
    return bad_field(value_field, "must be a number for a result check");
  }
  if (is_ordering(p.op) && !value->is_number() && !value->is_string()) {
    return bad_field(value_field, "must be a number or a string for " + std::string(op_name(p.op)));
  }
  if (p.op == PredicateOp::kPrefix && !value->is_string()) {
    return bad_field(value_field, "must be a string for prefix");
  }
  if (p.op == PredicateOp::kIn) {
    if (!value->is_array()) return bad_field(value_field, "must be an array for in");
    if (value->size() == 0) return bad_field(value_field, "must not be empty for in");
    if (value->size() > limits.in_values_max) {
      return field_too_large(value_field,
                             "has more than " + std::to_string(limits.in_values_max) + " items");
    }
  }
  p.value = *value;
  return p;
}

}  // namespace

Result<Predicate> parse_predicate(const Json& obj, const PredicateLimits& limits,
                                  std::string_view where) {
  return parse_impl(obj, limits, where, /*result_check=*/false);
}

Result<Predicate> parse_result_check(const Json& obj, const PredicateLimits& limits,
                                     std::string_view where) {
  return parse_impl(obj, limits, where, /*result_check=*/true);
}

Json predicate_to_json(const Predicate& p) {
  Json out = Json::object();
  out.set("path", Json(p.path.text));
  out.set("op", Json(op_name(p.op)));
  if (p.op != PredicateOp::kPositive && p.op != PredicateOp::kEven) out.set("value", p.value);
  return out;
}

bool evaluate(const Predicate& p, const Json& doc) {
  const Json* v = resolve(p.path, doc);
  if (p.op == PredicateOp::kExists) {
    bool want = p.value.bool_if().value_or(true);
    return (v != nullptr) == want;
  }
  if (v == nullptr) return false;
  int c = 0;
  switch (p.op) {
    case PredicateOp::kEq:
      return same_type_equal(*v, p.value);
    case PredicateOp::kNe:
      return v->type() == p.value.type() && *v != p.value;
    case PredicateOp::kGt:
      return compare(*v, p.value, c) && c > 0;
    case PredicateOp::kLt:
      return compare(*v, p.value, c) && c < 0;
    case PredicateOp::kGe:
      return compare(*v, p.value, c) && c >= 0;
    case PredicateOp::kLe:
      return compare(*v, p.value, c) && c <= 0;
    case PredicateOp::kIn:
      if (const JsonArray* a = p.value.array_if()) {
        for (const Json& item : *a) {
          if (same_type_equal(*v, item)) return true;
        }
      }
      return false;
    case PredicateOp::kPrefix: {
      const std::string* s = v->string_if();
      const std::string* pre = p.value.string_if();
      return s != nullptr && pre != nullptr && s->starts_with(*pre);
    }
    case PredicateOp::kPositive: {
      auto d = v->number_if();
      return d && *d > 0;
    }
    case PredicateOp::kEven: {
      auto i = v->int_if();
      return i && *i % 2 == 0;
    }
    case PredicateOp::kExists:
      break;
  }
  return false;
}

bool evaluate_all(const std::vector<Predicate>& ps, const Json& doc) {
  for (const Predicate& p : ps) {
    if (!evaluate(p, doc)) return false;
  }
  return true;
}

}  // namespace cairn
