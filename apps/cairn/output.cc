// output.cc — see output.h.
#include "output.h"

#include <ctime>

namespace cairn::cli {

namespace {

std::size_t width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;  // count UTF-8 lead bytes
  }
  return n;
}

void print_row(std::FILE* out, const std::vector<std::string>& cells,
               const std::vector<std::size_t>& widths) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] - width(cells[i]) + 2, ' ');
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  line += '\n';
  std::fputs(line.c_str(), out);
}

// Cuts `s` to at most `max_chars` code points, ending in "…" when cut.
std::string cut(std::string s, std::size_t max_chars) {
  if (width(s) <= max_chars || max_chars == 0) return s;
  std::size_t n = 0;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (n == max_chars - 1) break;
      ++n;
    }
  }
  s.resize(i);
  return s + "…";
}

}  // namespace

void Table::print(std::FILE* out) const {
  std::vector<std::size_t> widths(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i) widths[i] = width(header_[i]);
  for (const auto& r : rows_) {
    for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], width(r[i]));
    }
  }
  print_row(out, header_, widths);
  for (const auto& r : rows_) print_row(out, r, widths);
}

void KeyValues::print(std::FILE* out) const {
  std::size_t w = 0;
  for (const auto& [k, v] : rows_) w = std::max(w, width(k));
  for (const auto& [k, v] : rows_) {
    std::string line = k;
    line.append(w - width(k) + 2, ' ');
    line += v;
    line += '\n';
    std::fputs(line.c_str(), out);
  }
}

std::string format_time_ms(const Json& v) {
  const auto ms = v.int_if();
  if (!ms || *ms <= 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(*ms % 1000));
  return buf;
}

std::string text_of(const Json& obj, std::string_view key) {
  const Json* v = obj.find(key);
  if (v == nullptr || v->is_null()) return "-";
  if (const std::string* s = v->string_if()) return s->empty() ? "-" : *s;
  return to_json(*v);
}

std::string preview(const Json& v, std::size_t max_chars, bool wide) {
  std::string s = to_json(v);
  return wide ? s : cut(std::move(s), max_chars);
}

std::string shorten(std::string text, std::size_t max_chars, bool wide) {
  return wide ? text : cut(std::move(text), max_chars);
}

std::string short_ref(std::string_view id, bool wide) {
  if (wide || id.size() <= kRefShownChars + 1) return std::string(id);
  return std::string(id.substr(0, kRefShownChars)) + "…";
}

std::string refs_of(const Json& arr, bool wide) {
  const JsonArray* a = arr.array_if();
  if (a == nullptr || a->empty()) return "-";
  std::string out;
  for (const Json& e : *a) {
    if (!out.empty()) out += ',';
    out += e.is_string() ? short_ref(e.as_string(), wide) : to_json(e);
  }
  return out;
}

std::string format_duration_ms(const Json& v) {
  const auto ms = v.int_if();
  if (!ms) return "-";
  char buf[64];
  const std::int64_t a = *ms < 0 ? -*ms : *ms;
  const char* sign = *ms < 0 ? "-" : "";
  if (a < 1'000) {
    std::snprintf(buf, sizeof buf, "%s%lldms", sign, static_cast<long long>(a));
  } else if (a < 60'000) {
    std::snprintf(buf, sizeof buf, "%s%lld.%llds", sign, static_cast<long long>(a / 1000),
                  static_cast<long long>(a % 1000 / 100));
  } else {
    std::snprintf(buf, sizeof buf, "%s%lldm%02llds", sign, static_cast<long long>(a / 60'000),
                  static_cast<long long>(a % 60'000 / 1000));
  }
  return buf;
}

void print_json_line(const Json& v) {
  std::string s = to_json(v);
  s += '\n';
  std::fputs(s.c_str(), stdout);
}

}  // namespace cairn::cli
