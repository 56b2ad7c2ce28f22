// json.cc — the Json value, its canonical (RFC 8785) and compact writers.
//
// Pure: no I/O, no exceptions. Nothing here throws: variant access goes
// through std::get_if, and number formatting uses std::to_chars.
#include "model/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "model/assert.h"

namespace cairn {

// ---------------------------------------------------------------------------
// Value

Json::Json(double d) : v_(d) {
  CAIRN_ASSERT_MSG(std::isfinite(d), "Json numbers must be finite");
}

bool Json::as_bool() const {
  const bool* b = std::get_if<bool>(&v_);
  CAIRN_ASSERT_MSG(b != nullptr, "Json::as_bool on a non-bool");
  return *b;
}

double Json::as_number() const {
  const double* d = std::get_if<double>(&v_);
  CAIRN_ASSERT_MSG(d != nullptr, "Json::as_number on a non-number");
  return *d;
}

const std::string& Json::as_string() const {
  const std::string* s = std::get_if<std::string>(&v_);
  CAIRN_ASSERT_MSG(s != nullptr, "Json::as_string on a non-string");
  return *s;
}

const JsonArray& Json::as_array() const {
  const JsonArray* a = std::get_if<JsonArray>(&v_);
  CAIRN_ASSERT_MSG(a != nullptr, "Json::as_array on a non-array");
  return *a;
}

JsonArray& Json::as_array() {
  JsonArray* a = std::get_if<JsonArray>(&v_);
  CAIRN_ASSERT_MSG(a != nullptr, "Json::as_array on a non-array");
  return *a;
}

const JsonObject& Json::as_object() const {
  const JsonObject* o = std::get_if<JsonObject>(&v_);
  CAIRN_ASSERT_MSG(o != nullptr, "Json::as_object on a non-object");
  return *o;
}

JsonObject& Json::as_object() {
  JsonObject* o = std::get_if<JsonObject>(&v_);
  CAIRN_ASSERT_MSG(o != nullptr, "Json::as_object on a non-object");
  return *o;
}

std::optional<double> Json::number_if() const {
  if (const double* d = std::get_if<double>(&v_)) return *d;
  return std::nullopt;
}

std::optional<bool> Json::bool_if() const {
  if (const bool* b = std::get_if<bool>(&v_)) return *b;
  return std::nullopt;
}

std::optional<std::int64_t> Json::int_if() const {
  const double* d = std::get_if<double>(&v_);
  if (d == nullptr) return std::nullopt;
  // The range check comes first so the cast below is always defined.
  if (!(std::fabs(*d) <= kMaxSafeInteger)) return std::nullopt;
  if (std::trunc(*d) != *d) return std::nullopt;
  return static_cast<std::int64_t>(*d);
}

const Json* Json::find(std::string_view key) const {
  const JsonObject* o = std::get_if<JsonObject>(&v_);
  if (o == nullptr) return nullptr;
  for (const JsonMember& m : *o) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Json* Json::find(std::string_view key) {
  JsonObject* o = std::get_if<JsonObject>(&v_);
  if (o == nullptr) return nullptr;
  for (JsonMember& m : *o) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Json& Json::set(std::string_view key, Json value) {
  JsonObject& o = as_object();
  for (JsonMember& m : o) {
    if (m.first == key) {
      m.second = std::move(value);
      return m.second;
    }
  }
  o.emplace_back(std::string(key), std::move(value));
  return o.back().second;
}

bool Json::erase(std::string_view key) {
  JsonObject& o = as_object();
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (it->first == key) {
      o.erase(it);
      return true;
    }
  }
  return false;
}

void Json::push_back(Json value) {
  as_array().push_back(std::move(value));
}

std::size_t Json::size() const {
  if (const JsonArray* a = std::get_if<JsonArray>(&v_)) return a->size();
  if (const JsonObject* o = std::get_if<JsonObject>(&v_)) return o->size();
  return 0;
}

namespace {

bool objects_equal(const JsonObject& a, const JsonObject& b) {
  if (a.size() != b.size()) return false;
  // Fast path: the same members in the same order (the common case).
  std::size_t i = 0;
  while (i < a.size() && a[i].first == b[i].first) {
    if (a[i].second != b[i].second) return false;
    ++i;
  }
  const std::size_t rest = a.size() - i;
  if (rest == 0) return true;
  if (rest <= 16) {
    for (std::size_t j = i; j < a.size(); ++j) {
      const Json* other = nullptr;
      for (std::size_t k = i; k < b.size(); ++k) {
        if (b[k].first == a[j].first) {
          other = &b[k].second;
          break;
        }
      }
      if (other == nullptr || *other != a[j].second) return false;
    }
    return true;
  }
  // Large objects in different orders: compare sorted by key.
  std::vector<const JsonMember*> sa, sb;
  sa.reserve(rest);
  sb.reserve(rest);
  for (std::size_t j = i; j < a.size(); ++j) sa.push_back(&a[j]);
  for (std::size_t j = i; j < b.size(); ++j) sb.push_back(&b[j]);
  auto by_key = [](const JsonMember* x, const JsonMember* y) { return x->first < y->first; };
  std::sort(sa.begin(), sa.end(), by_key);
  std::sort(sb.begin(), sb.end(), by_key);
  for (std::size_t j = 0; j < rest; ++j) {
    if (sa[j]->first != sb[j]->first || sa[j]->second != sb[j]->second) return false;
  }
  return true;
}

}  // namespace

bool operator==(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::Type::kNull:
      return true;
    case Json::Type::kBool:
      return *std::get_if<bool>(&a.v_) == *std::get_if<bool>(&b.v_);
    case Json::Type::kNumber:
      return *std::get_if<double>(&a.v_) == *std::get_if<double>(&b.v_);
    case Json::Type::kString:
      return *std::get_if<std::string>(&a.v_) == *std::get_if<std::string>(&b.v_);
    case Json::Type::kArray: {
      const JsonArray& x = *std::get_if<JsonArray>(&a.v_);
      const JsonArray& y = *std::get_if<JsonArray>(&b.v_);
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (x[i] != y[i]) return false;
      }
      return true;
    }
    case Json::Type::kObject:
      return objects_equal(*std::get_if<JsonObject>(&a.v_), *std::get_if<JsonObject>(&b.v_));
  }
  CAIRN_UNREACHABLE();
}

