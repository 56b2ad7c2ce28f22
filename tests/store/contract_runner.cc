// contract_runner.cc — parser and runner of the data-driven store contract
// suite (tests/data/store_contract/*.txt). See contract_runner.h for how a
// backend plugs in.
//
// ---------------------------------------------------------------------------
// Scenario file format
// ---------------------------------------------------------------------------
// One step per line. A line whose first non-blank character is '#' is a
// comment; blank lines are ignored. `=== <name>` starts a scenario; every
// scenario runs on a fresh, empty store, and stops at its first failing step.
//
//   commit <op>... expect <outcome>
//       ops (any number, in batch order; an op-less commit is an empty batch):
//         put <key>=<value>      del <key>
//         absent <key>           version <key>=<ver>     (preconditions)
//         blob <bytes>           (id = lowercase hex SHA-256 of bytes)
//         blob_id <id>=<bytes>   (explicit, possibly wrong, id)
//       outcomes:
//         ok [@name]             success; binds @name to the commit's version,
//                                or checks it when @name is already bound
//         conflict <k>[,<k>...]  code conflict, reason precondition_failed,
//                                details.keys exactly these keys in order
//         invalid [<reason>]     code invalid (and Status::reason() if given)
//         too_large [<reason>]   code too_large (and reason if given)
//   get <key> expect absent | <value>@<ver>
//   range <prefix> [after=<key>] limit=<count> expect none|<entries> [more]
//       entries: comma-separated <key> | <key>=<value> | <key>=<value>@<ver>,
//       exactly the page returned, in order; `more` must be given exactly
//       when the page reports more. `expect invalid` for a refused limit.
//   get_blob <bytes> expect present | absent    (looked up by SHA-256 of bytes)
//   get_blob_id <id> expect absent | <bytes>
//   last_version expect <ver>
//
// Terms (keys, values, bytes, ids):
//   bare      characters other than blank, '"', '=', ',', '@' (not starting
//             with '$'), e.g. app/1
//   "..."     quoted; escapes \\ \" \n \t \xHH; "" is the empty string
//   $<count>*<c>  <count> copies of the character <c>, e.g. $key_bytes_max+1*k
// Counts: a decimal number, or a StoreLimits field name (key_bytes_max,
// value_bytes_max, blob_bytes_max, batch_ops_max, range_limit_max) of the
// store under test, optionally followed by +N or -N.
// Versions <ver>: a decimal literal (0 = absent; `@5` after a value), or
// @name[+N|-N] of a version bound earlier by `expect ok @name`. Literals other
// than 0 assume a dense counter, which the contract does not promise: prefer
// names.
//
// Checks the runner makes on its own, after every step:
//   - a successful commit with mutations returns a version strictly greater
//     than every earlier one; a successful commit without mutations returns
//     the current last version;
//   - last_version() equals the highest version returned so far after every
//     commit, whatever its outcome (a failed commit changes nothing).
// ---------------------------------------------------------------------------
#include "store/contract_runner.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <set>

#include "model/sha256.h"

