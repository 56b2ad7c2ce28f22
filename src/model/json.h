// json.h — cairn's JSON value and its writers (pure).
//
// A small value type the core can build, inspect and serialise without
// exceptions. Parsing lives in json_parse.h (it returns Status values).
//
// Numbers are IEEE-754 doubles, as in RFC 8785 (JCS) and I-JSON: integers are
// exact up to ±2^53 (`Json::kMaxSafeInteger`). Objects keep member insertion
// order; keys are unique (the parser rejects duplicates, `set` replaces).
// Strings hold valid UTF-8 (the parser guarantees it; code that builds values
// by hand is responsible for it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cairn {

class Json;
using JsonArray = std::vector<Json>;
using JsonMember = std::pair<std::string, Json>;
using JsonObject = std::vector<JsonMember>;

class Json {
 public:
  enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

  static constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : v_(b) {}
  Json(double d);  // REQUIRES: d is finite (asserted)
  Json(int i) : v_(static_cast<double>(i)) {}
  Json(std::int64_t i) : v_(static_cast<double>(i)) {}
  Json(std::uint64_t i) : v_(static_cast<double>(i)) {}
  Json(std::string s) : v_(std::move(s)) {}
  Json(std::string_view s) : v_(std::string(s)) {}
  Json(const char* s) : v_(std::string(s)) {}
  Json(JsonArray a) : v_(std::move(a)) {}
  Json(JsonObject o) : v_(std::move(o)) {}

  static Json array() { return Json(JsonArray{}); }
  static Json object() { return Json(JsonObject{}); }

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // Typed access. REQUIRES: the value has that type (asserted).
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const JsonArray& as_array() const;
  JsonArray& as_array();
  const JsonObject& as_object() const;
  JsonObject& as_object();

  // Checked access: nullptr / nullopt when the type differs.
  const std::string* string_if() const { return std::get_if<std::string>(&v_); }
  const JsonArray* array_if() const { return std::get_if<JsonArray>(&v_); }
  const JsonObject* object_if() const { return std::get_if<JsonObject>(&v_); }
  std::optional<double> number_if() const;
  std::optional<bool> bool_if() const;
  // The number as an integer when it is integral and within ±2^53.
  std::optional<std::int64_t> int_if() const;

  // Object members. `find` returns nullptr when absent or not an object.
  const Json* find(std::string_view key) const;
  Json* find(std::string_view key);
  // Sets `key` (replacing an existing member in place). REQUIRES: object.
  Json& set(std::string_view key, Json value);
  // Removes `key` if present; returns whether it was. REQUIRES: object.
  bool erase(std::string_view key);
  // Appends to an array. REQUIRES: array.
  void push_back(Json value);

  // Number of array elements or object members; 0 for scalars.
  std::size_t size() const;

  // Deep equality; numbers compare as doubles, objects member-wise in order
  // independently (two objects with the same members in a different order
  // are equal).
  friend bool operator==(const Json& a, const Json& b);
  friend bool operator!=(const Json& a, const Json& b) { return !(a == b); }

 private:
  std::variant<std::monostate, bool, double, std::string, JsonArray, JsonObject> v_;
};

// Appends the RFC 8785 (JSON Canonicalization Scheme) form of `v`: no
// whitespace, object members sorted by the UTF-16 code units of their keys,
// strings with the minimal JSON escapes, numbers in ECMAScript
// Number.prototype.toString form.
void append_jcs(std::string& out, const Json& v);
std::string to_jcs(const Json& v);

// Appends compact JSON with members in insertion order (the same string and
// number rules as JCS, without the key sort). Used for records and replies.
void append_json(std::string& out, const Json& v);
std::string to_json(const Json& v);

// Appends `s` as a JSON string literal (quotes included) with JCS escaping.
// REQUIRES: s is valid UTF-8.
void append_json_string(std::string& out, std::string_view s);

// Appends `d` the way ECMAScript's Number.prototype.toString prints it
// (shortest round-trip digits; exponent form below 1e-6 and from 1e21).
// REQUIRES: d is finite. -0 prints as "0".
void append_json_number(std::string& out, double d);

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace cairn