// ---------------------------------------------------------------------------
// UTF-8

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* const end = p + s.size();
  while (p != end) {
    // ASCII fast path, 8 bytes at a time.
    while (end - p >= 8) {
      std::uint64_t w;
      std::memcpy(&w, p, 8);
      if ((w & 0x8080808080808080ull) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    const std::ptrdiff_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {  // 2 bytes; C0 and C1 would be overlong
      if (left < 2 || (p[1] & 0xC0) != 0x80) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {  // 3 bytes
      if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return false;
      if (c == 0xE0 && p[1] < 0xA0) return false;   // overlong
      if (c == 0xED && p[1] >= 0xA0) return false;  // U+D800..U+DFFF (surrogates)
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {  // 4 bytes
      if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) {
        return false;
      }
      if (c == 0xF0 && p[1] < 0x90) return false;   // overlong
      if (c == 0xF4 && p[1] >= 0x90) return false;  // above U+10FFFF
      p += 4;
    } else {
      return false;  // continuation byte without a lead, C0/C1, F5..FF
    }
  }
  return true;
}

namespace {

// Decodes the code point starting at s[i]. REQUIRES: s is valid UTF-8 and i
// is the start of a code point.
char32_t decode_at(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return c;
  if (c < 0xE0) return (char32_t{c & 0x1Fu} << 6) | (b(1) & 0x3Fu);
  if (c < 0xF0) return (char32_t{c & 0x0Fu} << 12) | (char32_t{b(1) & 0x3Fu} << 6) | (b(2) & 0x3Fu);
  return (char32_t{c & 0x07u} << 18) | (char32_t{b(1) & 0x3Fu} << 12) |
         (char32_t{b(2) & 0x3Fu} << 6) | (b(3) & 0x3Fu);
}

// The first UTF-16 code unit of a code point.
char32_t first_utf16_unit(char32_t cp) {
  return cp < 0x10000 ? cp : 0xD800 + ((cp - 0x10000) >> 10);
}

// RFC 8785 §3.2.3: orders keys by their UTF-16 code units. UTF-8 byte order
// equals code point order, which differs from UTF-16 order only between
// U+E000..U+FFFF and the supplementary planes (surrogate pairs, D800..DBFF,
// sort below E000). REQUIRES: a and b are valid UTF-8.
bool utf16_less(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  if (i == n) return a.size() < b.size();
  // Back up to the start of the code point holding the first difference; the
  // shared prefix makes it a boundary in both strings.
  while (i > 0 && (static_cast<unsigned char>(a[i]) & 0xC0) == 0x80) --i;
  const char32_t ca = decode_at(a, i);
  const char32_t cb = decode_at(b, i);
  if ((ca >= 0x10000) == (cb >= 0x10000)) return ca < cb;
  return first_utf16_unit(ca) < first_utf16_unit(cb);
}

constexpr char kHexLower[] = "0123456789abcdef";

// Appends `s` escaped per RFC 8785 §3.2.2.2. REQUIRES: s is valid UTF-8.
// True when any byte of the 8-byte word `w` needs escaping (< 0x20, '"' or
// '\\'). Bit tricks on whole words: the common case — ids, names, prose —
// has no such byte and is copied in one append.
inline bool word_needs_escape(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const std::uint64_t below_space = (w - kOnes * 0x20) & ~w;
  const std::uint64_t q = w ^ (kOnes * '"');
  const std::uint64_t quote = (q - kOnes) & ~q;
  const std::uint64_t b = w ^ (kOnes * '\\');
  const std::uint64_t backslash = (b - kOnes) & ~b;
  return ((below_space | quote | backslash) & kHigh) != 0;
}

void append_escaped(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;  // start of the pending literal run
  for (std::size_t i = 0; i < s.size(); ++i) {
    // Skip whole words that need no escaping.
    while (i + 8 <= s.size()) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (word_needs_escape(w)) break;
      i += 8;
    }
    if (i >= s.size()) break;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\b':
        out.push_back('b');
        break;
      case '\t':
        out.push_back('t');
        break;
      case '\n':
        out.push_back('n');
        break;
      case '\f':
        out.push_back('f');
        break;
      case '\r':
        out.push_back('r');
        break;
      default:
        out.append("u00");
        out.push_back(kHexLower[c >> 4]);
        out.push_back(kHexLower[c & 0xF]);
        break;
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void append_value(std::string& out, const Json& v, bool canonical);

void append_object(std::string& out, const JsonObject& o, bool canonical) {
  out.push_back('{');
  if (!canonical || o.size() < 2) {
    bool first = true;
    for (const JsonMember& m : o) {
      if (!first) out.push_back(',');
      first = false;
      append_json_string(out, m.first);
      out.push_back(':');
      append_value(out, m.second, canonical);
    }
  } else {
    std::vector<const JsonMember*> sorted;
    sorted.reserve(o.size());
    for (const JsonMember& m : o) {
      CAIRN_ASSERT_MSG(is_valid_utf8(m.first), "Json object key is not valid UTF-8");
      sorted.push_back(&m);
    }
    std::sort(sorted.begin(), sorted.end(), [](const JsonMember* x, const JsonMember* y) {
      return utf16_less(x->first, y->first);
    });
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (i > 0) {
        CAIRN_ASSERT_MSG(sorted[i - 1]->first != sorted[i]->first,
                         "Json object has a duplicate key");
        out.push_back(',');
      }
      append_escaped(out, sorted[i]->first);
      out.push_back(':');
      append_value(out, sorted[i]->second, canonical);
    }
  }
  out.push_back('}');
}

void append_value(std::string& out, const Json& v, bool canonical) {
  switch (v.type()) {
    case Json::Type::kNull:
      out.append("null");
      return;
    case Json::Type::kBool:
      out.append(v.as_bool() ? "true" : "false");
      return;
    case Json::Type::kNumber:
      append_json_number(out, v.as_number());
      return;
    case Json::Type::kString:
      append_json_string(out, v.as_string());
      return;
    case Json::Type::kArray: {
      out.push_back('[');
      bool first = true;
      for (const Json& e : v.as_array()) {
        if (!first) out.push_back(',');
        first = false;
        append_value(out, e, canonical);
      }
      out.push_back(']');
      return;
    }
    case Json::Type::kObject:
      append_object(out, v.as_object(), canonical);
      return;
  }
  CAIRN_UNREACHABLE();
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  CAIRN_ASSERT_MSG(is_valid_utf8(s), "Json string is not valid UTF-8");
  append_escaped(out, s);
}

// ECMAScript Number::toString (ECMA-262 §6.1.6.1.20) for finite doubles:
// take the shortest round-trip digits s (k of them) and the exponent n such
// that the value is 0.s × 10^n, then choose fixed or exponent form.
void append_json_number(std::string& out, double d) {
  CAIRN_ASSERT_MSG(std::isfinite(d), "Json numbers must be finite");
  if (d == 0) {  // both +0 and -0
    out.push_back('0');
    return;
  }
  // Integers below 2^53 print as their integer digits in both forms.
  if (std::fabs(d) < 9007199254740992.0 && std::trunc(d) == d) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(d));
    CAIRN_ASSERT(r.ec == std::errc());
    out.append(buf, r.ptr);
    return;
  }
  if (d < 0) {
    out.push_back('-');
    d = -d;
  }
  // Shortest round-trip digits in scientific form: "D[.DDD]e(+|-)XX".
  char sci[40];
  const auto r = std::to_chars(sci, sci + sizeof sci, d, std::chars_format::scientific);
  CAIRN_ASSERT(r.ec == std::errc());
  const std::string_view text(sci, static_cast<std::size_t>(r.ptr - sci));
  const std::size_t e_pos = text.find('e');
  CAIRN_ASSERT(e_pos != std::string_view::npos && e_pos + 2 < text.size());

  char digits[24];
  int k = 0;
  for (std::size_t i = 0; i < e_pos; ++i) {
    if (text[i] == '.') continue;
    CAIRN_ASSERT(k < static_cast<int>(sizeof digits));
    digits[k++] = text[i];
  }
  CAIRN_ASSERT(k >= 1);
  int exp10 = 0;
  for (std::size_t i = e_pos + 2; i < text.size(); ++i) exp10 = exp10 * 10 + (text[i] - '0');
  if (text[e_pos + 1] == '-') exp10 = -exp10;
  const int n = exp10 + 1;

  if (k <= n && n <= 21) {
    out.append(digits, static_cast<std::size_t>(k));
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, static_cast<std::size_t>(n));
    out.push_back('.');
    out.append(digits + n, static_cast<std::size_t>(k - n));
  } else if (-6 < n && n <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-n), '0');
    out.append(digits, static_cast<std::size_t>(k));
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits + 1, static_cast<std::size_t>(k - 1));
    }
    out.push_back('e');
    const int e = n - 1;
    out.push_back(e < 0 ? '-' : '+');
    char ebuf[8];
    const auto er = std::to_chars(ebuf, ebuf + sizeof ebuf, e < 0 ? -e : e);
    CAIRN_ASSERT(er.ec == std::errc());
    out.append(ebuf, er.ptr);
  }
}

void append_jcs(std::string& out, const Json& v) {
  append_value(out, v, /*canonical=*/true);
}

std::string to_jcs(const Json& v) {
  std::string out;
  append_jcs(out, v);
  return out;
}

void append_json(std::string& out, const Json& v) {
  append_value(out, v, /*canonical=*/false);
}

std::string to_json(const Json& v) {
  std::string out;
  append_json(out, v);
  return out;
}

}  // namespace cairn