namespace cairn::store::contract {
namespace {

// ---- small helpers --------------------------------------------------------

std::string show(std::string_view s) {
  constexpr std::size_t kShowBytesMax = 48;
  std::string out = "\"";
  const std::size_t n = std::min(s.size(), kShowBytesMax);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += '"';
  if (s.size() > n) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

Status syntax(std::string message) {
  return invalid("syntax: " + std::move(message));
}

// Splits a step into blank-separated tokens; quoted parts stay whole.
Result<std::vector<std::string_view>> tokenize(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    bool quoted = false;
    while (i < line.size() && (quoted || !is_blank(line[i]))) {
      if (line[i] == '\\' && quoted) {
        i += 2;
        continue;
      }
      if (line[i] == '"') quoted = !quoted;
      ++i;
    }
    if (quoted || i > line.size()) return syntax("unterminated quote");
    tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

std::uint64_t parse_digits(std::string_view& s) {
  std::uint64_t n = 0;
  while (!s.empty() && is_digit(s[0])) {
    n = n * 10 + static_cast<std::uint64_t>(s[0] - '0');
    s.remove_prefix(1);
  }
  return n;
}

std::string_view parse_ident(std::string_view& s) {
  std::size_t n = 0;
  while (n < s.size() && is_ident_char(s[n])) ++n;
  std::string_view id = s.substr(0, n);
  s.remove_prefix(n);
  return id;
}

// Applies an optional "+N" / "-N" suffix to `base`.
Result<std::uint64_t> parse_offset(std::string_view& s, std::uint64_t base) {
  if (s.empty() || (s[0] != '+' && s[0] != '-')) return base;
  const bool plus = s[0] == '+';
  s.remove_prefix(1);
  if (s.empty() || !is_digit(s[0])) return syntax("expected a number after +/-");
  const std::uint64_t n = parse_digits(s);
  if (!plus && n > base) return syntax("negative count or version");
  return plus ? base + n : base - n;
}

Result<std::uint64_t> parse_count(std::string_view& s, const StoreLimits& limits) {
  if (!s.empty() && is_digit(s[0])) return parse_digits(s);
  const std::string_view id = parse_ident(s);
  std::uint64_t base = 0;
  if (id == "key_bytes_max") {
    base = limits.key_bytes_max;
  } else if (id == "value_bytes_max") {
    base = limits.value_bytes_max;
  } else if (id == "blob_bytes_max") {
    base = limits.blob_bytes_max;
  } else if (id == "batch_ops_max") {
    base = limits.batch_ops_max;
  } else if (id == "range_limit_max") {
    base = limits.range_limit_max;
  } else {
    return syntax("unknown count '" + std::string(id) + "'");
  }
  return parse_offset(s, base);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Consumes one term from the front of `s`.
Result<std::string> parse_term(std::string_view& s, const StoreLimits& limits) {
  std::string out;
  if (!s.empty() && s[0] == '"') {
    std::size_t i = 1;
    for (;;) {
      if (i >= s.size()) return syntax("unterminated quote");
      const char c = s[i];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= s.size()) return syntax("dangling backslash");
      const char e = s[i + 1];
      if (e == '\\' || e == '"') {
        out += e;
        i += 2;
      } else if (e == 'n') {
        out += '\n';
        i += 2;
      } else if (e == 't') {
        out += '\t';
        i += 2;
      } else if (e == 'x' && i + 3 < s.size() && hex_value(s[i + 2]) >= 0 &&
                 hex_value(s[i + 3]) >= 0) {
        out += static_cast<char>(hex_value(s[i + 2]) * 16 + hex_value(s[i + 3]));
        i += 4;
      } else {
        return syntax("bad escape in quoted term");
      }
    }
    s.remove_prefix(i + 1);
    return out;
  }
  if (!s.empty() && s[0] == '$') {
    s.remove_prefix(1);
    CAIRN_ASSIGN_OR_RETURN(const std::uint64_t count, parse_count(s, limits));
    if (s.size() < 2 || s[0] != '*') return syntax("expected $<count>*<char>");
    const char c = s[1];
    s.remove_prefix(2);
    return std::string(count, c);
  }
  std::size_t n = 0;
  while (n < s.size() && !is_blank(s[n]) && s[n] != '"' && s[n] != '=' && s[n] != ',' &&
         s[n] != '@') {
    ++n;
  }
  if (n == 0) return syntax("expected a term");
  out.assign(s.substr(0, n));
  s.remove_prefix(n);
  return out;
}

// A term that must fill the whole token.
Result<std::string> whole_term(std::string_view token, const StoreLimits& limits) {
  CAIRN_ASSIGN_OR_RETURN(std::string term, parse_term(token, limits));
  if (!token.empty()) return syntax("unexpected '" + std::string(token) + "' after a term");
  return term;
}

bool consume(std::string_view& s, char c) {
  if (s.empty() || s[0] != c) return false;
  s.remove_prefix(1);
  return true;
}

// ---- the interpreter --------------------------------------------------------

class Runner {
 public:
  Runner(const ContractBackend& backend, std::unique_ptr<Store> store)
      : backend_(backend), store_(std::move(store)) {}

  // Runs one step; returns the failure description ("" when it passed).
  std::string step(std::string_view text) {
    const StoreLimits limits = store_->limits();
    Result<std::vector<std::string_view>> tokens = tokenize(text);
    if (!tokens.ok()) return tokens.status().message();
    const std::vector<std::string_view>& t = *tokens;
    if (t.empty()) return "empty step";
    auto expect_at = std::find(t.begin(), t.end(), std::string_view("expect"));
    if (expect_at == t.end()) return "syntax: step without 'expect'";
    const std::vector<std::string_view> args(t.begin() + 1, expect_at);
    const std::vector<std::string_view> expect(expect_at + 1, t.end());
    const std::string_view cmd = t[0];
    std::string failure;
    if (cmd == "commit") {
      failure = commit(args, expect, limits);
    } else if (cmd == "get") {
      failure = get(args, expect, limits);
    } else if (cmd == "range") {
      failure = range(args, expect, limits);
    } else if (cmd == "get_blob" || cmd == "get_blob_id") {
      failure = get_blob(cmd == "get_blob", args, expect, limits);
    } else if (cmd == "last_version") {
      failure = last_version(args, expect);
    } else {
      failure = "syntax: unknown command '" + std::string(cmd) + "'";
    }
    if (!failure.empty()) return failure;
    if (backend_.restart) {
      store_ = backend_.restart(std::move(store_));
      if (store_ == nullptr) return "restart hook returned no store";
    }
    return {};
  }

 private:
  // <ver> := digits | '@' digits | '@' name ['+'|'-' digits]
  Result<Version> parse_ver(std::string_view& s) const {
    if (!s.empty() && is_digit(s[0])) return Version{parse_digits(s)};
    if (!consume(s, '@')) return syntax("expected a version (number or @name)");
    if (!s.empty() && is_digit(s[0])) return Version{parse_digits(s)};
    const std::string_view name = parse_ident(s);
    if (name.empty()) return syntax("expected a version name after '@'");
    auto it = names_.find(std::string(name));
    if (it == names_.end()) return syntax("version @" + std::string(name) + " is not bound");
    return parse_offset(s, it->second);
  }

  Result<Version> whole_ver(std::string_view token) const {
    CAIRN_ASSIGN_OR_RETURN(const Version v, parse_ver(token));
    if (!token.empty()) return syntax("unexpected '" + std::string(token) + "' after a version");
    return v;
  }

  std::string check_last_version() {
    Result<Version> lv = store_->last_version();
    if (!lv.ok()) return "last_version failed: " + lv.status().to_string();
    if (*lv != high_) {
      return "last_version() is " + std::to_string(*lv) + ", expected " + std::to_string(high_) +
             " (the highest version committed so far)";
    }
    return {};
  }

  std::string commit(const std::vector<std::string_view>& args,
                     const std::vector<std::string_view>& expect, const StoreLimits& limits) {
    Batch batch;
    if (args.size() % 2 != 0) return "syntax: commit ops come in pairs '<op> <arg>'";
    for (std::size_t i = 0; i < args.size(); i += 2) {
      const std::string_view op = args[i];
      std::string_view arg = args[i + 1];
      Result<std::string> first = parse_term(arg, limits);
      if (!first.ok()) return first.status().message();
      std::string key = std::move(first).value();
      const bool has_rhs = consume(arg, '=');
      auto rest_term = [&]() -> Result<std::string> { return whole_term(arg, limits); };
      if (op == "put" && has_rhs) {
        Result<std::string> value = rest_term();
        if (!value.ok()) return value.status().message();
        batch.mutations.push_back({Mutation::Op::kPut, std::move(key), std::move(value).value()});
      } else if (op == "del" && !has_rhs && arg.empty()) {
        batch.mutations.push_back({Mutation::Op::kDelete, std::move(key), std::string()});
      } else if (op == "absent" && !has_rhs && arg.empty()) {
        batch.preconditions.push_back(Precondition::absent(std::move(key)));
      } else if (op == "version" && has_rhs) {
        Result<Version> v = whole_ver(arg);
        if (!v.ok()) return v.status().message();
        Precondition p;
        p.key = std::move(key);
        p.kind = Precondition::Kind::kVersionEquals;
        p.version = *v;
        batch.preconditions.push_back(std::move(p));
      } else if (op == "blob" && !has_rhs && arg.empty()) {
        std::string id = to_hex(sha256(key));
        batch.blobs.push_back({std::move(id), std::move(key)});
      } else if (op == "blob_id" && has_rhs) {
        Result<std::string> bytes = rest_term();
        if (!bytes.ok()) return bytes.status().message();
        batch.blobs.push_back({std::move(key), std::move(bytes).value()});
      } else {
        return "syntax: bad commit op '" + std::string(op) + " " + std::string(args[i + 1]) + "'";
      }
    }
    if (expect.empty()) return "syntax: commit needs an outcome";
    const std::string_view outcome = expect[0];
    if (outcome != "ok" && outcome != "conflict" && outcome != "invalid" &&
        outcome != "too_large") {
      return "syntax: unknown commit outcome '" + std::string(outcome) + "'";
    }

    Result<CommitInfo> r = store_->commit(batch);
    std::string failure;
    if (outcome == "ok") {
      if (expect.size() > 2) return "syntax: expect ok [@name]";
      failure = commit_ok(r, !batch.mutations.empty(), expect.size() == 2 ? expect[1] : "");
    } else {
      if (r.ok()) {
        return "expected " + std::string(outcome) + ", got ok at version " +
               std::to_string(r->version);
      }
      failure = commit_error(r.status(), outcome, expect, limits);
    }
    if (!failure.empty()) return failure;
    return check_last_version();
  }

  std::string commit_ok(const Result<CommitInfo>& r, bool mutating, std::string_view bind) {
    if (!r.ok()) return "expected ok, got " + r.status().to_string();
    const Version v = r->version;
    if (mutating) {
      if (v <= high_) {
        return "commit version " + std::to_string(v) + " is not above the previous " +
               std::to_string(high_);
      }
      high_ = v;
    } else if (v != high_) {
      return "a commit without mutations reported version " + std::to_string(v) +
             ", expected the current last version " + std::to_string(high_);
    }
    if (bind.empty()) return {};
    if (!consume(bind, '@')) return "syntax: expect ok [@name]";
    const std::string name(parse_ident(bind));
    if (name.empty() || !bind.empty()) return "syntax: bad version name";
    auto [it, inserted] = names_.try_emplace(name, v);
    if (!inserted && it->second != v) {
      return "commit version " + std::to_string(v) + " differs from @" + name + " = " +
             std::to_string(it->second);
    }
    return {};
  }

  std::string commit_error(const Status& st, std::string_view outcome,
                           const std::vector<std::string_view>& expect, const StoreLimits& limits) {
    if (outcome == "conflict") {
      if (expect.size() != 2) return "syntax: expect conflict <key>[,<key>...]";
      std::vector<std::string> want;
      std::string_view list = expect[1];
      do {
        Result<std::string> k = parse_term(list, limits);
        if (!k.ok()) return k.status().message();
        want.push_back(std::move(k).value());
      } while (consume(list, ','));
      if (!list.empty()) return "syntax: bad conflict key list";
      if (st.code() != Code::kConflict || st.reason() != "precondition_failed") {
        return "expected conflict (precondition_failed), got " + st.to_string();
      }
      std::vector<std::string> got;
      const Json* keys = st.details().find("keys");
      const JsonArray* arr = keys != nullptr ? keys->array_if() : nullptr;
      if (arr == nullptr) return "conflict details carry no \"keys\" array";
      for (const Json& k : *arr) {
        const std::string* s = k.string_if();
        if (s == nullptr) return "conflict details.keys holds a non-string";
        got.push_back(*s);
      }
      if (got != want) {
        std::string msg = "conflict names keys [";
        for (const auto& k : got) msg += show(k) + " ";
        msg += "], expected [";
        for (const auto& k : want) msg += show(k) + " ";
        return msg + "]";
      }
      return {};
    }
    Code code = Code::kOk;
    if (outcome == "invalid") {
      code = Code::kInvalid;
    } else if (outcome == "too_large") {
      code = Code::kTooLarge;
    } else {
      return "syntax: unknown commit outcome '" + std::string(outcome) + "'";
    }
    if (expect.size() > 2) return "syntax: expect " + std::string(outcome) + " [reason]";
    if (st.code() != code) return "expected " + std::string(outcome) + ", got " + st.to_string();
    if (expect.size() == 2 && st.reason() != expect[1]) {
      return "expected reason " + std::string(expect[1]) + ", got " + st.to_string();
    }
    return {};
  }

  std::string get(const std::vector<std::string_view>& args,
                  const std::vector<std::string_view>& expect, const StoreLimits& limits) {
    if (args.size() != 1 || expect.size() != 1) return "syntax: get <key> expect <what>";
    Result<std::string> key = whole_term(args[0], limits);
    if (!key.ok()) return key.status().message();
    Result<std::optional<Entry>> r = store_->get(*key);
    if (!r.ok()) return "get failed: " + r.status().to_string();
    if (expect[0] == "absent") {
      if (r->has_value()) {
        return "expected absent, got " + show((*r)->value) + "@" + std::to_string((*r)->version);
      }
      return {};
    }
    std::string_view e = expect[0];
    Result<std::string> value = parse_term(e, limits);
    if (!value.ok()) return value.status().message();
    if (e.empty() || e[0] != '@') return "syntax: expect <value>@<ver>";
    Result<Version> v = whole_ver(e);
    if (!v.ok()) return v.status().message();
    if (!r->has_value()) return "expected " + show(*value) + "@" + std::to_string(*v) + ", absent";
    const Entry& got = **r;
    if (got.key != *key) return "entry key " + show(got.key) + " differs from " + show(*key);
    if (got.value != *value || got.version != *v) {
      return "expected " + show(*value) + "@" + std::to_string(*v) + ", got " + show(got.value) +
             "@" + std::to_string(got.version);
    }
    return {};
  }

  std::string range(const std::vector<std::string_view>& args,
                    const std::vector<std::string_view>& expect, const StoreLimits& limits) {
    if (args.empty()) return "syntax: range <prefix> [after=<key>] limit=<n> expect ...";
    Result<std::string> prefix = whole_term(args[0], limits);
    if (!prefix.ok()) return prefix.status().message();
    std::string after;
    std::optional<std::uint64_t> limit;
    for (std::size_t i = 1; i < args.size(); ++i) {
      std::string_view a = args[i];
      if (a.starts_with("after=")) {
        a.remove_prefix(6);
        Result<std::string> k = whole_term(a, limits);
        if (!k.ok()) return k.status().message();
        after = std::move(k).value();
      } else if (a.starts_with("limit=")) {
        a.remove_prefix(6);
        Result<std::uint64_t> n = parse_count(a, limits);
        if (!n.ok()) return n.status().message();
        if (!a.empty()) return "syntax: bad limit";
        limit = *n;
      } else {
        return "syntax: unknown range argument '" + std::string(a) + "'";
      }
    }
    if (!limit.has_value()) return "syntax: range needs limit=<n>";
    Result<RangePage> r = store_->range(*prefix, after, static_cast<std::size_t>(*limit));

    if (expect.size() == 1 && expect[0] == "invalid") {
      if (r.ok()) return "expected invalid, got a page of " + std::to_string(r->entries.size());
      if (r.status().code() != Code::kInvalid)
        return "expected invalid, got " + r.status().to_string();
      return {};
    }
    if (expect.empty() || expect.size() > 2 || (expect.size() == 2 && expect[1] != "more")) {
      return "syntax: expect none|<entries> [more]";
    }
    if (!r.ok()) return "range failed: " + r.status().to_string();
    const bool want_more = expect.size() == 2;

    struct Want {
      std::string key;
      std::optional<std::string> value;
      std::optional<Version> version;
    };
    std::vector<Want> want;
    if (expect[0] != "none") {
      std::string_view list = expect[0];
      do {
        Want w;
        Result<std::string> k = parse_term(list, limits);
        if (!k.ok()) return k.status().message();
        w.key = std::move(k).value();
        if (consume(list, '=')) {
          Result<std::string> v = parse_term(list, limits);
          if (!v.ok()) return v.status().message();
          w.value = std::move(v).value();
          if (!list.empty() && list[0] == '@') {
            Result<Version> ver = parse_ver(list);
            if (!ver.ok()) return ver.status().message();
            w.version = *ver;
          }
        }
        want.push_back(std::move(w));
      } while (consume(list, ','));
      if (!list.empty()) return "syntax: bad entry list near '" + std::string(list) + "'";
    }

    const std::vector<Entry>& got = r->entries;
    std::string listing = "got [";
    for (const Entry& e : got) listing += show(e.key) + " ";
    listing += "]";
    listing += r->more ? " more" : "";
    if (got.size() != want.size()) {
      return "expected " + std::to_string(want.size()) + " entries, " + listing;
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i].key != want[i].key) {
        return "entry " + std::to_string(i) + " is " + show(got[i].key) + ", expected " +
               show(want[i].key) + "; " + listing;
      }
      if (want[i].value.has_value() && got[i].value != *want[i].value) {
        return "entry " + show(got[i].key) + " has value " + show(got[i].value) + ", expected " +
               show(*want[i].value);
      }
      if (want[i].version.has_value() && got[i].version != *want[i].version) {
        return "entry " + show(got[i].key) + " has version " + std::to_string(got[i].version) +
               ", expected " + std::to_string(*want[i].version);
      }
      if (got[i].version == kAbsent) return "entry " + show(got[i].key) + " has version 0";
    }
    if (r->more != want_more) {
      return std::string("expected more=") + (want_more ? "true" : "false") + ", " + listing;
    }
    return {};
  }

  std::string get_blob(bool by_bytes, const std::vector<std::string_view>& args,
                       const std::vector<std::string_view>& expect, const StoreLimits& limits) {
    if (args.size() != 1 || expect.size() != 1) return "syntax: get_blob[_id] <x> expect <what>";
    Result<std::string> term = whole_term(args[0], limits);
    if (!term.ok()) return term.status().message();
    const std::string id = by_bytes ? to_hex(sha256(*term)) : *term;
    Result<std::optional<std::string>> r = store_->get_blob(id);
    if (!r.ok()) return "get_blob failed: " + r.status().to_string();
    if (expect[0] == "absent") {
      if (r->has_value()) return "expected no blob, got " + show(**r);
      return {};
    }
    std::string want;
    if (by_bytes) {
      if (expect[0] != "present") return "syntax: get_blob <bytes> expect present|absent";
      want = *term;
    } else {
      Result<std::string> w = whole_term(expect[0], limits);
      if (!w.ok()) return w.status().message();
      want = std::move(w).value();
    }
    if (!r->has_value()) return "expected blob " + show(want) + ", absent";
    if (**r != want) return "blob holds " + show(**r) + ", expected " + show(want);
    return {};
  }

  std::string last_version(const std::vector<std::string_view>& args,
                           const std::vector<std::string_view>& expect) {
    if (!args.empty() || expect.size() != 1) return "syntax: last_version expect <ver>";
    Result<Version> want = whole_ver(expect[0]);
    if (!want.ok()) return want.status().message();
    Result<Version> got = store_->last_version();
    if (!got.ok()) return "last_version failed: " + got.status().to_string();
    if (*got != *want) {
      return "last_version is " + std::to_string(*got) + ", expected " + std::to_string(*want);
    }
    return {};
  }

  const ContractBackend& backend_;
  std::unique_ptr<Store> store_;
  std::map<std::string, Version> names_;
  Version high_ = kAbsent;
};

std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (is_ident_char(c) && c != '_') {
      out += c;
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "unnamed" : out;
}

Result<std::string> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return not_found("cannot open " + path);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return unavailable("cannot read " + path);
  return text;
}

}  // namespace

