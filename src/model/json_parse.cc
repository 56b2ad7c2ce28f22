// json_parse.cc — strict JSON text → Json, on RapidJSON's SAX reader (pure).
//
// RapidJSON (header-only, no exceptions) checks the grammar and the UTF-8 of
// the input; the Builder below turns its events into a Json value and
// enforces every JsonLimits bound as the events arrive, so an oversized or
// over-deep text stops the parse at the offending byte. The reader runs in
// iterative mode: its nesting stack lives on the heap, so no input can
// exhaust the C++ stack.
//
// Numbers: RapidJSON 1.1.0's own decimal→double conversion
// (kParseFullPrecisionFlag) reads out of bounds on some tiny numbers
// (e.g. 0.236e-341) and returns wrongly signed garbage near DBL_MAX (1e309),
// so the reader hands us each number's text (kParseNumbersAsStringsFlag,
// grammar still checked by RapidJSON) and `decimal_to_double` converts it
// with correct rounding. See docs/json.md.
#include "model/json_parse.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "model/assert.h"

// RapidJSON's asserts guard its own invariants (never input); keep them on,
// reported through cairn's always-on assert. No std::string overloads needed.
#define RAPIDJSON_ASSERT(x) CAIRN_ASSERT(x)
#define RAPIDJSON_HAS_STDSTRING 0
#if defined(__clang__)
// RapidJSON 1.1.0's internal::Stack computes `nullptr + n` on its first push
// (fixed upstream after 1.1.0). Harmless, but clang's
// -fsanitize=pointer-overflow stops on it; exempt RapidJSON's functions only.
#pragma clang attribute push(__attribute__((no_sanitize("pointer-overflow"))), apply_to = function)
#endif
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif

namespace cairn {
namespace {

// A RapidJSON input stream over a string_view. RapidJSON treats '\0' as the
// end of input, so Peek/Take return '\0' past the end; parse_json then
// checks that the whole view was consumed (a NUL byte inside the text is not
// an end).
class ViewStream {
 public:
  using Ch = char;

  explicit ViewStream(std::string_view s)
      : begin_(s.data()), p_(s.data()), end_(s.data() + s.size()) {}

  Ch Peek() const { return p_ != end_ ? *p_ : '\0'; }
  Ch Take() { return p_ != end_ ? *p_++ : '\0'; }
  std::size_t Tell() const { return static_cast<std::size_t>(p_ - begin_); }

  // Write side: only used by in-situ parsing, which parse_json never asks for.
  Ch* PutBegin() { CAIRN_UNREACHABLE(); }
  void Put(Ch) { CAIRN_UNREACHABLE(); }
  void Flush() {}
  std::size_t PutEnd(Ch*) { CAIRN_UNREACHABLE(); }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
};

}  // namespace
}  // namespace cairn

namespace rapidjson {
// The stream is three pointers: let the reader copy it into locals.
template <>
struct StreamTraits<cairn::ViewStream> {
  enum { copyOptimization = 1 };
};
}  // namespace rapidjson

namespace cairn {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseNumbersAsStringsFlag;

// Exact powers of ten as doubles (10^22 is the largest exact one).
constexpr double kExactPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                  1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// Significant digits kept before the rest collapse into one sticky digit.
// Deciding the rounding of a binary64 needs at most 767 significant digits
// (the longest exact halfway point), so 768 plus a sticky '1' rounds the same
// way as the full digit string.
constexpr std::size_t kSignificantDigitsMax = 768;

// Converts a JSON number (grammar already checked by RapidJSON) to the
// nearest double, ties to even. Returns false when the magnitude rounds to
// infinity. Values below the smallest subnormal round to ±0.
bool decimal_to_double(std::string_view t, double* out) {
  std::size_t i = 0;
  const bool negative = i < t.size() && t[i] == '-';
  if (negative) ++i;

  std::string sig;         // significant digits, no leading zeros
  std::int64_t exp10 = 0;  // value = sig × 10^exp10
  bool sticky = false;     // a non-zero digit was dropped after sig
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    if (sig.empty() && t[i] == '0') continue;
    if (sig.size() < kSignificantDigitsMax) {
      sig.push_back(t[i]);
    } else {
      ++exp10;
      sticky |= t[i] != '0';
    }
  }
  if (i < t.size() && t[i] == '.') {
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
      if (sig.empty() && t[i] == '0') {
        --exp10;
      } else if (sig.size() < kSignificantDigitsMax) {
        sig.push_back(t[i]);
        --exp10;
      } else {
        sticky |= t[i] != '0';
      }
    }
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    std::int64_t e = 0;
    for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
      if (e < 1'000'000'000) e = e * 10 + (t[i] - '0');  // saturates far beyond any double
    }
    exp10 += exp_negative ? -e : e;
  }
  CAIRN_ASSERT_MSG(i == t.size(), "RapidJSON passed a malformed number");

  if (sig.empty()) {
    *out = negative ? -0.0 : 0.0;
    return true;
  }
  if (sticky) {
    sig.push_back('1');
    --exp10;
  } else {
    while (sig.back() == '0') {
      sig.pop_back();
      ++exp10;
    }
  }
  // The value lies in [10^(len+exp10-1), 10^(len+exp10)).
  const std::int64_t magnitude = static_cast<std::int64_t>(sig.size()) + exp10;
  if (magnitude - 1 > 308) return false;  // ≥ 1e309 > DBL_MAX
  double d;
  if (magnitude < -324) {  // < 1e-324, below half the smallest subnormal
    d = 0.0;
  } else if (sig.size() <= 15 && exp10 >= -22 && exp10 <= 22) {
    // Clinger's fast path: both operands exact, one rounding.
    double m = 0;
    for (char c : sig) m = m * 10 + (c - '0');
    d = exp10 >= 0 ? m * kExactPow10[exp10] : m / kExactPow10[-exp10];
  } else {
    // Digits and an exponent only, so the C locale's radix never matters.
    sig.push_back('e');
    sig += std::to_string(exp10);
    d = std::strtod(sig.c_str(), nullptr);
  }
  if (!std::isfinite(d)) return false;
  *out = negative ? -d : d;
  return true;
}

