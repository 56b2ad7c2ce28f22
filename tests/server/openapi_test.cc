// openapi_test.cc — docs/openapi.yaml against the real server.
//
// 1. The spec's paths and methods are exactly Api::routes() (both ways).
// 2. Every operation is called on in-process cairnd servers (no auth, auth,
//    tight limits) through its successes and its refusals; each reply's status
//    must be declared for that operation, its declared headers present, and its
//    body valid against the declared schema. Every operation must be seen
//    answering a 2xx, and every undeclared method on a spec path must get 405.
//
// The schemas are checked by a small JSON Schema validator written here for the
// keywords the spec uses ($ref, type, enum, const, required, properties,
// additionalProperties, items, min/maxItems, uniqueItems, minimum, maximum,
// min/maxLength, pattern, allOf, anyOf, oneOf). A keyword it does not know
// fails the test, so the spec cannot lean on a check nobody runs.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "model/json_parse.h"
#include "model/sha256.h"
#include "server/api.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

constexpr const char* kSpecPath = CAIRN_OPENAPI_PATH;
constexpr std::string_view kMethods[] = {"get",     "put",  "post",  "delete",
                                         "options", "head", "patch", "trace"};

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

// ---- YAML → Json ---------------------------------------------------------------

// YAML 1.2 core schema: plain scalars that are numbers, booleans or null.
Json yaml_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() != "?") return Json(s);  // quoted or block scalar: a string
  if (s == "true") return Json(true);
  if (s == "false") return Json(false);
  if (s.empty() || s == "null" || s == "~") return Json();
  static const std::regex kNumber(R"(^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$)");
  if (std::regex_match(s, kNumber)) return Json(std::stod(s));
  return Json(s);
}

Json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return yaml_scalar(n);
    case YAML::NodeType::Sequence: {
      JsonArray a;
      for (const auto& e : n) a.push_back(yaml_to_json(e));
      return Json(std::move(a));
    }
    case YAML::NodeType::Map: {
      JsonObject o;
      for (const auto& kv : n) o.emplace_back(kv.first.Scalar(), yaml_to_json(kv.second));
      return Json(std::move(o));
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return Json();
}

const Json& spec() {
  static const Json s = [] {
    try {
      return yaml_to_json(YAML::LoadFile(kSpecPath));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot read " << kSpecPath << ": " << e.what();
      return Json::object();
    }
  }();
  return s;
}

// ---- a JSON Schema subset --------------------------------------------------------

class SchemaValidator {
 public:
  explicit SchemaValidator(const Json& root) : root_(root) {}

  // The problems found; empty when `v` satisfies `schema`.
  std::vector<std::string> validate(const Json& schema, const Json& v) const {
    std::vector<std::string> errs;
    check(schema, v, "$", errs);
    return errs;
  }

  // Follows a local "#/a/b" reference.
  const Json* pointer(std::string_view ref) const {
    if (ref.substr(0, 2) != "#/") return nullptr;
    const Json* at = &root_;
    std::string_view rest = ref.substr(2);
    while (at != nullptr && !rest.empty()) {
      const auto slash = rest.find('/');
      std::string part(rest.substr(0, slash));
      for (std::size_t i; (i = part.find("~1")) != std::string::npos;) part.replace(i, 2, "/");
      for (std::size_t i; (i = part.find("~0")) != std::string::npos;) part.replace(i, 2, "~");
      at = at->find(part);
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    }
    return at;
  }

  // `node` itself, or what its $ref names.
  const Json& resolve(const Json& node) const {
    const Json* ref = node.find("$ref");
    if (ref == nullptr || !ref->is_string()) return node;
    const Json* target = pointer(ref->as_string());
    if (target == nullptr) {
      ADD_FAILURE() << "unresolved $ref " << ref->as_string();
      return node;
    }
    return resolve(*target);
  }

 private:
  static bool has_type(const Json& v, const std::string& t) {
    if (t == "null") return v.is_null();
    if (t == "boolean") return v.is_bool();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") return v.int_if().has_value();
    ADD_FAILURE() << "unknown JSON Schema type " << t;
    return false;
  }

  static std::size_t code_points(const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }

  void check(const Json& schema, const Json& v, const std::string& at,
             std::vector<std::string>& errs) const {
    if (schema.is_bool()) {
      if (!schema.as_bool()) errs.push_back(at + ": no value is allowed here");
      return;
    }
    const JsonObject* s = schema.object_if();
    if (s == nullptr) {
      ADD_FAILURE() << "a schema must be an object or a boolean at " << at;
      return;
    }
    auto fail = [&](const std::string& what) { errs.push_back(at + ": " + what); };
    for (const auto& [key, kw] : *s) {
      if (key == "$ref") {
        const Json* target = pointer(kw.as_string());
        if (target == nullptr) {
          ADD_FAILURE() << "unresolved $ref " << kw.as_string();
        } else {
          check(*target, v, at, errs);
        }
      } else if (key == "type") {
        bool ok = false;
        if (kw.is_string()) {
          ok = has_type(v, kw.as_string());
        } else {
          for (const Json& t : kw.as_array()) ok = ok || has_type(v, t.as_string());
        }
        if (!ok) fail("is " + to_json(v).substr(0, 80) + ", not of type " + to_json(kw));
      } else if (key == "enum") {
        const JsonArray& a = kw.as_array();
        if (std::find(a.begin(), a.end(), v) == a.end()) {
          fail(to_json(v).substr(0, 80) + " is not one of " + to_json(kw));
        }
      } else if (key == "const") {
        if (v != kw) fail(to_json(v).substr(0, 80) + " is not " + to_json(kw));
      } else if (key == "required") {
        if (!v.is_object()) continue;
        for (const Json& name : kw.as_array()) {
          if (v.find(name.as_string()) == nullptr) fail("lacks member " + name.as_string());
        }
      } else if (key == "properties") {
        if (!v.is_object()) continue;
        for (const auto& [name, sub] : kw.as_object()) {
          if (const Json* m = v.find(name)) check(sub, *m, at + "." + name, errs);
        }
      } else if (key == "additionalProperties") {
        const JsonObject* o = v.object_if();
        if (o == nullptr) continue;
        const Json* props = schema.find("properties");
        for (const auto& [name, m] : *o) {
          if (props != nullptr && props->find(name) != nullptr) continue;
          if (kw.is_bool() && !kw.as_bool()) {
            fail("has member " + name + ", which the schema does not declare");
          } else {
            check(kw, m, at + "." + name, errs);
          }
        }
      } else if (key == "items") {
        const JsonArray* a = v.array_if();
        if (a == nullptr) continue;
        for (std::size_t i = 0; i < a->size(); ++i) {
          check(kw, (*a)[i], at + "[" + std::to_string(i) + "]", errs);
        }
      } else if (key == "minItems" || key == "maxItems") {
        const JsonArray* a = v.array_if();
        if (a == nullptr) continue;
        const double n = static_cast<double>(a->size());
        if (key == "minItems" ? n < kw.as_number() : n > kw.as_number()) {
          fail("has " + std::to_string(a->size()) + " items; " + key + " is " + to_json(kw));
        }
      } else if (key == "uniqueItems") {
        const JsonArray* a = v.array_if();
        if (a == nullptr || !kw.as_bool()) continue;
        for (std::size_t i = 0; i < a->size(); ++i) {
          for (std::size_t j = i + 1; j < a->size(); ++j) {
            if ((*a)[i] == (*a)[j]) fail("repeats item " + to_json((*a)[i]));
          }
        }
      } else if (key == "minimum" || key == "maximum") {
        if (!v.is_number()) continue;
        const double n = v.as_number();
        if (key == "minimum" ? n < kw.as_number() : n > kw.as_number()) {
          fail(to_json(v) + " is out of range (" + key + " " + to_json(kw) + ")");
        }
      } else if (key == "minLength" || key == "maxLength") {
        if (!v.is_string()) continue;
        const double n = static_cast<double>(code_points(v.as_string()));
        if (key == "minLength" ? n < kw.as_number() : n > kw.as_number()) {
          fail("has length " + to_json(Json(n)) + "; " + key + " is " + to_json(kw));
        }
      } else if (key == "pattern") {
        if (!v.is_string()) continue;
        if (!std::regex_search(v.as_string(), std::regex(kw.as_string()))) {
          fail(to_json(v).substr(0, 80) + " does not match " + kw.as_string());
        }
      } else if (key == "allOf") {
        for (const Json& sub : kw.as_array()) check(sub, v, at, errs);
      } else if (key == "anyOf" || key == "oneOf") {
        std::size_t matches = 0;
        std::vector<std::string> why;
        for (const Json& sub : kw.as_array()) {
          std::vector<std::string> e;
          check(sub, v, at, e);
          if (e.empty()) {
            ++matches;
          } else {
            why.push_back(e.front());
          }
        }
        if (matches == 0) fail("matches none of " + key + join(why));
        if (key == "oneOf" && matches > 1) fail("matches more than one of oneOf");
      } else if (key == "description" || key == "title" || key == "default" || key == "example" ||
                 key == "examples" || key == "format") {
        // Annotations.
      } else {
        ADD_FAILURE() << "the test's validator does not know keyword '" << key << "' (at " << at
                      << "); teach it before the spec uses it";
      }
    }
  }

  const Json& root_;
};

// ---- the spec's operations -------------------------------------------------------

struct Operation {
  std::string route;  // "POST /v1/facts"
  const Json* op = nullptr;
};

std::vector<Operation> spec_operations() {
  std::vector<Operation> out;
  const Json* paths = spec().find("paths");
  if (paths == nullptr || !paths->is_object()) {
    ADD_FAILURE() << "the spec has no paths";
    return out;
  }
  for (const auto& [path, item] : paths->as_object()) {
    for (std::string_view m : kMethods) {
      if (const Json* op = item.find(m)) out.push_back({upper(std::string(m)) + " " + path, op});
    }
  }
  return out;
}

const Json* find_operation(const std::string& route) {
  for (const Operation& o : spec_operations()) {
    if (o.route == route) return o.op;
  }
  return nullptr;
}

// Checks replies against the spec and remembers which operations answered 2xx.
class Conformance {
 public:
  Conformance() : v_(spec()) {}

  // Sends one request for `route` (the spec's "METHOD /template") to `target`
  // and checks the reply; `expect` is the status the scenario means to cause.
  HttpResult call(const TestServer& srv, const std::string& route, const std::string& target,
                  int expect, const std::string& body = {}, const Headers& headers = {}) {
    const std::string method = route.substr(0, route.find(' '));
    HttpResult r = http(srv.port, method, target, body, headers);
    EXPECT_EQ(r.status, expect) << route << " → " << target << ": " << r.body;
    check(route, r);
    return r;
  }

  // Checks a reply for `route`: its status is declared, the declared headers
  // are present, the body matches the declared media type and schema.
  void check(const std::string& route, const HttpResult& r) {
    const Json* op = find_operation(route);
    ASSERT_NE(op, nullptr) << route << " is not in the spec";
    const Json* declared = op->find("responses")->find(std::to_string(r.status));
    if (declared == nullptr) {
      ADD_FAILURE() << route << " answered " << r.status
                    << ", a status the spec does not declare for it: " << r.body;
      return;
    }
    if (r.status >= 200 && r.status < 300) answered_2xx_.insert(route);
    const Json& resp = v_.resolve(*declared);
    if (const Json* hs = resp.find("headers")) {
      for (const auto& [name, h] : hs->as_object()) {
        const Json& header = v_.resolve(h);
        const Json* req = header.find("required");
        auto it = r.headers.find(lower(name));
        if (req != nullptr && req->as_bool()) {
          EXPECT_NE(it, r.headers.end()) << route << " " << r.status << " lacks header " << name;
        }
        if (it == r.headers.end()) continue;
        Json value(it->second);
        if (auto n = parse_json(it->second); n.ok() && n->is_number()) value = *n;
        expect_valid(route, r.status, *header.find("schema"), value, "header " + name);
      }
    }
    const Json* content = resp.find("content");
    if (content == nullptr) {
      EXPECT_TRUE(r.body.empty()) << route << " " << r.status << " declares no body";
      return;
    }
    std::string type = r.headers.count("content-type") ? r.headers.at("content-type") : "";
    type = type.substr(0, type.find(';'));
    const Json* media = content->find(type);
    if (media == nullptr) {
      ADD_FAILURE() << route << " " << r.status << " answered Content-Type '" << type
                    << "', which the spec does not declare: " << to_json(*content).substr(0, 200);
      return;
    }
    const Json* schema = media->find("schema");
    ASSERT_NE(schema, nullptr) << route << " " << r.status << " " << type << " has no schema";
    if (type == "application/json") {
      auto body = parse_json(r.body);
      ASSERT_TRUE(body.ok()) << route << " " << r.status << " body is not JSON: " << r.body;
      expect_valid(route, r.status, *schema, *body, "body");
    } else {
      expect_valid(route, r.status, *schema, Json(r.body), "body");
    }
  }

