// predicate_test.cc — the contract predicate language: path syntax, a table of
// cases per operator (including missing paths and type mismatches), result
// checks, and bad predicates refused with the error naming the field.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model/json.h"
#include "model/json_parse.h"
#include "model/predicate.h"
#include "support/test_data.h"

namespace cairn {
namespace {

using cairn::testing::J;

const PredicateLimits kLimits;

// The document every table row is evaluated against.
const char* kDoc = R"({
  "score": 7, "ratio": 0.5, "neg": -3, "zero": 0, "big": 9007199254740992,
  "name": "alpha-1", "empty": "", "flag": true, "nothing": null,
  "tags": ["a", "b", 3], "nested": {"a": {"b": [10, {"c": "deep"}]}},
  "weird key": 1, "quo\"te": 2, "0": "zero-key", "obj": {"x": 1, "y": [1, 2]}
})";

struct Case {
  const char* predicate;
  bool expected;
};

void run_table(const std::vector<Case>& cases) {
  Json doc = J(kDoc);
  for (const Case& c : cases) {
    Result<Predicate> p = parse_predicate(J(c.predicate), kLimits);
    ASSERT_TRUE(p.ok()) << c.predicate << ": " << p.status().to_string();
    EXPECT_EQ(evaluate(*p, doc), c.expected) << c.predicate;
    // The JSON form parses back to a predicate that decides the same way.
    Result<Predicate> again = parse_predicate(predicate_to_json(*p), kLimits);
    ASSERT_TRUE(again.ok()) << c.predicate;
    EXPECT_EQ(evaluate(*again, doc), c.expected) << c.predicate << " (round trip)";
  }
}

TEST(JsonPath, ParsesStepsAndResolves) {
  Json doc = J(kDoc);
  struct PathCase {
    const char* path;
    const char* expected_jcs;  // nullptr: nothing there
  };
  std::vector<PathCase> cases = {
      {"$", nullptr},  // whole document, checked below
      {"$.score", "7"},
      {"$.nested.a.b[0]", "10"},
      {"$.nested.a.b[1].c", "\"deep\""},
      {"$[\"weird key\"]", "1"},
      {"$[\"quo\\\"te\"]", "2"},
      {"$[\"0\"]", "\"zero-key\""},
      {"$.0", "\"zero-key\""},  // a name step reads the member "0"
      {"$.tags[2]", "3"},
      {"$.tags[3]", nullptr},  // past the end
      {"$.tags.0", nullptr},   // a name step never indexes an array
      {"$[0]", nullptr},       // an index step never reads member "0"
      {"$.score.x", nullptr},  // through a scalar
      {"$.nothing", "null"},   // present, null
      {"$.missing", nullptr},
      {"$.nested.a.b[1].c.d", nullptr},
  };
  for (const PathCase& c : cases) {
    Result<JsonPath> p = parse_json_path(c.path, kLimits);
    ASSERT_TRUE(p.ok()) << c.path << ": " << p.status().to_string();
    const Json* v = resolve(*p, doc);
    if (std::string_view(c.path) == "$") {
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(*v, doc);
    } else if (c.expected_jcs == nullptr) {
      EXPECT_EQ(v, nullptr) << c.path;
    } else {
      ASSERT_NE(v, nullptr) << c.path;
      EXPECT_EQ(to_jcs(*v), c.expected_jcs) << c.path;
    }
  }
  Result<JsonPath> p = parse_json_path("$.nested.a.b[1][\"c\"]", kLimits);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->steps.size(), 5u);
  EXPECT_EQ(p->steps[3], (PathStep{true, "", 1}));
  EXPECT_EQ(p->steps[4], (PathStep{false, "c", 0}));
}

TEST(JsonPath, RefusesMalformedPathsWithOffset) {
  struct Bad {
    const char* path;
    std::uint64_t offset;
  };
  std::vector<Bad> bad = {
      {"", 0},      {"score", 0},       {"$score", 1},  {"$.", 2},
      {"$..a", 2},  {"$.a b", 3},       {"$[", 2},      {"$[]", 2},
      {"$[1", 3},   {"$[01]", 2},       {"$[-1]", 2},   {"$[1000000000]", 2},
      {"$[\"a", 4}, {"$[\"a\\n\"]", 4}, {"$[\"a\"", 5}, {"$.a[0]x", 6},
  };
  for (const Bad& b : bad) {
    Result<JsonPath> p = parse_json_path(b.path, kLimits);
    ASSERT_FALSE(p.ok()) << b.path;
    EXPECT_EQ(p.status().code(), Code::kInvalid) << b.path;
    EXPECT_EQ(p.status().reason(), "invalid_path") << b.path;
    EXPECT_EQ(p.status().details().find("offset")->int_if(), static_cast<std::int64_t>(b.offset))
        << b.path << ": " << p.status().message();
  }
  // The largest index is accepted.
  EXPECT_TRUE(parse_json_path("$[999999999]", kLimits).ok());
}

