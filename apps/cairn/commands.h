// commands.h — the cairn CLI's commands (docs/cli.md). main.cc parses the
// command line with CLI11 into these structs and calls one function; each
// returns the process exit code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "model/status.h"

namespace cairn::cli {

// Exit codes (docs/cli.md#exit-codes).
enum ExitCode : int {
  kExitOk = 0,
  kExitRefused = 1,      // the server refused the request (400, 401, 403, 405, 413, 422)
  kExitUsage = 2,        // bad command line, unreadable @file, content that is not JSON
  kExitUnavailable = 3,  // unreachable, timed out, 429, 5xx, malformed reply: retry later
  kExitVerify = 4,       // verify: a mismatch, a missing or malformed ancestor, or a cut walk
  kExitConflict = 5,     // 409: already_claimed, stale_epoch, not_holder, invalid_state, ...
  kExitNotFound = 6,     // 404
};

// The exit code for a failed call.
int exit_code_for(const Status& s);

struct Globals;
// Prints a failed call ("cairn: <code>: <message> (HTTP n)" and its details,
// or with --json the error object) and returns its exit code.
int report(const Globals& g, const Status& s, int http_status);
// Prints "cairn: <message>" and returns kExitUsage.
int usage_error(const std::string& message);
// A connected client, or the exit code for a bad URL.
struct Session {
  std::unique_ptr<client::Client> client;
  int exit_code = 0;
};
Session open_session(const Globals& g);

// `cairn ... ls --all` follows `next` for at most this many items.
inline constexpr std::size_t kListAllItemsMax = 100'000;
// `cairn watch` treats a stream silent this long (no event, no ping; the
// server pings every 15 s) as dropped and reconnects.
inline constexpr int kWatchIdleMs = 45'000;

struct Globals {
  std::string url = "http://127.0.0.1:7400";
  std::string token;
  bool json = false;
  bool wide = false;
  int timeout_ms = 30'000;
  int retries = 2;
};

struct ListArgs {
  std::string kind;
  std::string state;
  std::string lane;
  bool live = false;
  std::string after;
  int limit = 0;  // 0: the server's default
  bool all = false;
  std::string source;  // logs
};

// Content given on the command line: a JSON literal, @file, or - (stdin);
// with as_string the text itself is the (string) content.
struct ContentArg {
  std::string text;
  bool as_string = false;
};

struct FactAddArgs {
  std::string kind;
  ContentArg content;
  std::string content_type;
  std::vector<std::string> derived_from;
  std::string creator;
  std::string idempotency_key;
};

struct IntentAddArgs {
  std::string kind;
  std::vector<std::string> from_facts;
  std::string id;
  std::string spec;  // JSON literal, @file or -; "" for none
  std::string lane;
  std::optional<std::int64_t> priority;
  std::string identity;
  std::string provider;
  std::optional<std::int64_t> cost_units;
  std::optional<std::int64_t> stale_after_ms;
  std::vector<std::string> requires_;
  std::optional<std::int64_t> lease_ttl_ms;
  std::optional<std::int64_t> max_attempts;
  std::string creator;
  std::string idempotency_key;
};

struct ClaimArgs {
  std::string id;  // "" → the next work (POST /v1/claims)
  std::string agent;
  std::optional<std::int64_t> lease_ttl_ms;
  std::vector<std::string> kinds;
  std::vector<std::string> lanes;
  int max = 1;
  int wait_ms = 0;
  std::string idempotency_key;
};

// heartbeat, release, fail, conclude, cancel
struct LifecycleArgs {
  std::string id;
  std::string agent;
  std::uint64_t epoch = 0;
  std::optional<std::int64_t> lease_ttl_ms;  // heartbeat
  std::string error;                         // fail
  bool no_retry = false;                     // fail
  std::string result_kind;                   // conclude
  ContentArg result;                         // conclude
  std::string content_type;                  // conclude
  std::vector<std::string> derived_from;     // conclude
  std::string creator;                       // cancel
  std::string idempotency_key;
};

struct HintAddArgs {
  std::string kind;
  std::string effect;  // deny | cap | defer | priority | require
  std::optional<std::int64_t> n;
  std::optional<std::int64_t> delta;
  std::optional<std::int64_t> until;
  std::string fact_kind;
  std::string select_kind;
  std::string select_lane;
  std::string select_identity;
  std::string select_creator;
  std::optional<std::int64_t> expires_at;
  std::string reason;
  std::vector<std::string> derived_from;
  std::string id;
  std::string creator;
  std::string idempotency_key;
};

struct HintRmArgs {
  std::string id;
  std::string creator;
  std::string idempotency_key;
};

struct WatchArgs {
  std::optional<std::uint64_t> after;
  std::size_t count = 0;  // 0: until interrupted
};

struct VerifyArgs {
  std::string id;
  std::size_t max_depth = 1'000;
  std::size_t max_facts = 10'000;
  // --evidence: recompute the evidence chain from `from` instead.
  bool evidence = false;
  std::uint64_t from = 1;
  std::size_t max_links = 100'000'000;
};

int fact_add(const Globals& g, const FactAddArgs& a);
int fact_get(const Globals& g, const std::string& id);
int fact_ls(const Globals& g, const ListArgs& a);

int intent_add(const Globals& g, const IntentAddArgs& a);
int intent_get(const Globals& g, const std::string& id);
int intent_ls(const Globals& g, const ListArgs& a);
int intent_claim(const Globals& g, const ClaimArgs& a);
// verb: heartbeat | conclude | fail | release | cancel
int intent_lifecycle(const Globals& g, const std::string& verb, const LifecycleArgs& a);

int hint_add(const Globals& g, const HintAddArgs& a);
int hint_get(const Globals& g, const std::string& id);
int hint_rm(const Globals& g, const HintRmArgs& a);
int hint_ls(const Globals& g, const ListArgs& a);

// GET /v1/logs: a table (ID, TIME, SOURCE, TYPE, REF, PAYLOAD), or JSON.
int logs(const Globals& g, const ListArgs& a);
// POST /v1/logs/archive: the days archived, the records, the watermark.
int archive_logs(const Globals& g);

int state(const Globals& g);
// GET /v1/plan: tables, or with --json the server's bytes unchanged.
int plan(const Globals& g, std::int64_t at_ms = 0);
int watch(const Globals& g, const WatchArgs& a);
int verify(const Globals& g, const VerifyArgs& a);

}  // namespace cairn::cli