Result<std::vector<Scenario>> parse_scenarios(std::string_view file, std::string_view text) {
  std::vector<Scenario> out;
  std::set<std::string> names;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
    while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = std::string(file) + ":" + std::to_string(line_no);
    if (line.starts_with("===")) {
      line.remove_prefix(3);
      while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
      if (line.empty()) return invalid(where + ": scenario without a name");
      if (!names.insert(std::string(line)).second) {
        return invalid(where + ": duplicate scenario name '" + std::string(line) + "'");
      }
      if (!out.empty() && out.back().steps.empty()) {
        return invalid(where + ": scenario '" + out.back().name + "' has no steps");
      }
      out.push_back(Scenario{std::string(file), std::string(line), line_no, {}});
      continue;
    }
    if (out.empty()) return invalid(where + ": step before the first '=== <name>'");
    out.back().steps.emplace_back(line_no, std::string(line));
  }
  if (!out.empty() && out.back().steps.empty()) {
    return invalid(std::string(file) + ": scenario '" + out.back().name + "' has no steps");
  }
  return out;
}

std::string default_contract_dir() {
  return std::string(CAIRN_TEST_DATA_DIR) + "/store_contract";
}

Result<std::vector<Scenario>> load_scenarios(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return not_found("cannot open directory " + dir);
  std::vector<std::string> files;
  while (const dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() > 4 && name.ends_with(".txt")) files.emplace_back(name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  if (files.empty()) return not_found("no scenario files in " + dir);
  std::vector<Scenario> all;
  for (const std::string& f : files) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, read_file(dir + "/" + f));
    CAIRN_ASSIGN_OR_RETURN(std::vector<Scenario> some, parse_scenarios(f, text));
    for (Scenario& s : some) all.push_back(std::move(s));
  }
  return all;
}