  void expect_valid(const std::string& route, int status, const Json& schema, const Json& value,
                    const std::string& what) {
    const auto errs = v_.validate(schema, value);
    EXPECT_TRUE(errs.empty()) << route << " " << status << " " << what
                              << " does not match the spec:" << join(errs)
                              << "\n  value: " << to_json(value).substr(0, 600);
  }

  void mark_2xx(const std::string& route) { answered_2xx_.insert(route); }
  const std::set<std::string>& answered_2xx() const { return answered_2xx_; }
  const SchemaValidator& validator() const { return v_; }

 private:
  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  SchemaValidator v_;
  std::set<std::string> answered_2xx_;
};

server::TokenConfig token(const std::string& name, const std::string& secret, server::Scope s) {
  return server::TokenConfig{name, to_hex(sha256(secret)), s};
}

Headers bearer(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}};
}

// ---- the tests -----------------------------------------------------------------

TEST(OpenApi, PathsAndMethodsAreTheServersRoutes) {
  std::set<std::string> in_spec;
  for (const Operation& o : spec_operations()) in_spec.insert(o.route);
  const std::vector<std::string> routes = server::Api::routes();
  const std::set<std::string> in_server(routes.begin(), routes.end());
  EXPECT_EQ(in_server.size(), routes.size()) << "Api::routes() repeats a route";

  std::vector<std::string> only_server;
  std::vector<std::string> only_spec;
  std::set_difference(in_server.begin(), in_server.end(), in_spec.begin(), in_spec.end(),
                      std::back_inserter(only_server));
  std::set_difference(in_spec.begin(), in_spec.end(), in_server.begin(), in_server.end(),
                      std::back_inserter(only_spec));
  EXPECT_TRUE(only_server.empty())
      << "routes the server answers that docs/openapi.yaml lacks:" << join(only_server);
  EXPECT_TRUE(only_spec.empty()) << "operations in docs/openapi.yaml the server does not answer:"
                                 << join(only_spec);
}

// What every operation must say about itself: idempotency keys on mutations,
// auth refusals where auth applies, Retry-After on 429/503, and every error
// reply in the shared error shape.
TEST(OpenApi, OperationsDeclareTheSharedContract) {
  const SchemaValidator v(spec());
  const Json* error_schema = v.pointer("#/components/schemas/Error");
  ASSERT_NE(error_schema, nullptr);
  for (const Operation& o : spec_operations()) {
    SCOPED_TRACE(o.route);
    const std::string method = o.route.substr(0, o.route.find(' '));
    const Json* responses = o.op->find("responses");
    ASSERT_NE(responses, nullptr);
    bool has_2xx = false;
    for (const auto& [status, r] : responses->as_object()) {
      SCOPED_TRACE(status);
      has_2xx = has_2xx || status[0] == '2';
      if (status[0] != '4' && status[0] != '5') continue;
      const Json& resp = v.resolve(r);
      const Json* schema =
          resp.find("content") ? resp.find("content")->find("application/json") : nullptr;
      ASSERT_NE(schema, nullptr) << "an error reply without an application/json body";
      schema = schema->find("schema");
      ASSERT_NE(schema, nullptr);
      // An error body of the shared shape with a code this reply may carry.
      const Json& s = v.resolve(*schema);
      const bool is_error = &s == error_schema ||
                            to_json(s).find("#/components/schemas/Error\"") != std::string::npos;
      EXPECT_TRUE(is_error) << "the error reply's schema is not (an extension of) Error";
      if (status == "429" || status == "503") {
        const Json* h = resp.find("headers");
        EXPECT_TRUE(h != nullptr && h->find("Retry-After") != nullptr) << "no Retry-After";
      }
    }
    EXPECT_TRUE(has_2xx);
    // Log routes are outside the engine's idempotency window: an append is not
    // deduplicated (it refuses a key), and archival may simply run again.
    const bool not_deduplicated = o.route == "POST /v1/logs" || o.route == "POST /v1/logs/archive";
    const bool mutation = (method == "POST" || method == "DELETE") && !not_deduplicated;
    bool idempotency_key = false;
    if (const Json* params = o.op->find("parameters")) {
      for (const Json& p : params->as_array()) {
        const Json& param = v.resolve(p);
        if (str(param, "name") == "Idempotency-Key" && str(param, "in") == "header") {
          idempotency_key = true;
        }
      }
    }
    EXPECT_EQ(idempotency_key, mutation)
        << "Idempotency-Key belongs on exactly the deduplicated mutations";
    if (o.route != "GET /healthz") {
      EXPECT_NE(responses->find("401"), nullptr);
      EXPECT_NE(responses->find("403"), nullptr);
    }
  }
}