TEST(JsonPath, BoundsAreNamedLimits) {
  PredicateLimits small;
  small.path_bytes_max = 8;
  small.path_steps_max = 3;
  EXPECT_TRUE(parse_json_path("$.a.b.c", small).ok());  // 7 bytes, 3 steps
  Result<JsonPath> deep = parse_json_path("$.a.b.c.d", small);
  EXPECT_EQ(deep.status().code(), Code::kTooLarge);  // 9 bytes
  Result<JsonPath> steps = parse_json_path("$[0][1][2][3]", PredicateLimits{.path_steps_max = 3});
  EXPECT_EQ(steps.status().code(), Code::kTooLarge);
  EXPECT_NE(steps.status().message().find("3 steps"), std::string::npos);
  EXPECT_TRUE(parse_json_path(std::string(256, 'a').replace(0, 2, "$."), kLimits).ok());
  EXPECT_EQ(parse_json_path(std::string(257, 'a').replace(0, 2, "$."), kLimits).status().code(),
            Code::kTooLarge);
}

TEST(Predicate, Eq) {
  run_table({
      {R"({"path":"$.score","op":"eq","value":7})", true},
      {R"({"path":"$.score","op":"eq","value":7.0})", true},  // numbers as numbers
      {R"({"path":"$.score","op":"eq","value":8})", false},
      {R"({"path":"$.score","op":"eq","value":"7"})", false},  // type mismatch
      {R"({"path":"$.zero","op":"eq","value":-0})", true},
      {R"({"path":"$.name","op":"eq","value":"alpha-1"})", true},
      {R"({"path":"$.flag","op":"eq","value":true})", true},
      {R"({"path":"$.nothing","op":"eq","value":null})", true},
      {R"({"path":"$.missing","op":"eq","value":null})", false},          // missing is not null
      {R"({"path":"$.obj","op":"eq","value":{"y":[1,2],"x":1}})", true},  // member order free
      {R"({"path":"$.obj","op":"eq","value":{"x":1}})", false},
      {R"({"path":"$.tags","op":"eq","value":["a","b",3]})", true},
      {R"({"path":"$.big","op":"eq","value":9007199254740992})", true},
  });
}

TEST(Predicate, Ne) {
  run_table({
      {R"({"path":"$.score","op":"ne","value":8})", true},
      {R"({"path":"$.score","op":"ne","value":7})", false},
      {R"({"path":"$.score","op":"ne","value":"x"})", false},  // type mismatch → false
      {R"({"path":"$.missing","op":"ne","value":1})", false},  // missing → false
      {R"({"path":"$.name","op":"ne","value":"beta"})", true},
      {R"({"path":"$.obj","op":"ne","value":{"x":2,"y":[1,2]}})", true},
      {R"({"path":"$.nothing","op":"ne","value":null})", false},
  });
}

TEST(Predicate, Ordering) {
  run_table({
      {R"({"path":"$.score","op":"gt","value":3})", true},
      {R"({"path":"$.score","op":"gt","value":7})", false},
      {R"({"path":"$.score","op":"ge","value":7})", true},
      {R"({"path":"$.score","op":"ge","value":7.5})", false},
      {R"({"path":"$.score","op":"lt","value":7.000001})", true},
      {R"({"path":"$.score","op":"lt","value":7})", false},
      {R"({"path":"$.score","op":"le","value":7})", true},
      {R"({"path":"$.score","op":"le","value":-7})", false},
      {R"({"path":"$.neg","op":"lt","value":0})", true},
      {R"({"path":"$.ratio","op":"gt","value":0.25})", true},
      {R"({"path":"$.ratio","op":"gt","value":1e-300})", true},
      {R"({"path":"$.score","op":"gt","value":"3"})", false},  // number vs string
      {R"({"path":"$.name","op":"gt","value":3})", false},
      {R"({"path":"$.flag","op":"gt","value":0})", false},  // bool is not a number
      {R"({"path":"$.nothing","op":"lt","value":1})", false},
      {R"({"path":"$.tags","op":"gt","value":1})", false},
      {R"({"path":"$.missing","op":"le","value":1})", false},
      {R"({"path":"$.name","op":"gt","value":"alpha"})", true},  // strings by code point
      {R"({"path":"$.name","op":"lt","value":"alpha-2"})", true},
      {R"({"path":"$.name","op":"lt","value":"Z"})", false},  // 'a' > 'Z'
      {R"({"path":"$.name","op":"le","value":"alpha-1"})", true},
      {R"({"path":"$.empty","op":"lt","value":"a"})", true},
      {R"({"path":"$.name","op":"lt","value":"\u00e9"})", true},  // ASCII < U+00E9
  });
}