std::string at_byte(std::size_t offset) {
  return " at byte " + std::to_string(offset);
}

Json offset_details(std::size_t offset) {
  Json d = Json::object();
  d.set("offset", Json(static_cast<std::uint64_t>(offset)));
  return d;
}

// Objects up to this many members check duplicates by a linear scan; larger
// ones keep a hash set of their keys.
constexpr std::size_t kLinearKeyScanMax = 32;

// RapidJSON SAX handler that builds the Json value and enforces the limits.
// Every callback returns false to stop the parse; error_ then says why.
//
// Offsets in its errors name where the offending value starts: the reader
// scans strings and numbers through a local copy of the stream
// (copyOptimization above), so during their callbacks stream_ still points
// at the opening quote or first character; for [ and { it is the bracket.
class Builder {
 public:
  Builder(const JsonLimits& limits, const ViewStream& stream) : limits_(limits), stream_(stream) {}

  bool Null() { return scalar(Json()); }
  bool Bool(bool b) { return scalar(Json(b)); }
  // With kParseNumbersAsStringsFlag only RawNumber is called; the reader
  // still instantiates these.
  bool Int(int i) { return scalar(Json(static_cast<double>(i))); }
  bool Uint(unsigned u) { return scalar(Json(static_cast<double>(u))); }
  bool Int64(std::int64_t i) { return scalar(Json(static_cast<double>(i))); }
  bool Uint64(std::uint64_t u) { return scalar(Json(static_cast<double>(u))); }
  bool Double(double d) {
    if (!std::isfinite(d)) return number_out_of_range();
    return scalar(Json(d));
  }
  bool RawNumber(const char* s, rapidjson::SizeType length, bool /*copy*/) {
    double d = 0;
    if (!decimal_to_double(std::string_view(s, length), &d)) return number_out_of_range();
    return scalar(Json(d));
  }

  bool String(const char* s, rapidjson::SizeType length, bool /*copy*/) {
    const std::string_view str(s, length);
    if (!check_string(str)) return false;
    return scalar(Json(str));
  }

  bool StartObject() { return start(Json::object()); }
  bool StartArray() { return start(Json::array()); }

  bool Key(const char* s, rapidjson::SizeType length, bool /*copy*/) {
    const std::string_view key(s, length);
    if (!check_string(key)) return false;
    CAIRN_ASSERT(!stack_.empty());
    Frame& f = stack_.back();
    JsonObject& members = f.value.as_object();
    if (members.size() >= limits_.object_members_max) {
      return fail(too_large("JSON object has more than " +
                                std::to_string(limits_.object_members_max) + " members" +
                                at_byte(stream_.Tell()),
                            "too_large", offset_details(stream_.Tell())));
    }
    bool duplicate = false;
    if (members.size() < kLinearKeyScanMax) {
      for (const JsonMember& m : members) duplicate |= m.first == key;
    } else {
      if (!f.keys) {
        f.keys = std::make_unique<std::unordered_set<std::string>>();
        for (const JsonMember& m : members) f.keys->insert(m.first);
      }
      duplicate = !f.keys->insert(std::string(key)).second;
    }
    if (duplicate) {
      std::string msg = "JSON object repeats the key ";
      append_json_string(msg, key);
      return fail(
          invalid(msg + at_byte(stream_.Tell()), "duplicate_key", offset_details(stream_.Tell())));
    }
    f.key.assign(key);
    return true;
  }

  bool EndObject(rapidjson::SizeType /*members*/) { return end(); }
  bool EndArray(rapidjson::SizeType /*items*/) { return end(); }