// The validator must refuse what the schemas forbid (else the conformance
// test below could not fail).
TEST(OpenApi, ValidatorRefusesWhatTheSchemasForbid) {
  const SchemaValidator v(spec());
  const Json* fact_schema = v.pointer("#/components/schemas/Fact");
  ASSERT_NE(fact_schema, nullptr);
  const std::string id(64, 'a');
  auto fact = parse_json(R"({"content":{"a":1},"content_type":"application/json",)"
                         R"("creator":"bob","derived_from":[],"kind":"obs","id":")" +
                         id + R"(","seq":1,"recorded_at":1795253704491})");
  ASSERT_TRUE(fact.ok());
  EXPECT_TRUE(v.validate(*fact_schema, *fact).empty()) << join(v.validate(*fact_schema, *fact));
  auto broken = [&](auto&& mutate) {
    Json f = *fact;
    mutate(f);
    return !v.validate(*fact_schema, f).empty();
  };
  EXPECT_TRUE(broken([](Json& f) { f.erase("id"); }));             // required
  EXPECT_TRUE(broken([](Json& f) { f.set("extra", Json(1)); }));   // additionalProperties
  EXPECT_TRUE(broken([](Json& f) { f.set("seq", Json(1.5)); }));   // integer
  EXPECT_TRUE(broken([](Json& f) { f.set("seq", Json(-1)); }));    // minimum
  EXPECT_TRUE(broken([](Json& f) { f.set("id", Json("ABC")); }));  // pattern
  EXPECT_TRUE(broken([](Json& f) { f.set("kind", Json("")); }));   // minLength
  EXPECT_TRUE(broken([](Json& f) { f.set("kind", Json(std::string(129, 'k'))); }));  // maxLength
  EXPECT_TRUE(broken([](Json& f) { f.set("derived_from", Json(JsonArray{Json(1)})); }));  // items

  const Json* claims = v.pointer("#/components/schemas/ClaimsRequest");
  ASSERT_NE(claims, nullptr);
  EXPECT_TRUE(v.validate(*claims, *parse_json(R"({"agent":"a","max":256})")).empty());
  EXPECT_FALSE(v.validate(*claims, *parse_json(R"({"agent":"a","max":257})")).empty());
  const Json* effect = v.pointer("#/components/schemas/HintEffect");
  ASSERT_NE(effect, nullptr);
  EXPECT_TRUE(v.validate(*effect, *parse_json(R"({"type":"cap","n":2})")).empty());
  EXPECT_FALSE(v.validate(*effect, *parse_json(R"({"type":"cap"})")).empty());    // oneOf
  EXPECT_FALSE(v.validate(*effect, *parse_json(R"({"type":"bogus"})")).empty());  // const
  const Json* err = v.pointer("#/components/schemas/HolderConflictError");
  ASSERT_NE(err, nullptr);
  const Json good_err =
      *parse_json(R"({"error":{"code":"stale_epoch","message":"m","details":{}}})");
  EXPECT_TRUE(v.validate(*err, good_err).empty());
  EXPECT_FALSE(
      v.validate(*err, *parse_json(R"({"error":{"code":"id_exists","message":"m","details":{}}})"))
          .empty());  // allOf + enum
  EXPECT_FALSE(
      v.validate(*err, *parse_json(R"({"error":{"code":"stale_epoch","message":"m"}})")).empty());
  const Json* page = v.pointer("#/components/schemas/FactPage");
  ASSERT_NE(page, nullptr);
  EXPECT_TRUE(v.validate(*page, *parse_json(R"({"facts":[],"next":null})")).empty());
  EXPECT_FALSE(v.validate(*page, *parse_json(R"({"facts":[],"next":"x"})")).empty());  // types
  const Json* ttl = v.pointer("#/components/schemas/LeaseTtlMs");
  ASSERT_NE(ttl, nullptr);
  EXPECT_TRUE(v.validate(*ttl, Json(0)).empty());
  EXPECT_FALSE(v.validate(*ttl, Json(50)).empty());  // anyOf
}

class OpenApiConformance : public ::testing::Test {
 protected:
  static std::string fact_body(const std::string& content, const std::string& extra = "") {
    return R"({"kind":"obs","content":)" + content + extra + "}";
  }
  static std::string intent_body(const std::string& id, const std::string& fact,
                                 const std::string& extra = "") {
    return R"({"id":")" + id + R"(","kind":"job","from_facts":[")" + fact + "\"]" + extra + "}";
  }

  Conformance c;
};