TEST(Predicate, Exists) {
  run_table({
      {R"({"path":"$.score","op":"exists"})", true},
      {R"({"path":"$.nothing","op":"exists"})", true},  // null is present
      {R"({"path":"$.missing","op":"exists"})", false},
      {R"({"path":"$.nested.a.b[1].c","op":"exists","value":true})", true},
      {R"({"path":"$.missing","op":"exists","value":false})", true},
      {R"({"path":"$.score","op":"exists","value":false})", false},
      {R"({"path":"$","op":"exists"})", true},
  });
}

TEST(Predicate, In) {
  run_table({
      {R"({"path":"$.score","op":"in","value":[1,7,9]})", true},
      {R"({"path":"$.score","op":"in","value":[1,2]})", false},
      {R"({"path":"$.score","op":"in","value":["7"]})", false},  // same-type equality
      {R"({"path":"$.name","op":"in","value":["beta","alpha-1"]})", true},
      {R"({"path":"$.nothing","op":"in","value":[null]})", true},
      {R"({"path":"$.missing","op":"in","value":[null]})", false},
      {R"({"path":"$.tags","op":"in","value":[["a","b",3],1]})", true},
      {R"({"path":"$.tags","op":"in","value":["a"]})", false},  // not "contains"
  });
}

TEST(Predicate, Prefix) {
  run_table({
      {R"({"path":"$.name","op":"prefix","value":"alpha"})", true},
      {R"({"path":"$.name","op":"prefix","value":""})", true},
      {R"({"path":"$.name","op":"prefix","value":"alpha-1"})", true},
      {R"({"path":"$.name","op":"prefix","value":"alpha-12"})", false},
      {R"({"path":"$.name","op":"prefix","value":"Alpha"})", false},
      {R"({"path":"$.score","op":"prefix","value":"7"})", false},
      {R"({"path":"$.missing","op":"prefix","value":""})", false},
      {R"({"path":"$.tags","op":"prefix","value":"a"})", false},
  });
}

TEST(Predicate, PositiveAndEven) {
  run_table({
      {R"({"path":"$.score","op":"positive"})", true},
      {R"({"path":"$.ratio","op":"positive"})", true},
      {R"({"path":"$.zero","op":"positive"})", false},
      {R"({"path":"$.neg","op":"positive"})", false},
      {R"({"path":"$.name","op":"positive"})", false},
      {R"({"path":"$.flag","op":"positive"})", false},
      {R"({"path":"$.missing","op":"positive"})", false},
      {R"({"path":"$.score","op":"even"})", false},
      {R"({"path":"$.zero","op":"even"})", true},
      {R"({"path":"$.tags[2]","op":"even"})", false},
      {R"({"path":"$.nested.a.b[0]","op":"even"})", true},
      {R"({"path":"$.ratio","op":"even"})", false},  // not an integer
      {R"({"path":"$.big","op":"even"})", false},    // beyond 2^53: not exact
      {R"({"path":"$.name","op":"even"})", false},
      {R"({"path":"$.missing","op":"even"})", false},
  });
  Result<Predicate> even = parse_predicate(J(R"({"path":"$","op":"even"})"), kLimits);
  ASSERT_TRUE(even.ok());
  EXPECT_TRUE(evaluate(*even, Json(-4)));
  EXPECT_FALSE(evaluate(*even, Json(-3)));
  EXPECT_TRUE(evaluate(*even, Json(9007199254740990.0)));
}

TEST(Predicate, EvaluateAll) {
  Json doc = J(kDoc);
  std::vector<Predicate> ps;
  EXPECT_TRUE(evaluate_all(ps, doc));
  ps.push_back(*parse_predicate(J(R"({"path":"$.score","op":"gt","value":3})"), kLimits));
  ps.push_back(*parse_predicate(J(R"({"path":"$.name","op":"prefix","value":"al"})"), kLimits));
  EXPECT_TRUE(evaluate_all(ps, doc));
  ps.push_back(*parse_predicate(J(R"({"path":"$.flag","op":"eq","value":false})"), kLimits));
  EXPECT_FALSE(evaluate_all(ps, doc));
}

