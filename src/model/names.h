// names.h — validation of the short identifiers cairn accepts (pure).
//
// Kinds, names and ids are restricted to a small ASCII charset so that they
// can be embedded in storage keys (core/keys.h uses '|' as a separator, which
// no name may contain), URLs and log lines without escaping.
#pragma once

#include <string_view>

#include "model/limits.h"
#include "model/status.h"

namespace cairn {

// Kind of a fact, intent or hint: 1..kind_bytes_max of [A-Za-z0-9._:-],
// starting with a letter or digit.
Status check_kind(std::string_view field, std::string_view value, const ModelLimits& limits);

// Agent, creator, lane, identity, client-chosen id, dependency key:
// 1..name_bytes_max of [A-Za-z0-9._:@/+=-], starting with a letter or digit.
Status check_name(std::string_view field, std::string_view value, const ModelLimits& limits);

// A fact id: 64 lowercase hex characters.
Status check_fact_id(std::string_view field, std::string_view value);

// A MIME-like content type: 1..content_type_bytes_max printable ASCII, no spaces.
Status check_content_type(std::string_view value, const ModelLimits& limits);

// Free text (reasons, error details): valid UTF-8 up to `bytes_max`.
Status check_text(std::string_view field, std::string_view value, std::size_t bytes_max);

// Truncates `s` to at most `bytes_max` bytes without splitting a UTF-8
// sequence. REQUIRES: s is valid UTF-8.
std::string_view truncate_utf8(std::string_view s, std::size_t bytes_max);

// Any bytes as valid UTF-8 of at most `bytes_max` bytes (text from outside
// on its way into JSON: a request's path, a process's stderr): invalid bytes
// become U+FFFD, and the cut never splits a sequence.
std::string utf8_prefix(std::string_view s, std::size_t bytes_max);

}  // namespace cairn