TEST_F(OpenApiConformance, EveryRouteAnswersAsTheSpecSays) {
  TestServer srv;
  srv.start();
  const std::string missing_fact(64, '0');

  // Operations.
  c.call(srv, "GET /healthz", "/healthz", 200);
  c.call(srv, "GET /metrics", "/metrics", 200);

  // Facts.
  const std::string fact_route = "POST /v1/facts";
  auto f = c.call(srv, fact_route, "/v1/facts", 201, fact_body(R"({"a":1})"));
  const std::string fact = str(f.json(), "id");
  c.call(srv, fact_route, "/v1/facts", 200, fact_body(R"({"a":1})"));
  c.call(srv, fact_route, "/v1/facts", 201, fact_body("2"), {{"Idempotency-Key", "k1"}});
  c.call(srv, fact_route, "/v1/facts", 201, fact_body("2"), {{"Idempotency-Key", "k1"}});
  c.call(srv, fact_route, "/v1/facts", 400, R"({"kind":"obs",)");
  c.call(srv, fact_route, "/v1/facts", 400, fact_body("1", R"(,"extra":1)"));
  c.call(srv, fact_route, "/v1/facts", 400, R"({"kind":"bad kind","content":1})");
  c.call(srv, fact_route, "/v1/facts", 422,
         fact_body("3", R"(,"derived_from":[")" + missing_fact + "\"]"));
  c.call(srv, fact_route, "/v1/facts", 413,
         fact_body("\"" + std::string((1u << 20) + 1, 'x') + "\""));
  c.call(srv, "GET /v1/facts", "/v1/facts", 200);
  c.call(srv, "GET /v1/facts", "/v1/facts?kind=obs&after=0&limit=1", 200);
  c.call(srv, "GET /v1/facts", "/v1/facts?limit=0", 400);
  c.call(srv, "GET /v1/facts", "/v1/facts?after=-1", 400);
  c.call(srv, "GET /v1/facts/{id}", "/v1/facts/" + fact, 200);
  c.call(srv, "GET /v1/facts/{id}", "/v1/facts/" + missing_fact, 404);

  // Intents.
  const std::string create = "POST /v1/intents";
  c.call(srv, create, "/v1/intents", 201, intent_body("job-1", fact));
  c.call(srv, create, "/v1/intents", 200, intent_body("job-1", fact));
  c.call(srv, create, "/v1/intents", 409, intent_body("job-1", fact, R"(,"priority":5)"));
  c.call(srv, create, "/v1/intents", 422, R"({"kind":"job","from_facts":[]})");
  c.call(srv, create, "/v1/intents", 422,
         R"({"kind":"job","from_facts":[")" + missing_fact + "\"]}");
  c.call(srv, create, "/v1/intents", 400, R"({"from_facts":[")" + fact + "\"]}");
  c.call(srv, create, "/v1/intents", 400, intent_body("job-x", fact, R"(,"lease_ttl_ms":5)"));
  c.call(srv, create, "/v1/intents", 201, R"({"kind":"job","from_facts":[")" + fact + "\"]}");
  c.call(srv, "GET /v1/intents", "/v1/intents", 200);
  c.call(srv, "GET /v1/intents", "/v1/intents?state=open&kind=job&lane=default&limit=1", 200);
  c.call(srv, "GET /v1/intents", "/v1/intents?state=bogus", 400);
  c.call(srv, "GET /v1/intents/{id}", "/v1/intents/job-1", 200);
  c.call(srv, "GET /v1/intents/{id}", "/v1/intents/nope", 404);

  // The lifecycle: claim, heartbeat, release, conclude.
  const std::string claim = "POST /v1/intents/{id}/claim";
  c.call(srv, claim, "/v1/intents/job-1/claim", 200, R"({"agent":"a1","lease_ttl_ms":60000})");
  c.call(srv, claim, "/v1/intents/job-1/claim", 409, R"({"agent":"a2"})");
  c.call(srv, claim, "/v1/intents/nope/claim", 404, R"({"agent":"a2"})");
  c.call(srv, claim, "/v1/intents/job-1/claim", 400, R"({})");
  const std::string hb = "POST /v1/intents/{id}/heartbeat";
  c.call(srv, hb, "/v1/intents/job-1/heartbeat", 200, R"({"agent":"a1","epoch":1})");
  c.call(srv, hb, "/v1/intents/job-1/heartbeat", 409, R"({"agent":"a1","epoch":7})");
  c.call(srv, hb, "/v1/intents/job-1/heartbeat", 409, R"({"agent":"a2","epoch":1})");
  c.call(srv, hb, "/v1/intents/nope/heartbeat", 404, R"({"agent":"a1","epoch":1})");
  c.call(srv, hb, "/v1/intents/job-1/heartbeat", 400, R"({"agent":"a1"})");
  const std::string rel = "POST /v1/intents/{id}/release";
  c.call(srv, rel, "/v1/intents/job-1/release", 403, R"({"agent":"a2","epoch":1})");
  c.call(srv, rel, "/v1/intents/job-1/release", 409, R"({"agent":"a1","epoch":7})");
  c.call(srv, rel, "/v1/intents/nope/release", 404, R"({"agent":"a1","epoch":1})");
  const std::string done = "POST /v1/intents/{id}/conclude";
  const std::string result = R"(,"result":{"kind":"out","content":"ok"}})";
  c.call(srv, done, "/v1/intents/job-1/conclude", 400, R"({"agent":"a1","epoch":1})");
  c.call(srv, done, "/v1/intents/job-1/conclude", 403,
         R"({"agent":"a1","epoch":1,"result":{"kind":"out","content":1,"creator":"zed"}})");
  c.call(srv, done, "/v1/intents/job-1/conclude", 422,
         R"({"agent":"a1","epoch":1,"result":{"kind":"out","content":1,"derived_from":[")" +
             missing_fact + "\"]}}");
  c.call(srv, done, "/v1/intents/job-1/conclude", 200, R"({"agent":"a1","epoch":1)" + result);
  c.call(srv, done, "/v1/intents/job-1/conclude", 200, R"({"agent":"a1","epoch":1)" + result);
  c.call(srv, done, "/v1/intents/job-1/conclude", 409,
         R"({"agent":"a1","epoch":1,"result":{"kind":"out","content":"other"}})");
  c.call(srv, done, "/v1/intents/nope/conclude", 404, R"({"agent":"a1","epoch":1)" + result);
  c.call(srv, hb, "/v1/intents/job-1/heartbeat", 409, R"({"agent":"a1","epoch":1})");
  c.call(srv, rel, "/v1/intents/job-1/release", 409, R"({"agent":"a1","epoch":1})");

  // Claims (long-poll), fail, release, cancel.
  const std::string next = "POST /v1/claims";
  c.call(srv, create, "/v1/intents", 201, intent_body("job-2", fact, R"(,"lane":"two")"));
  auto got =
      c.call(srv, next, "/v1/claims", 200, R"({"agent":"f1","lanes":["two"],"max":2,"wait_ms":0})");
  const Json* claims = got.json().find("claims");
  ASSERT_TRUE(claims != nullptr && claims->size() == 1) << got.body;
  c.call(srv, next, "/v1/claims", 200, R"({"agent":"f1","lanes":["two"],"wait_ms":0})");
  c.call(srv, next, "/v1/claims", 400, R"({"agent":"f1","max":0})");
  c.call(srv, next, "/v1/claims", 400, R"({"agent":"f1","wait_ms":30001})");
  c.call(srv, next, "/v1/claims", 400, R"({"kinds":["job"]})");
  const std::string fail = "POST /v1/intents/{id}/fail";
  c.call(srv, fail, "/v1/intents/job-2/fail", 409, R"({"agent":"f1","epoch":9})");
  c.call(srv, fail, "/v1/intents/job-2/fail", 400, R"({"agent":"f1","epoch":1,"retryable":1})");
  c.call(srv, fail, "/v1/intents/job-2/fail", 200, R"({"agent":"f1","epoch":1,"error":"boom"})");
  c.call(srv, fail, "/v1/intents/nope/fail", 404, R"({"agent":"f1","epoch":1})");
  c.call(srv, create, "/v1/intents", 201, intent_body("job-3", fact, R"(,"max_attempts":1)"));
  c.call(srv, claim, "/v1/intents/job-3/claim", 200, R"({"agent":"f2"})");
  c.call(srv, fail, "/v1/intents/job-3/fail", 200, R"({"agent":"f2","epoch":1,"retryable":false})");
  c.call(srv, create, "/v1/intents", 201, intent_body("job-4", fact));
  c.call(srv, claim, "/v1/intents/job-4/claim", 200, R"({"agent":"a3"})");
  c.call(srv, rel, "/v1/intents/job-4/release", 200, R"({"agent":"a3","epoch":1})");
  c.call(srv, rel, "/v1/intents/job-4/release", 200, R"({"agent":"a3","epoch":1})");
  const std::string cancel = "POST /v1/intents/{id}/cancel";
  c.call(srv, cancel, "/v1/intents/job-4/cancel", 403, R"({"creator":"mallory"})");
  c.call(srv, cancel, "/v1/intents/job-4/cancel", 400, R"({"agent":"a3"})");
  c.call(srv, cancel, "/v1/intents/job-4/cancel", 200);
  c.call(srv, cancel, "/v1/intents/job-4/cancel", 200, R"({"creator":"anonymous"})");
  c.call(srv, cancel, "/v1/intents/job-1/cancel", 409);
  c.call(srv, cancel, "/v1/intents/nope/cancel", 404);
  c.call(srv, claim, "/v1/intents/job-4/claim", 409, R"({"agent":"a3"})");

  // Hints, and a claim they refuse.
  const std::string post_hint = "POST /v1/hints";
  auto h = c.call(srv, post_hint, "/v1/hints", 201,
                  R"({"kind":"policy","selector":{"lane":"frozen"},"effect":{"type":"deny"},)"
                  R"("reason":"freeze","derived_from":[")" +
                      fact + "\"]}");
  const std::string hint = str(h.json(), "id");
  c.call(srv, post_hint, "/v1/hints", 201,
         R"({"id":"h-cap","kind":"policy","effect":{"type":"cap","n":1},"expires_at":1})");
  c.call(
      srv, post_hint, "/v1/hints", 201,
      R"({"id":"h-pri","kind":"policy","selector":{"kind":"job"},"effect":{"type":"priority","delta":3}})");
  c.call(
      srv, post_hint, "/v1/hints", 201,
      R"({"id":"h-req","kind":"policy","selector":{"lane":"needs"},"effect":{"type":"require","fact_kind":"go"}})");
  c.call(
      srv, post_hint, "/v1/hints", 201,
      R"({"id":"h-def","kind":"policy","selector":{"lane":"later"},"effect":{"type":"defer","until":1}})");
  c.call(srv, post_hint, "/v1/hints", 409,
         R"({"id":"h-cap","kind":"policy","effect":{"type":"deny"}})");
  c.call(srv, post_hint, "/v1/hints", 400, R"({"kind":"policy","effect":{"type":"bogus"}})");
  c.call(srv, post_hint, "/v1/hints", 422,
         R"({"kind":"policy","effect":{"type":"deny"},"derived_from":[")" + missing_fact + "\"]}");
  c.call(srv, create, "/v1/intents", 201, intent_body("job-5", fact, R"(,"lane":"frozen")"));
  c.call(srv, claim, "/v1/intents/job-5/claim", 409, R"({"agent":"a4"})");
  c.call(srv, create, "/v1/intents", 201, intent_body("job-6", fact, R"(,"lane":"needs")"));
  c.call(srv, claim, "/v1/intents/job-6/claim", 409, R"({"agent":"a4"})");
  c.call(srv, "GET /v1/hints", "/v1/hints", 200);
  c.call(srv, "GET /v1/hints", "/v1/hints?live=true&limit=2", 200);
  c.call(srv, "GET /v1/hints", "/v1/hints?limit=1001", 400);
  c.call(srv, "GET /v1/hints/{id}", "/v1/hints/" + hint, 200);
  c.call(srv, "GET /v1/hints/{id}", "/v1/hints/h-cap", 200);
  c.call(srv, "GET /v1/hints/{id}", "/v1/hints/nope", 404);
  const std::string revoke = "DELETE /v1/hints/{id}";
  c.call(srv, revoke, "/v1/hints/" + hint + "?creator=mallory", 403);
  c.call(srv, revoke, "/v1/hints/" + hint, 400, R"({"reason":"x"})");
  c.call(srv, revoke, "/v1/hints/" + hint, 200);
  c.call(srv, revoke, "/v1/hints/" + hint, 200, R"({"creator":"anonymous"})");
  c.call(srv, revoke, "/v1/hints/nope", 404);

  // Logs.
  const std::string append_log = "POST /v1/logs";
  c.call(srv, append_log, "/v1/logs", 201,
         R"({"source":"sense:disk","type":"sense.failed","ref":"r1","payload":{"exit":3}})");
  c.call(srv, append_log, "/v1/logs", 201, R"({"source":"sense:cpu","type":"t"})");
  c.call(srv, append_log, "/v1/logs", 400, R"({"source":"a b","type":"t"})");
  c.call(srv, append_log, "/v1/logs", 400, R"({"source":"a","type":"t","x":1})");
  c.call(srv, append_log, "/v1/logs", 400, R"({"source":"a","type":"t"})",
         {{"Idempotency-Key", "k"}});
  c.call(srv, append_log, "/v1/logs", 413,
         R"({"source":"a","type":"t","ref":")" + std::string(300, 'r') + "\"}");
  c.call(srv, "GET /v1/logs", "/v1/logs", 200);
  c.call(srv, "GET /v1/logs", "/v1/logs?after=0&source=sense:disk&limit=1", 200);
  c.call(srv, "GET /v1/logs", "/v1/logs?limit=1", 200);
  c.call(srv, "GET /v1/logs", "/v1/logs?after=x", 400);
  c.call(srv, "POST /v1/logs/archive", "/v1/logs/archive", 200);
  c.call(srv, "POST /v1/logs/archive", "/v1/logs/archive", 400, R"({"now":1})");

  // The observation runtime: none in this server, then one with a workflow
  // a reflex starts.
  c.call(srv, "GET /v1/senses", "/v1/senses", 404);
  c.call(srv, "GET /v1/workflows/runs", "/v1/workflows/runs", 404);
  {
    TestServer obs;
    senses::WorkflowConfig w;
    w.name = "respond";
    w.kind = "respond";
    senses::ReflexConfig r;
    r.name = "on-page";
    r.on = "page";
    r.start_workflow = "respond";
    senses::SenseConfig sc;
    sc.name = "probe";
    sc.shell = "echo 1";
    sc.on = {"page"};
    obs.config.observe.workflows = {w};
    obs.config.observe.reflexes = {r};
    obs.config.observe.senses = {sc};
    obs.start();
    c.call(obs, "POST /v1/facts", "/v1/facts", 201,
           R"({"kind":"page","content":{"n":1},"creator":"tester"})");
    ASSERT_TRUE(eventually([&] {
      return obs.get("/v1/workflows/runs").body.find("\"started\"") != std::string::npos &&
             obs.get("/v1/senses").body.find("\"ok\"") != std::string::npos;
    }));
    c.call(obs, "GET /v1/senses", "/v1/senses", 200);
    c.call(obs, "GET /v1/senses", "/v1/senses?x=1", 400);
    c.call(obs, "GET /v1/workflows/runs", "/v1/workflows/runs", 200);
    c.call(obs, "GET /v1/workflows/runs", "/v1/workflows/runs?workflow=respond&limit=1", 200);
    c.call(obs, "GET /v1/workflows/runs", "/v1/workflows/runs?limit=0", 400);
  }

  // State, plan, events, watch.
  c.call(srv, "GET /v1/state", "/v1/state", 200);
  c.call(srv, "GET /v1/plan", "/v1/plan", 200);
  c.call(srv, "GET /v1/plan", "/v1/plan?limit=1", 400);
  c.call(srv, "GET /v1/events", "/v1/events", 200);
  c.call(srv, "GET /v1/events", "/v1/events?after=2&limit=3", 200);
  c.call(srv, "GET /v1/events", "/v1/events?after=x", 400);
  c.call(srv, "GET /v1/evidence", "/v1/evidence", 200);
  c.call(srv, "GET /v1/evidence", "/v1/evidence?from=3&limit=2", 200);
  c.call(srv, "GET /v1/evidence", "/v1/evidence?from=x", 400);
  c.call(srv, "GET /v1/watch", "/v1/watch", 400, "", {{"Last-Event-ID", "x"}});
  c.call(srv, "GET /v1/watch", "/v1/watch?after=y", 400);
  {
    // The stream: its status is declared with text/event-stream, and every
    // event's data is an Event whose seq and type are the frame's id and event.
    const Json* op = find_operation("GET /v1/watch");
    ASSERT_NE(op, nullptr);
    const Json* ok = op->find("responses")->find("200");
    ASSERT_TRUE(ok != nullptr && ok->find("content")->find("text/event-stream") != nullptr);
    const Json* event_schema = c.validator().pointer("#/components/schemas/Event");
    ASSERT_NE(event_schema, nullptr);
    for (const Headers& start : {Headers{}, Headers{{"Last-Event-ID", "0"}}}) {
      SseStream s(srv.port, start.empty() ? "/v1/watch?after=0" : "/v1/watch", start);
      ASSERT_EQ(s.status(), 200);
      for (std::uint64_t seq = 1; seq <= 5; ++seq) {
        SseEvent e;
        ASSERT_TRUE(s.next(e));
        EXPECT_EQ(e.id, std::to_string(seq));
        auto data = parse_json(e.data);
        ASSERT_TRUE(data.ok()) << e.data;
        c.expect_valid("GET /v1/watch", 200, *event_schema, *data, "event data");
        EXPECT_EQ(str(*data, "type"), e.event);
        EXPECT_EQ(num(*data, "seq"), static_cast<std::int64_t>(seq));
      }
    }
    c.mark_2xx("GET /v1/watch");
  }

  // A method a spec path does not declare is 405 (so the spec's method set is
  // the server's, seen from the wire too).
  const Json* paths = spec().find("paths");
  ASSERT_NE(paths, nullptr);
  for (const auto& [path, item] : paths->as_object()) {
    std::string target = path;
    if (auto p = target.find("{id}"); p != std::string::npos) target.replace(p, 4, "job-1");
    for (std::string_view m : {"get", "post", "put", "patch", "delete"}) {
      if (item.find(m) != nullptr) continue;
      auto r = http(srv.port, upper(std::string(m)), target);
      EXPECT_EQ(r.status, 405) << upper(std::string(m)) << " " << target << ": " << r.body;
      EXPECT_EQ(r.code(), "method_not_allowed");
      EXPECT_TRUE(c.validator()
                      .validate(*c.validator().pointer("#/components/schemas/Error"), r.json())
                      .empty());
    }
  }

  // Every operation in the spec was seen answering a 2xx.
  std::vector<std::string> never;
  for (const Operation& o : spec_operations()) {
    if (c.answered_2xx().count(o.route) == 0) never.push_back(o.route);
  }
  EXPECT_TRUE(never.empty()) << "operations this test never saw succeed:" << join(never);
  srv.stop();
  srv.remove_data();
}