TEST(Predicate, NonObjectDocumentsNeverCrash) {
  std::vector<Json> docs = {Json(), Json(true), Json(1), Json("s"), J("[1,[2]]"), J("{}")};
  for (const char* text : {
           R"({"path":"$.a.b","op":"eq","value":1})",
           R"({"path":"$[1][0]","op":"gt","value":1})",
           R"({"path":"$[0]","op":"in","value":[1]})",
           R"({"path":"$","op":"prefix","value":"s"})",
           R"({"path":"$","op":"positive"})",
       }) {
    Result<Predicate> p = parse_predicate(J(text), kLimits);
    ASSERT_TRUE(p.ok()) << text;
    for (const Json& d : docs) evaluate(*p, d);
  }
  Result<Predicate> p = parse_predicate(J(R"({"path":"$[1][0]","op":"ge","value":2})"), kLimits);
  EXPECT_TRUE(evaluate(*p, J("[1,[2]]")));
  EXPECT_FALSE(evaluate(*p, J("{}")));
}

struct BadCase {
  const char* predicate;
  Code code;
  const char* reason;
  const char* field;
};

void expect_refused(const std::vector<BadCase>& cases, bool result_check, std::string_view where) {
  for (const BadCase& c : cases) {
    Json obj = J(c.predicate);
    Result<Predicate> p = result_check ? parse_result_check(obj, kLimits, where)
                                       : parse_predicate(obj, kLimits, where);
    ASSERT_FALSE(p.ok()) << c.predicate;
    EXPECT_EQ(p.status().code(), c.code) << c.predicate << ": " << p.status().to_string();
    EXPECT_EQ(p.status().reason(), c.reason) << c.predicate << ": " << p.status().to_string();
    const Json* field = p.status().details().find("field");
    ASSERT_NE(field, nullptr) << c.predicate;
    EXPECT_EQ(field->as_string(), c.field) << c.predicate;
    EXPECT_NE(p.status().message().find(c.field), std::string::npos) << p.status().message();
  }
}

TEST(Predicate, BadPredicatesNameTheField) {
  std::string big_string(5000, 'x');
  std::string in_65 = "[0";
  for (int i = 1; i < 65; ++i) in_65 += "," + std::to_string(i);
  in_65 += "]";
  std::string too_big = R"({"path":"$.a","op":"eq","value":")" + big_string + "\"}";
  std::string too_many = R"({"path":"$.a","op":"in","value":)" + in_65 + "}";
  std::string long_path = R"({"path":"$.)" + std::string(300, 'a') + R"(","op":"exists"})";
  expect_refused(
      {
          {"[]", Code::kInvalid, "invalid_field", "predicate"},
          {R"({"op":"eq","value":1})", Code::kInvalid, "invalid_field", "path"},
          {R"({"path":null,"op":"eq","value":1})", Code::kInvalid, "invalid_field", "path"},
          {R"({"path":3,"op":"eq","value":1})", Code::kInvalid, "invalid_field", "path"},
          {R"({"path":"a.b","op":"eq","value":1})", Code::kInvalid, "invalid_field", "path"},
          {R"({"path":"$.a[","op":"eq","value":1})", Code::kInvalid, "invalid_field", "path"},
          {long_path.c_str(), Code::kTooLarge, "too_large", "path"},
          {R"({"path":"$.a","value":1})", Code::kInvalid, "invalid_field", "op"},
          {R"({"path":"$.a","op":"equals","value":1})", Code::kInvalid, "invalid_field", "op"},
          {R"({"path":"$.a","op":"EQ","value":1})", Code::kInvalid, "invalid_field", "op"},
          {R"({"path":"$.a","op":1,"value":1})", Code::kInvalid, "invalid_field", "op"},
          {R"({"path":"$.a","op":"eq"})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"gt","value":true})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"lt","value":null})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"ge","value":[1]})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"le"})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"exists","value":1})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"in","value":1})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"in","value":[]})", Code::kInvalid, "invalid_field", "value"},
          {too_many.c_str(), Code::kTooLarge, "too_large", "value"},
          {too_big.c_str(), Code::kTooLarge, "too_large", "value"},
          {R"({"path":"$.a","op":"prefix","value":1})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"positive","value":1})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"even","value":null})", Code::kInvalid, "invalid_field", "value"},
          {R"({"path":"$.a","op":"eq","value":1,"note":"x"})", Code::kInvalid, "unknown_field",
           "note"},
      },
      /*result_check=*/false, "");
  // 64 operands is the bound itself: accepted.
  std::string in_64 = "[0";
  for (int i = 1; i < 64; ++i) in_64 += "," + std::to_string(i);
  in_64 += "]";
  EXPECT_TRUE(
      parse_predicate(J(R"({"path":"$.a","op":"in","value":)" + in_64 + "}"), kLimits).ok());
}

TEST(Predicate, FieldNamesCarryTheCallersLocation) {
  expect_refused(
      {
          {R"({"path":"$.a","op":"nope"})", Code::kInvalid, "invalid_field", "when.match[2].op"},
          {R"({"path":"x","op":"exists"})", Code::kInvalid, "invalid_field", "when.match[2].path"},
          {R"({"path":"$","op":"gt"})", Code::kInvalid, "invalid_field", "when.match[2].value"},
          {R"({"path":"$","op":"gt","value":1,"x":1})", Code::kInvalid, "unknown_field",
           "when.match[2].x"},
          {"1", Code::kInvalid, "invalid_field", "when.match[2]"},
      },
      /*result_check=*/false, "when.match[2]");
  // The path error keeps its byte offset.
  Result<Predicate> p =
      parse_predicate(J(R"({"path":"$.a]","op":"exists"})"), kLimits, "checks[0]");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().details().find("offset")->int_if(), 3);
  EXPECT_EQ(p.status().details().find("field")->as_string(), "checks[0].path");
}