  bool has_error() const { return !error_.ok(); }
  Status take_error() { return std::move(error_); }
  bool has_root() const { return has_root_; }
  Json take_root() { return std::move(root_); }

 private:
  struct Frame {
    Json value;       // the array or object being filled
    std::string key;  // objects: the key of the member whose value comes next
    std::unique_ptr<std::unordered_set<std::string>> keys;  // large objects only
  };

  bool fail(Status s) {
    CAIRN_ASSERT(error_.ok());
    error_ = std::move(s);
    return false;
  }

  bool number_out_of_range() {
    return fail(invalid("JSON number is out of the range of a double" + at_byte(stream_.Tell()),
                        "number_out_of_range", offset_details(stream_.Tell())));
  }

  bool check_string(std::string_view s) {
    if (s.size() > limits_.string_bytes_max) {
      return fail(too_large("JSON string of " + std::to_string(s.size()) + " bytes exceeds " +
                                std::to_string(limits_.string_bytes_max) + at_byte(stream_.Tell()),
                            "too_large", offset_details(stream_.Tell())));
    }
    // The raw input was validated by the reader, but a \u escape can still
    // decode to a lone surrogate (e.g. "\uDC00"), which is not UTF-8.
    if (!is_valid_utf8(s)) {
      return fail(invalid("JSON string has a lone surrogate escape" + at_byte(stream_.Tell()),
                          "invalid_json", offset_details(stream_.Tell())));
    }
    return true;
  }

  // Called before each value: the enclosing array must have room for it.
  bool admit_value() {
    if (stack_.empty()) return true;
    const Json& parent = stack_.back().value;
    if (parent.is_array() && parent.size() >= limits_.array_items_max) {
      return fail(too_large("JSON array has more than " + std::to_string(limits_.array_items_max) +
                                " items" + at_byte(stream_.Tell()),
                            "too_large", offset_details(stream_.Tell())));
    }
    return true;
  }

  // Attaches a finished value to its parent (or makes it the root).
  void attach(Json v) {
    if (stack_.empty()) {
      CAIRN_ASSERT(!has_root_);
      root_ = std::move(v);
      has_root_ = true;
      return;
    }
    Frame& f = stack_.back();
    if (f.value.is_array()) {
      f.value.as_array().push_back(std::move(v));
    } else {
      f.value.as_object().emplace_back(std::move(f.key), std::move(v));
      f.key.clear();
    }
  }

  bool scalar(Json v) {
    if (!admit_value()) return false;
    attach(std::move(v));
    return true;
  }

  bool start(Json container) {
    if (!admit_value()) return false;
    if (stack_.size() >= limits_.depth_max) {
      return fail(invalid("JSON nesting is deeper than " + std::to_string(limits_.depth_max) +
                              at_byte(stream_.Tell()),
                          "json_too_deep", offset_details(stream_.Tell())));
    }
    stack_.push_back(Frame{std::move(container), std::string(), nullptr});
    return true;
  }

  bool end() {
    CAIRN_ASSERT(!stack_.empty());
    Json v = std::move(stack_.back().value);
    stack_.pop_back();
    attach(std::move(v));
    return true;
  }

  const JsonLimits& limits_;
  const ViewStream& stream_;
  std::vector<Frame> stack_;
  Json root_;
  bool has_root_ = false;
  Status error_;
};

}  // namespace

Result<Json> parse_json(std::string_view text, const JsonLimits& limits) {
  // RapidJSON counts string bytes in 32 bits; nothing near that is JSON we take.
  if (text.size() > limits.text_bytes_max || text.size() >= 0xFFFFFFFFu) {
    return too_large("JSON text of " + std::to_string(text.size()) + " bytes exceeds " +
                         std::to_string(limits.text_bytes_max),
                     "too_large");
  }
  ViewStream stream(text);
  Builder builder(limits, stream);
  rapidjson::Reader reader;
  const rapidjson::ParseResult r = reader.Parse<kParseFlags>(stream, builder);
  if (r.IsError()) {
    if (builder.has_error()) return builder.take_error();
    const std::size_t offset = r.Offset();
    if (r.Code() == rapidjson::kParseErrorNumberTooBig) {
      return invalid("JSON number is out of the range of a double" + at_byte(offset),
                     "number_out_of_range", offset_details(offset));
    }
    return invalid(
        std::string("invalid JSON: ") + rapidjson::GetParseError_En(r.Code()) + at_byte(offset),
        "invalid_json", offset_details(offset));
  }
  CAIRN_ASSERT(!builder.has_error());
  // The reader stops at a NUL byte as if it were the end of the text.
  if (stream.Tell() != text.size()) {
    return invalid("invalid JSON: unexpected NUL byte" + at_byte(stream.Tell()), "invalid_json",
                   offset_details(stream.Tell()));
  }
  CAIRN_ASSERT(builder.has_root());
  return builder.take_root();
}

}  // namespace cairn