// With lane budgets on, GET /v1/plan gives every reason a live server can
// show (stale and coalesced_into become terminal states at once), each valid
// against the spec's Plan schema.
TEST_F(OpenApiConformance, PlanShowsEveryWaitingReasonAsTheSpecSays) {
  TestServer srv;
  AdmissionConfig& a = srv.config.engine.core.admission;
  a.budgets = true;
  a.lanes["llm/openai"] = LaneBudget{1, 1};
  srv.start();
  auto f = c.call(srv, "POST /v1/facts", "/v1/facts", 201, fact_body("1"));
  const std::string fact = str(f.json(), "id");
  const std::string create = "POST /v1/intents";
  c.call(srv, create, "/v1/intents", 201,
         intent_body("o-1", fact, R"(,"lane":"llm","provider":"openai","priority":1)"));
  c.call(srv, create, "/v1/intents", 201,
         intent_body("o-2", fact, R"(,"lane":"llm","provider":"openai")"));
  c.call(srv, create, "/v1/intents", 201, intent_body("g-1", fact, R"(,"lane":"gpu")"));
  c.call(srv, create, "/v1/intents", 201, intent_body("d-1", fact, R"(,"requires":["kind:go"])"));
  c.call(srv, "POST /v1/hints", "/v1/hints", 201,
         R"({"id":"h-deny","kind":"policy","selector":{"identity":"x"},"effect":{"type":"deny"}})");
  c.call(srv, create, "/v1/intents", 201, intent_body("x-1", fact, R"(,"identity":"x")"));
  c.call(
      srv, "POST /v1/hints", "/v1/hints", 201,
      R"({"id":"h-cap","kind":"policy","selector":{"identity":"y"},"effect":{"type":"cap","n":0}})");
  c.call(srv, create, "/v1/intents", 201, intent_body("y-1", fact, R"(,"identity":"y")"));
  c.call(srv, create, "/v1/intents", 201, intent_body("b-1", fact));
  c.call(srv, "POST /v1/intents/{id}/claim", "/v1/intents/b-1/claim", 200, R"({"agent":"a1"})");
  c.call(srv, "POST /v1/intents/{id}/fail", "/v1/intents/b-1/fail", 200,
         R"({"agent":"a1","epoch":1,"error":"boom"})");
  auto r = c.call(srv, "GET /v1/plan", "/v1/plan", 200);
  std::map<std::string, std::string> reasons;  // id → text
  const Json plan = r.json();
  const Json* intents = plan.find("intents");
  ASSERT_TRUE(intents != nullptr && intents->is_array()) << r.body;
  for (const Json& d : intents->as_array()) reasons[str(d, "id")] = str(d, "text");
  EXPECT_EQ(reasons["o-1"], "admitted");
  EXPECT_EQ(reasons["o-2"], "lane_full(llm/openai)");
  EXPECT_EQ(reasons["g-1"], "no_budget(gpu)");
  EXPECT_EQ(reasons["d-1"], "missing_dependency(kind:go)");
  EXPECT_EQ(reasons["x-1"], "denied_by_hint(h-deny)");
  EXPECT_EQ(reasons["y-1"], "capped_by_hint(h-cap)");
  EXPECT_EQ(reasons["b-1"].rfind("backoff_until(", 0), 0u) << reasons["b-1"];
  srv.stop();
  srv.remove_data();
}

