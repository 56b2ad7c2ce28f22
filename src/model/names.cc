// names.cc — identifier validation.
#include "model/names.h"

#include <algorithm>
#include <string>

#include "model/assert.h"
#include "model/json.h"
#include "model/sha256.h"

namespace cairn {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

template <class Pred>
Status check_charset(std::string_view field, std::string_view value, std::size_t bytes_max,
                     Pred allowed, std::string_view charset) {
  if (value.empty()) {
    return invalid(std::string(field) + " must not be empty", "invalid_field",
                   Json(JsonObject{{"field", Json(field)}}));
  }
  if (value.size() > bytes_max) {
    return too_large(std::string(field) + " is longer than " + std::to_string(bytes_max) + " bytes",
                     "too_large", Json(JsonObject{{"field", Json(field)}}));
  }
  if (!is_alnum(value.front())) {
    return invalid(std::string(field) + " must start with a letter or digit", "invalid_field",
                   Json(JsonObject{{"field", Json(field)}}));
  }
  for (char c : value) {
    if (!is_alnum(c) && !allowed(c)) {
      return invalid(std::string(field) + " may only contain " + std::string(charset),
                     "invalid_field", Json(JsonObject{{"field", Json(field)}}));
    }
  }
  return Status();
}

}  // namespace

Status check_kind(std::string_view field, std::string_view value, const ModelLimits& limits) {
  return check_charset(
      field, value, limits.kind_bytes_max,
      [](char c) { return c == '.' || c == '_' || c == ':' || c == '-'; }, "[A-Za-z0-9._:-]");
}

Status check_name(std::string_view field, std::string_view value, const ModelLimits& limits) {
  return check_charset(
      field, value, limits.name_bytes_max,
      [](char c) {
        return c == '.' || c == '_' || c == ':' || c == '@' || c == '/' || c == '+' || c == '=' ||
               c == '-';
      },
      "[A-Za-z0-9._:@/+=-]");
}

Status check_fact_id(std::string_view field, std::string_view value) {
  if (!is_hex_digest(value)) {
    return invalid(std::string(field) + " must be a fact id (64 lowercase hex characters)",
                   "invalid_field", Json(JsonObject{{"field", Json(field)}}));
  }
  return Status();
}

Status check_content_type(std::string_view value, const ModelLimits& limits) {
  if (value.empty() || value.size() > limits.content_type_bytes_max) {
    return invalid(
        "content_type must be 1.." + std::to_string(limits.content_type_bytes_max) + " bytes",
        "invalid_field", Json(JsonObject{{"field", Json("content_type")}}));
  }
  for (char c : value) {
    if (c <= ' ' || c > '~') {
      return invalid("content_type must be printable ASCII without spaces", "invalid_field",
                     Json(JsonObject{{"field", Json("content_type")}}));
    }
  }
  return Status();
}

Status check_text(std::string_view field, std::string_view value, std::size_t bytes_max) {
  if (value.size() > bytes_max) {
    return too_large(std::string(field) + " is longer than " + std::to_string(bytes_max) + " bytes",
                     "too_large", Json(JsonObject{{"field", Json(field)}}));
  }
  if (!is_valid_utf8(value)) {
    return invalid(std::string(field) + " is not valid UTF-8", "invalid_field",
                   Json(JsonObject{{"field", Json(field)}}));
  }
  return Status();
}

namespace {

// Byte length a UTF-8 lead byte announces (0 for a byte that cannot lead).
std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 0;
}

}  // namespace

std::string utf8_prefix(std::string_view s, std::size_t bytes_max) {
  if (is_valid_utf8(s)) return std::string(truncate_utf8(s, bytes_max));
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(std::min(s.size(), bytes_max));
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = utf8_sequence_length(static_cast<unsigned char>(s[i]));
    std::string_view piece = kReplacement;
    std::size_t advance = 1;
    if (n != 0 && n <= s.size() - i && is_valid_utf8(s.substr(i, n))) {
      piece = s.substr(i, n);
      advance = n;
    }
    if (piece.size() > bytes_max - out.size()) break;
    out += piece;
    i += advance;
  }
  CAIRN_ASSERT(out.size() <= bytes_max && is_valid_utf8(out));
  return out;
}

std::string_view truncate_utf8(std::string_view s, std::size_t bytes_max) {
  if (s.size() <= bytes_max) return s;
  std::size_t end = bytes_max;
  // Step back over continuation bytes (10xxxxxx) to the start of a sequence.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

}  // namespace cairn
