// output.h — how the cairn CLI prints: aligned tables, key/value blocks,
// timestamps and shortened references (no CLI11 here: it is included by
// main.cc alone).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"

namespace cairn::cli {

// A table printed with columns aligned to their widest cell (in code points),
// two spaces apart, the last column unpadded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "key  value" lines with the keys aligned.
class KeyValues {
 public:
  void add(std::string key, std::string value) { rows_.emplace_back(std::move(key), value); }
  void print(std::FILE* out) const;

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

// Wall-clock ms since the epoch as UTC ISO 8601, "2024-11-21T10:00:00.123Z";
// "-" for null / 0.
std::string format_time_ms(const Json& v);

// A duration in ms for people: "350ms", "6.0s", "2m05s"; "-" for null.
std::string format_duration_ms(const Json& v);

// A member as display text: strings as they are, null/absent as "-", other
// values as compact JSON.
std::string text_of(const Json& obj, std::string_view key);

// Compact JSON cut to `max_chars` code points with "…" (unless wide).
std::string preview(const Json& v, std::size_t max_chars, bool wide);

// Text cut to `max_chars` code points with "…" (unless wide).
std::string shorten(std::string text, std::size_t max_chars, bool wide);

// A reference id cut to its first kRefShownChars characters with "…" (unless wide).
inline constexpr std::size_t kRefShownChars = 12;
std::string short_ref(std::string_view id, bool wide);

// A list of ids: "-" when empty, else short refs joined by ",".
std::string refs_of(const Json& arr, bool wide);

// Prints a JSON value as one compact line on stdout.
void print_json_line(const Json& v);

}  // namespace cairn::cli