TEST_F(OpenApiConformance, AuthRefusalsAreDeclared) {
  TestServer srv;
  srv.config.tokens = {token("alice", "alice-secret", server::Scope::kAgent),
                       token("dash", "dash-secret", server::Scope::kRead),
                       token("ops", "ops-secret", server::Scope::kAdmin)};
  srv.start();
  const Headers alice = bearer("alice-secret");
  const Headers dash = bearer("dash-secret");
  const Headers ops = bearer("ops-secret");

  c.call(srv, "GET /healthz", "/healthz", 200);
  c.call(srv, "GET /metrics", "/metrics", 401);
  c.call(srv, "GET /metrics", "/metrics", 200, "", dash);
  c.call(srv, "GET /v1/state", "/v1/state", 401);
  c.call(srv, "GET /v1/state", "/v1/state", 401, "", bearer("wrong"));
  c.call(srv, "GET /v1/state", "/v1/state", 200, "", dash);
  c.call(srv, "GET /v1/plan", "/v1/plan", 401);
  c.call(srv, "GET /v1/plan", "/v1/plan", 200, "", dash);
  c.call(srv, "POST /v1/facts", "/v1/facts", 403, fact_body("1"), dash);
  c.call(srv, "POST /v1/facts", "/v1/facts", 403, fact_body("1", R"(,"creator":"bob")"), alice);
  auto f = c.call(srv, "POST /v1/facts", "/v1/facts", 201, fact_body("1"), alice);
  const std::string fact = str(f.json(), "id");
  c.call(srv, "GET /v1/facts/{id}", "/v1/facts/" + fact, 200, "", dash);
  c.call(srv, "POST /v1/intents", "/v1/intents", 201, intent_body("j", fact), alice);
  c.call(srv, "POST /v1/intents/{id}/claim", "/v1/intents/j/claim", 403, R"({"agent":"bob"})",
         alice);
  c.call(srv, "POST /v1/intents/{id}/claim", "/v1/intents/j/claim", 200, "{}", ops);
  c.call(srv, "POST /v1/intents/{id}/release", "/v1/intents/j/release", 403, R"({"epoch":1})",
         alice);
  c.call(srv, "POST /v1/intents/{id}/release", "/v1/intents/j/release", 200, R"({"epoch":1})", ops);
  c.call(srv, "POST /v1/claims", "/v1/claims", 403, R"({"agent":"bob"})", alice);
  c.call(srv, "POST /v1/claims", "/v1/claims", 200, R"({"wait_ms":0})", alice);
  c.call(srv, "POST /v1/intents/{id}/heartbeat", "/v1/intents/j/heartbeat", 403,
         R"({"agent":"bob","epoch":2})", alice);
  c.call(srv, "POST /v1/intents/{id}/conclude", "/v1/intents/j/conclude", 200,
         R"({"epoch":2,"result":{"kind":"out","content":1}})", alice);
  c.call(srv, "POST /v1/intents/{id}/cancel", "/v1/intents/j/cancel", 403, "", dash);
  auto h = c.call(srv, "POST /v1/hints", "/v1/hints", 201,
                  R"({"kind":"policy","effect":{"type":"deny"}})", alice);
  const std::string hint = str(h.json(), "id");
  c.call(srv, "DELETE /v1/hints/{id}", "/v1/hints/" + hint, 403, "", dash);
  c.call(srv, "DELETE /v1/hints/{id}", "/v1/hints/" + hint, 200, "", ops);  // admin: any hint
  c.call(srv, "POST /v1/logs", "/v1/logs", 403, R"({"source":"a","type":"t"})", dash);
  c.call(srv, "POST /v1/logs", "/v1/logs", 201, R"({"source":"a","type":"t"})", alice);
  c.call(srv, "GET /v1/logs", "/v1/logs", 401);
  c.call(srv, "POST /v1/logs/archive", "/v1/logs/archive", 403, "", alice);
  c.call(srv, "POST /v1/logs/archive", "/v1/logs/archive", 200, "", ops);
  c.call(srv, "GET /v1/hints/{id}", "/v1/hints/" + hint, 401);
  c.call(srv, "GET /v1/watch", "/v1/watch", 401);
  srv.stop();
  srv.remove_data();
}