std::string run_scenario(const Scenario& scenario, const ContractBackend& backend) {
  std::unique_ptr<Store> store = backend.make_store();
  if (store == nullptr) return backend.name + ": make_store returned no store";
  Runner runner(backend, std::move(store));
  for (const auto& [line, text] : scenario.steps) {
    std::string failure = runner.step(text);
    if (!failure.empty()) {
      return scenario.file + ":" + std::to_string(line) + ": [" + backend.name + "] " + text +
             "\n    " + failure;
    }
  }
  return {};
}

void run_contract_suite(const ContractBackend& backend) {
  Result<std::vector<Scenario>> all = load_scenarios(default_contract_dir());
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  for (const Scenario& s : *all) {
    const std::string failure = run_scenario(s, backend);
    if (!failure.empty()) ADD_FAILURE() << "scenario '" << s.name << "'\n" << failure;
  }
}

void PrintTo(const ContractCase& c, std::ostream* os) {
  *os << (c.scenario ? c.scenario->file + ": " + c.scenario->name : c.load_error);
}

std::vector<ContractCase> contract_cases(ContractBackend backend) {
  auto shared = std::make_shared<const ContractBackend>(std::move(backend));
  std::vector<ContractCase> cases;
  Result<std::vector<Scenario>> all = load_scenarios(default_contract_dir());
  if (!all.ok()) {
    cases.push_back(ContractCase{shared, nullptr, all.status().to_string(), "load_error"});
    return cases;
  }
  std::set<std::string> used;
  for (Scenario& s : *all) {
    std::string stem = s.file.substr(0, s.file.size() - 4);
    std::string name = slug(stem) + "_" + slug(s.name);
    if (!used.insert(name).second) {
      name += "_L" + std::to_string(s.line);
      used.insert(name);
    }
    cases.push_back(ContractCase{shared, std::make_shared<const Scenario>(std::move(s)),
                                 std::string(), std::move(name)});
  }
  return cases;
}

TEST_P(StoreContractTest, Scenario) {
  const ContractCase& c = GetParam();
  ASSERT_NE(c.scenario, nullptr) << c.load_error;
  const std::string failure = run_scenario(*c.scenario, *c.backend);
  if (!failure.empty()) ADD_FAILURE() << failure;
}

}  // namespace cairn::store::contract