TEST(ResultCheck, NumericOperatorsOnly) {
  for (const char* ok : {
           R"({"path":"$.n","op":"gt","value":0})",
           R"({"path":"$.n","op":"lt","value":1.5})",
           R"({"path":"$.n","op":"ge","value":-1})",
           R"({"path":"$.n","op":"le","value":10})",
           R"({"path":"$.n","op":"eq","value":42})",
           R"({"path":"$.n","op":"ne","value":0})",
           R"({"path":"$.n","op":"positive"})",
           R"({"path":"$.n","op":"even"})",
       }) {
    EXPECT_TRUE(parse_result_check(J(ok), kLimits).ok()) << ok;
  }
  expect_refused(
      {
          {R"({"path":"$.n","op":"exists"})", Code::kInvalid, "invalid_field", "checks[1].op"},
          {R"({"path":"$.n","op":"in","value":[1]})", Code::kInvalid, "invalid_field",
           "checks[1].op"},
          {R"({"path":"$.n","op":"prefix","value":"a"})", Code::kInvalid, "invalid_field",
           "checks[1].op"},
          {R"({"path":"$.n","op":"gt","value":"3"})", Code::kInvalid, "invalid_field",
           "checks[1].value"},
          {R"({"path":"$.n","op":"eq","value":null})", Code::kInvalid, "invalid_field",
           "checks[1].value"},
      },
      /*result_check=*/true, "checks[1]");

  // A result that is not a number fails every numeric check.
  Result<Predicate> gt = parse_result_check(J(R"({"path":"$.n","op":"gt","value":0})"), kLimits);
  Result<Predicate> ne = parse_result_check(J(R"({"path":"$.n","op":"ne","value":0})"), kLimits);
  ASSERT_TRUE(gt.ok() && ne.ok());
  EXPECT_TRUE(evaluate(*gt, J(R"({"n":1})")));
  EXPECT_FALSE(evaluate(*gt, J(R"({"n":"1"})")));
  EXPECT_FALSE(evaluate(*ne, J(R"({"n":"1"})")));
  EXPECT_FALSE(evaluate(*ne, J(R"({})")));
  EXPECT_TRUE(evaluate(*ne, J(R"({"n":2})")));
}

TEST(Predicate, OpNamesRoundTrip) {
  std::vector<std::string> names = {"eq",     "ne", "gt",     "lt",       "ge",  "le",
                                    "exists", "in", "prefix", "positive", "even"};
  for (const std::string& n : names) {
    PredicateOp op;
    ASSERT_TRUE(op_from_name(n, op)) << n;
    EXPECT_EQ(op_name(op), n);
  }
  PredicateOp op;
  EXPECT_FALSE(op_from_name("contains", op));
  EXPECT_FALSE(op_from_name("", op));
}

}  // namespace
}  // namespace cairn