TEST_F(OpenApiConformance, LimitRefusalsAreDeclaredWithRetryAfter) {
  {
    TestServer srv;
    // One request per caller, refilled once per 1000 s: the second is refused.
    srv.config.limits.caller_rate_per_s = 0.001;
    srv.config.limits.caller_burst = 1;
    srv.start();
    c.call(srv, "POST /v1/facts", "/v1/facts", 201, fact_body("1", R"(,"creator":"c1")"));
    auto r = c.call(srv, "POST /v1/facts", "/v1/facts", 429, fact_body("2", R"(,"creator":"c1")"));
    EXPECT_EQ(r.code(), "rate_limited");
    // Reads count per caller too; without auth every reader is "anonymous".
    c.call(srv, "GET /v1/state", "/v1/state", 200);
    c.call(srv, "GET /v1/intents", "/v1/intents", 429);
    srv.stop();
    srv.remove_data();
  }
  TestServer srv;
  srv.config.limits.body_bytes_max = 512;
  srv.config.limits.watchers_max = 1;
  srv.start();
  c.call(srv, "POST /v1/facts", "/v1/facts", 201, fact_body("1", R"(,"creator":"c1")"));
  c.call(srv, "POST /v1/facts", "/v1/facts", 413,
         fact_body("\"" + std::string(600, 'x') + "\"", R"(,"creator":"c2")"));
  {
    SseStream first(srv.port, "/v1/watch?after=0");
    ASSERT_EQ(first.status(), 200);
    SseEvent e;
    ASSERT_TRUE(first.next(e));  // the stream is registered once it has sent an event
    auto busy = c.call(srv, "GET /v1/watch", "/v1/watch", 503);
    EXPECT_EQ(busy.code(), "overloaded");
  }
  srv.stop();
  srv.remove_data();
}

}  // namespace
}  // namespace cairn::testing
