// crash_test.cc — crash safety of the real cairnd binary.
//
// Concurrent writer threads drive cairnd over keep-alive HTTP connections
// (facts, intents, claims by id and by filter, heartbeats, conclusions,
// failures, releases, cancellations, hints and their revocation; every
// mutation carries a unique Idempotency-Key and every create a unique marker).
// At a random moment the server is killed with SIGKILL (every tenth cycle it is
// stopped with SIGTERM instead, which must exit 0 having answered every request
// it applied), restarted on the same data directory, and checked:
//
//   A. right after the restart, before anything is written:
//      - the event log is 1..last_seq without gaps or duplicates, and every
//        event read before the kill is still there, byte for byte;
//      - every acknowledged fact has the acknowledged id and seq, every
//        acknowledged intent and hint exists, and every intent is exactly in
//        its acknowledged state: state, epoch, holder, lease_expires_at,
//        result — in the store and in the engine's hot state. (An intent the
//        writer's in-flight request may have touched only has to be at least
//        as far along.)
//   B. each writer retries its in-flight (unacknowledged) request with the same
//      Idempotency-Key until it gets an answer, which must be a 2xx: the request
//      was valid in the acknowledged state, so the retry either returns the
//      first reply or runs the request for the first time;
//   C. then, with every request answered: every create marker names exactly one
//      intent or hint (none for a request refused with 503), every intent's and
//      hint's events are exactly its acknowledged transitions in order (type,
//      epoch, lease end), every fact is recorded once, no event names a subject
//      nobody created, and the checks of A hold exactly.
//
// Environment knobs (the Makefile's `make soak` sets CAIRN_CRASH_CYCLES):
//   CAIRN_CRASH_CYCLES          kill cycles (default 100)
//   CAIRN_CRASH_SEED            the run's seed (default random; always printed)
//   CAIRN_CRASH_WRITERS         writer threads (default 4)
//   CAIRN_CRASH_CYCLES_PER_DIR  cycles on one data directory before a fresh one
//                               (default 50; bounds the history each check reads)
// A failure prints the seed, the cycle and the command that replays the run.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "crash/cairnd_process.h"
#include "model/json.h"
#include "server/http_client.h"

namespace cairn::testing {
namespace {

// ---- bounds of the workload ---------------------------------------------------------

constexpr std::int64_t kLeaseTtlMs = 3'600'000;    // no lease ends during a run
constexpr std::size_t kLiveIntentsMax = 40;        // per writer, open + claimed
constexpr std::size_t kHeldLeasesMax = 32;         // per writer (the engine allows 64)
constexpr int kRetryAttemptsMax = 500;             // 503 answers to one retry, 20 ms apart
constexpr std::uint64_t kKillAfterAckedMax = 160;  // kill after 0..this many acknowledgements
constexpr int kKillJitterUsMax = 3'000;            // then up to this long more
constexpr int kRunPhaseMsMax = 20'000;             // a cycle's writers stop after this anyway
constexpr int kSigtermExitMsMax = 30'000;
constexpr std::size_t kListPageItems = 1'000;
constexpr std::size_t kViolationsShownMax = 40;

// ---- small helpers ------------------------------------------------------------------

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// splitmix64 of a combination: independent streams from one seed.
std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using Violations = std::vector<std::string>;

// ---- what the writers were told ------------------------------------------------------

// One event a subject must have, in order. epoch 0 and lease 0 are not compared
// (creation events carry no epoch; only claims and renewals carry a lease end).
struct ExpectedEvent {
  std::string type;
  std::uint64_t epoch = 0;
  std::int64_t lease = 0;
};

std::string render(const std::vector<ExpectedEvent>& es) {
  std::string s = "[";
  for (const auto& e : es) {
    if (s.size() > 1) s += ", ";
    s += e.type;
    if (e.epoch != 0) s += " e" + std::to_string(e.epoch);
    if (e.lease != 0) s += " until " + std::to_string(e.lease);
  }
  return s + "]";
}

struct IntentModel {
  std::string marker;
  std::string state = "open";
  std::uint64_t epoch = 0;
  std::int64_t lease = 0;       // lease_expires_at while claimed
  std::int64_t not_before = 0;  // after a retryable failure
  std::string result;           // the result fact once concluded
  std::vector<ExpectedEvent> events;
};

struct HintModel {
  std::string marker;
  std::uint64_t seq = 0;
  bool revoked = false;
  std::vector<ExpectedEvent> events;
};

struct FactModel {
  std::string id;
  std::uint64_t seq = 0;
};

enum class Op {
  kFact,
  kCreate,
  kClaim,
  kClaims,
  kHeartbeat,
  kConclude,
  kFail,
  kRelease,
  kCancel,
  kHint,
  kRevoke
};
constexpr int kOpCount = 11;
constexpr const char* kOpNames[kOpCount] = {"post fact", "create intent", "claim",      "claims",
                                            "heartbeat", "conclude",      "fail",       "release",
                                            "cancel",    "create hint",   "revoke hint"};

struct Request {
  Op op = Op::kFact;
  std::string method;
  std::string path;
  std::string body;
  std::string key;        // Idempotency-Key
  std::string target;     // the intent or hint it acts on ("" for creates and claims)
  std::string marker;     // creates: the unique marker
  bool in_doubt = false;  // sent without a definite answer (connection lost, outcome_unknown)
  std::string describe() const {
    return std::string(kOpNames[static_cast<int>(op)]) + " " + method + " " + path + " key " + key;
  }
};

// ---- the server's view ---------------------------------------------------------------

struct ServerEvent {
  std::uint64_t seq = 0;
  std::string type;
  std::string subject;
  std::uint64_t epoch = 0;
  std::int64_t lease = 0;
  std::string text;  // the whole event, to compare across restarts
};

struct Snapshot {
  std::vector<ServerEvent> events;
  std::map<std::string, std::uint64_t> facts;  // id -> seq
  std::map<std::string, Json> intents;         // id -> intent, read from the store
  std::map<std::string, Json> hints;           // id -> hint, read from the store
  Json state;                                  // GET /v1/state, from the engine
};

// Reads one list route to its end. `item` receives each element; `cursor`
// turns the reply's `next` into the next `after`.
bool read_list(HttpConn& c, const std::string& route, const std::string& member,
               const std::function<void(const Json&)>& item, Violations& v) {
  std::string after;
  for (;;) {
    std::string path = route + "?limit=" + std::to_string(kListPageItems);
    if (!after.empty()) path += "&after=" + after;
    HttpResult r = c.request("GET", path);
    if (r.status != 200) {
      v.push_back("GET " + path + " answered " + std::to_string(r.status) + " " + r.body);
      return false;
    }
    const Json j = r.json();
    const Json* arr = j.find(member);
    if (arr == nullptr || !arr->is_array()) {
      v.push_back("GET " + path + ": no " + member + " array");
      return false;
    }
    for (const Json& e : arr->as_array()) item(e);
    const Json* next = j.find("next");
    if (next == nullptr || next->is_null()) return true;
    if (next->is_string()) {
      after = next->as_string();
    } else if (auto n = next->int_if()) {
      after = std::to_string(*n);
    } else {
      v.push_back("GET " + path + ": next is neither null, a string nor an integer");
      return false;
    }
  }
}

bool read_snapshot(HttpConn& c, Snapshot& s, Violations& v) {
  s = Snapshot{};
  bool ok = read_list(
      c, "/v1/events", "events",
      [&](const Json& e) {
        ServerEvent se;
        se.seq = static_cast<std::uint64_t>(int_of(e, "seq"));
        se.type = str_of(e, "type");
        se.subject = str_of(e, "subject");
        if (const Json* d = e.find("data")) {
          se.epoch = static_cast<std::uint64_t>(int_of(*d, "epoch"));
          se.lease = int_of(*d, "lease_expires_at");
        }
        se.text = to_json(e);
        s.events.push_back(std::move(se));
      },
      v);
  ok = ok && read_list(
                 c, "/v1/facts", "facts",
                 [&](const Json& f) {
                   s.facts[str_of(f, "id")] = static_cast<std::uint64_t>(int_of(f, "seq"));
                 },
                 v);
  ok = ok && read_list(
                 c, "/v1/intents", "intents",
                 [&](const Json& in) { s.intents[str_of(in, "id")] = in; }, v);
  ok = ok && read_list(
                 c, "/v1/hints", "hints", [&](const Json& h) { s.hints[str_of(h, "id")] = h; }, v);
  if (!ok) return false;
  HttpResult st = c.request("GET", "/v1/state");
  if (st.status != 200) {
    v.push_back("GET /v1/state answered " + std::to_string(st.status) + " " + st.body);
    return false;
  }
  s.state = st.json();
  return true;
}

// The log is 1..last_seq, the engine's counts match the store's records, and
// everything `before` held is still there unchanged.
void check_log(const Snapshot& s, const std::vector<ServerEvent>& before, Violations& v) {
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    if (s.events[i].seq != i + 1) {
      v.push_back("event log: position " + std::to_string(i + 1) + " holds seq " +
                  std::to_string(s.events[i].seq) + " (a gap or a duplicate)");
      break;
    }
  }
  const auto last_seq = static_cast<std::uint64_t>(int_of(s.state, "last_seq"));
  if (last_seq != s.events.size()) {
    v.push_back("GET /v1/state last_seq " + std::to_string(last_seq) + " but the log holds " +
                std::to_string(s.events.size()) + " events");
  }
  for (std::size_t i = 0; i < before.size(); ++i) {
    if (i >= s.events.size()) {
      v.push_back("event log: " + std::to_string(before.size() - i) +
                  " events read before the kill are gone, from seq " + std::to_string(i + 1));
      break;
    }
    if (before[i].text != s.events[i].text) {
      v.push_back("event log: seq " + std::to_string(i + 1) +
                  " changed across the restart: " + before[i].text + " became " + s.events[i].text);
      break;
    }
  }
  const auto facts = static_cast<std::size_t>(int_of(s.state, "facts"));
  if (facts != s.facts.size()) {
    v.push_back("GET /v1/state counts " + std::to_string(facts) + " facts, the store lists " +
                std::to_string(s.facts.size()));
  }
  std::map<std::string, std::int64_t> by_state;
  for (const auto& [id, in] : s.intents) ++by_state[str_of(in, "state")];
  if (const Json* counts = s.state.find("intents"); counts != nullptr && counts->is_object()) {
    for (const auto& [state, n] : counts->as_object()) {
      const std::int64_t listed = by_state.count(state) != 0 ? by_state[state] : 0;
      if (n.int_if().value_or(-1) != listed) {
        v.push_back("GET /v1/state counts " + to_json(n) + " " + state +
                    " intents, the store lists " + std::to_string(listed));
      }
    }
  } else {
    v.push_back("GET /v1/state has no intents counts");
  }
}

// ---- a writer --------------------------------------------------------------------------

// One agent and creator ("w<i>") issuing one request at a time on its own
// keep-alive connection. Its intents have their own kind, and its claims ask
// for that kind only, so every intent is driven by exactly one writer and its
// acknowledged history is known exactly.
class Writer {
 public:
  Writer(int index, std::uint64_t seed, std::uint64_t dir_index)
      : name_("w" + std::to_string(index)),
        kind_("job-w" + std::to_string(index)),
        prefix_("s" + std::to_string(seed) + "-d" + std::to_string(dir_index) + "-" + name_),
        rng_(mix(mix(seed, dir_index), static_cast<std::uint64_t>(index))) {}

  const std::string& name() const { return name_; }
  const std::optional<Request>& inflight() const { return inflight_; }
  std::uint64_t acked_in_cycle() const { return acked_in_cycle_; }

  // The run phase: issues requests until the server goes away or `stop`.
  void run(std::uint16_t port, const std::atomic<bool>& stop,
           std::atomic<std::uint64_t>& acked_total) {
    acked_in_cycle_ = 0;
    HttpConn conn(port);
    while (!stop.load(std::memory_order_relaxed)) {
      if (!inflight_) inflight_ = next_request();
      const HttpResult r = send(conn, *inflight_);
      const Outcome o = handle(r, /*retry_phase=*/false);
      if (o == Outcome::kGone) return;  // the request stays in flight
      if (o == Outcome::kDone) {
        if (r.status >= 200 && r.status < 300) {
          ++acked_in_cycle_;
          acked_total.fetch_add(1, std::memory_order_relaxed);
        }
        inflight_.reset();
      }
      if (r.status == 429 || r.status == 503) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }

  // Phase B: the in-flight request, retried with the same key until answered.
  void resolve(HttpConn& conn) {
    if (!inflight_) return;
    ++retried_;
    for (int attempt = 0; attempt < kRetryAttemptsMax; ++attempt) {
      const HttpResult r = send(conn, *inflight_);
      const Outcome o = handle(r, /*retry_phase=*/true);
      if (o == Outcome::kDone) {
        inflight_.reset();
        return;
      }
      if (o == Outcome::kGone) {
        violations_.push_back(name_ +
                              ": the restarted server dropped the connection on the retry of " +
                              inflight_->describe());
        inflight_.reset();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    violations_.push_back(name_ + ": the retry of " + inflight_->describe() + " got 503 " +
                          std::to_string(kRetryAttemptsMax) + " times");
    inflight_.reset();
  }

  // True when the in-flight request's effect is already visible in `s`
  // (its first attempt committed but the reply never arrived).
  bool inflight_already_applied(const Snapshot& s) const {
    if (!inflight_) return false;
    const Request& r = *inflight_;
    auto changed = [&](const std::string& id) {
      auto it = s.intents.find(id);
      const IntentModel& m = intents_.at(id);
      return it != s.intents.end() &&
             (str_of(it->second, "state") != m.state ||
              static_cast<std::uint64_t>(int_of(it->second, "epoch")) != m.epoch ||
              (m.state == "claimed" && int_of(it->second, "lease_expires_at") != m.lease));
    };
    switch (r.op) {
      case Op::kCreate:
        for (const auto& [id, in] : s.intents) {
          const Json* spec = in.find("spec");
          if (spec != nullptr && str_of(*spec, "marker") == r.marker) return true;
        }
        return false;
      case Op::kHint:
        for (const auto& [id, h] : s.hints) {
          if (str_of(h, "reason") == r.marker) return true;
        }
        return false;
      case Op::kClaims:
        for (const auto& [id, m] : intents_) {
          if (m.state == "open" && changed(id)) return true;
        }
        return false;
      case Op::kRevoke: {
        auto it = s.hints.find(r.target);
        return it != s.hints.end() && it->second.find("revoked") != nullptr &&
               it->second.find("revoked")->bool_if().value_or(false);
      }
      case Op::kFact:
        return false;  // its id is only known from the reply
      default:
        return changed(r.target);
    }
  }

  // Checks A and C for this writer's records. `exact`: no request of this
  // writer is in flight, so every intent must match its model exactly.
  void check_records(const Snapshot& s, HttpConn& conn, bool exact, Violations& v) const {
    for (const FactModel& f : facts_) {
      auto it = s.facts.find(f.id);
      if (it == s.facts.end()) {
        v.push_back(name_ + ": acknowledged fact " + f.id + " (seq " + std::to_string(f.seq) +
                    ") is missing");
      } else if (it->second != f.seq) {
        v.push_back(name_ + ": fact " + f.id + " was acknowledged with seq " +
                    std::to_string(f.seq) + ", now has seq " + std::to_string(it->second));
      } else if (f.seq > s.events.size() || s.events[f.seq - 1].type != "fact.recorded" ||
                 s.events[f.seq - 1].subject != f.id) {
        v.push_back(name_ + ": event " + std::to_string(f.seq) + " is not fact.recorded of " +
                    f.id);
      }
    }
    std::set<std::string> touched;
    if (!exact && inflight_) {
      if (inflight_->op == Op::kClaims) {
        for (const auto& [id, m] : intents_) {
          if (m.state == "open") touched.insert(id);
        }
      } else if (!inflight_->target.empty()) {
        touched.insert(inflight_->target);
      }
    }
    for (const auto& [id, m] : intents_) {
      auto it = s.intents.find(id);
      if (it == s.intents.end()) {
        v.push_back(name_ + ": acknowledged intent " + id + " (marker " + m.marker +
                    ") is missing from the store");
        continue;
      }
      const bool is_touched = touched.count(id) != 0;
      compare_intent("store", id, m, it->second, !is_touched, v);
      if (m.state == "concluded" && s.facts.count(m.result) == 0) {
        v.push_back(name_ + ": intent " + id + " concluded with result " + m.result +
                    ", which is not a stored fact");
      }
      // The engine's hot state, for every intent that can still change.
      if (m.state == "open" || m.state == "claimed") {
        HttpResult r = conn.request("GET", "/v1/intents/" + id);
        if (r.status != 200) {
          v.push_back(name_ + ": GET /v1/intents/" + id + " answered " + std::to_string(r.status) +
                      " " + r.body);
        } else {
          compare_intent("engine", id, m, r.json(), !is_touched, v);
        }
      }
    }
    for (const auto& [id, h] : hints_) {
      auto it = s.hints.find(id);
      if (it == s.hints.end()) {
        v.push_back(name_ + ": acknowledged hint " + id + " (marker " + h.marker + ") is missing");
        continue;
      }
      if (str_of(it->second, "reason") != h.marker) {
        v.push_back(name_ + ": hint " + id + " has reason " + str_of(it->second, "reason") +
                    ", acknowledged with " + h.marker);
      }
      const bool revoked = it->second.find("revoked") != nullptr &&
                           it->second.find("revoked")->bool_if().value_or(false);
      const bool may_differ = !exact && inflight_ && inflight_->target == id;
      if (revoked != h.revoked && !(may_differ && revoked)) {
        v.push_back(name_ + ": hint " + id +
                    (h.revoked ? " was acknowledged revoked"
                               : " was revoked without an acknowledged revocation"));
      }
      if (h.seq == 0 || h.seq > s.events.size() || s.events[h.seq - 1].type != "hint.created" ||
          s.events[h.seq - 1].subject != id) {
        v.push_back(name_ + ": event " + std::to_string(h.seq) + " is not hint.created of " + id);
      }
    }
  }

  // The subjects this writer created (for the unknown-subject check) and the
  // expected event histories (check C).
  void check_histories(const std::map<std::string, std::vector<const ServerEvent*>>& by_subject,
                       std::set<std::string>& known, Violations& v) const {
    auto actual_of = [&](const std::string& id) {
      std::vector<ExpectedEvent> out;
      auto it = by_subject.find(id);
      if (it == by_subject.end()) return out;
      for (const ServerEvent* e : it->second) out.push_back({e->type, e->epoch, e->lease});
      return out;
    };
    auto compare = [&](const std::string& what, const std::string& id,
                       const std::vector<ExpectedEvent>& want) {
      const std::vector<ExpectedEvent> got = actual_of(id);
      bool same = got.size() == want.size();
      for (std::size_t i = 0; same && i < got.size(); ++i) {
        same = got[i].type == want[i].type &&
               (want[i].epoch == 0 || got[i].epoch == want[i].epoch) &&
               (want[i].lease == 0 || got[i].lease == want[i].lease);
      }
      if (!same) {
        v.push_back(name_ + ": " + what + " " + id + " has events " + render(got) +
                    ", its acknowledged requests give " + render(want));
      }
    };
    for (const auto& [id, m] : intents_) {
      known.insert(id);
      compare("intent", id, m.events);
    }
    for (const auto& [id, h] : hints_) {
      known.insert(id);
      compare("hint", id, h.events);
    }
    auto recorded_once = [&](const std::string& id) {
      known.insert(id);
      const std::vector<ExpectedEvent> got = actual_of(id);
      if (got.size() != 1 || got[0].type != "fact.recorded") {
        v.push_back(name_ + ": fact " + id + " has events " + render(got) +
                    " (want one fact.recorded)");
      }
    };
    for (const FactModel& f : facts_) recorded_once(f.id);
    for (const auto& [id, m] : intents_) {
      if (!m.result.empty()) recorded_once(m.result);
    }
  }

  // marker -> acknowledged? (false: definitely refused, so it must not exist).
  const std::map<std::string, bool>& intent_markers() const { return intent_markers_; }
  const std::map<std::string, bool>& hint_markers() const { return hint_markers_; }
  // The acknowledged id of each marker.
  std::string intent_of_marker(const std::string& marker) const {
    for (const auto& [id, m] : intents_) {
      if (m.marker == marker) return id;
    }
    return "";
  }

  Violations take_violations() { return std::exchange(violations_, {}); }
  std::uint64_t retried() const { return retried_; }

 private:
  enum class Outcome { kDone, kRetry, kGone };

  HttpResult send(HttpConn& conn, Request& r) {
    HttpResult res = conn.request(r.method, r.path, r.body, {{"Idempotency-Key", r.key}});
    if (res.status == 0 || res.code() == "outcome_unknown") r.in_doubt = true;
    return res;
  }

  // What an answer means. In the run phase a refusal (429, 503) of a request
  // that was never in doubt changes nothing and is dropped; once in doubt a
  // request is retried until it gets a definite answer.
  Outcome handle(const HttpResult& r, bool retry_phase) {
    if (r.status == 0) return Outcome::kGone;
    if (r.status == 429 || r.status == 503) {
      return inflight_->in_doubt || retry_phase ? Outcome::kRetry : Outcome::kDone;
    }
    if (r.status >= 200 && r.status < 300) {
      apply(*inflight_, r.json());
      return Outcome::kDone;
    }
    violations_.push_back(name_ + ": " + (retry_phase ? "the retry of " : "") +
                          inflight_->describe() + " answered " + std::to_string(r.status) + " " +
                          r.body + " (the request was valid in the acknowledged state)");
    return Outcome::kDone;
  }

  void fail_reply(const Request& r, const std::string& why, const Json& j) {
    violations_.push_back(name_ + ": " + r.describe() + ": " + why + " in " + to_json(j));
  }

  // The model after a 2xx.
  void apply(const Request& r, const Json& j) {
    switch (r.op) {
      case Op::kFact: {
        const std::string id = str_of(j, "id");
        const std::int64_t seq = int_of(j, "seq");
        if (id.empty() || seq <= 0) return fail_reply(r, "no id or seq", j);
        facts_.push_back({id, static_cast<std::uint64_t>(seq)});
        return;
      }
      case Op::kCreate: {
        const std::string id = str_of(j, "id");
        if (id.empty() || str_of(j, "state") != "open")
          return fail_reply(r, "no id or not open", j);
        if (intents_.count(id) != 0) return fail_reply(r, "the id of an earlier intent", j);
        IntentModel m;
        m.marker = r.marker;
        m.events.push_back({"intent.created"});
        intents_.emplace(id, std::move(m));
        intent_markers_[r.marker] = true;
        return;
      }
      case Op::kClaim:
        return claimed(r, r.target, j);
      case Op::kClaims: {
        const Json* cs = j.find("claims");
        if (cs == nullptr || !cs->is_array()) return fail_reply(r, "no claims array", j);
        for (const Json& c : cs->as_array()) {
          const Json* in = c.find("intent");
          claimed(r, in != nullptr ? str_of(*in, "id") : "", c);
        }
        return;
      }
      case Op::kHeartbeat: {
        IntentModel& m = intents_.at(r.target);
        const auto epoch = static_cast<std::uint64_t>(int_of(j, "epoch"));
        const std::int64_t lease = int_of(j, "lease_expires_at");
        if (epoch != m.epoch || lease < m.lease) return fail_reply(r, "epoch or lease moved", j);
        m.lease = lease;
        m.events.push_back({"intent.renewed", epoch, lease});
        return;
      }
      case Op::kConclude: {
        IntentModel& m = intents_.at(r.target);
        const std::string result = str_of(j, "result");
        if (result.empty() || str_of(j, "state") != "concluded") {
          return fail_reply(r, "no result or not concluded", j);
        }
        m.state = "concluded";
        m.result = result;
        m.lease = 0;
        m.events.push_back({"intent.concluded", m.epoch});
        return;
      }
      case Op::kFail: {
        IntentModel& m = intents_.at(r.target);
        const std::string state = str_of(j, "state");
        if (state != "open" && state != "dead")
          return fail_reply(r, "state neither open nor dead", j);
        m.state = state;
        m.lease = 0;
        m.not_before = int_of(j, "not_before");
        m.events.push_back({state == "open" ? "intent.failed" : "intent.dead", m.epoch});
        return;
      }
      case Op::kRelease: {
        IntentModel& m = intents_.at(r.target);
        if (str_of(j, "state") != "open") return fail_reply(r, "not open", j);
        m.state = "open";
        m.lease = 0;
        m.events.push_back({"intent.released", m.epoch});
        return;
      }
      case Op::kCancel: {
        IntentModel& m = intents_.at(r.target);
        if (str_of(j, "state") != "cancelled") return fail_reply(r, "not cancelled", j);
        m.state = "cancelled";
        m.lease = 0;
        m.events.push_back({"intent.cancelled", m.epoch});
        return;
      }
      case Op::kHint: {
        const std::string id = str_of(j, "id");
        const std::int64_t seq = int_of(j, "seq");
        if (id.empty() || seq <= 0) return fail_reply(r, "no id or seq", j);
        if (hints_.count(id) != 0) return fail_reply(r, "the id of an earlier hint", j);
        HintModel h;
        h.marker = r.marker;
        h.seq = static_cast<std::uint64_t>(seq);
        h.events.push_back({"hint.created"});
        hints_.emplace(id, std::move(h));
        hint_markers_[r.marker] = true;
        return;
      }
      case Op::kRevoke: {
        HintModel& h = hints_.at(r.target);
        h.revoked = true;
        h.events.push_back({"hint.revoked"});
        return;
      }
    }
  }

  void claimed(const Request& r, const std::string& id, const Json& j) {
    auto it = intents_.find(id);
    if (it == intents_.end())
      return fail_reply(r, "claimed an intent this writer never created", j);
    IntentModel& m = it->second;
    const auto epoch = static_cast<std::uint64_t>(int_of(j, "epoch"));
    const std::int64_t lease = int_of(j, "lease_expires_at");
    if (m.state != "open" || epoch != m.epoch + 1 || lease <= 0) {
      return fail_reply(
          r, "claimed " + id + " in state " + m.state + " at epoch " + std::to_string(m.epoch), j);
    }
    m.state = "claimed";
    m.epoch = epoch;
    m.lease = lease;
    m.events.push_back({"intent.claimed", epoch, lease});
  }

  void compare_intent(const char* where, const std::string& id, const IntentModel& m, const Json& j,
                      bool exact, Violations& v) const {
    auto bad = [&](const std::string& what) {
      v.push_back(name_ + ": intent " + id + " (" + where + "): " + what +
                  "; acknowledged: " + m.state + " epoch " + std::to_string(m.epoch) +
                  (m.state == "claimed" ? " lease until " + std::to_string(m.lease) : "") +
                  "; found: " + to_json(j));
    };
    const Json* spec = j.find("spec");
    if (spec == nullptr || str_of(*spec, "marker") != m.marker) return bad("another marker");
    if (str_of(j, "creator") != name_) return bad("another creator");
    const std::string state = str_of(j, "state");
    const auto epoch = static_cast<std::uint64_t>(int_of(j, "epoch"));
    const bool terminal = m.state == "concluded" || m.state == "dead" || m.state == "cancelled";
    if (!exact) {
      if (epoch < m.epoch) bad("the epoch went back");
      if (terminal && state != m.state) bad("a terminal state changed");
      return;
    }
    if (state != m.state) return bad("state " + state);
    if (epoch != m.epoch) return bad("epoch " + std::to_string(epoch));
    if (m.state == "claimed") {
      if (str_of(j, "holder") != name_) return bad("another holder");
      if (int_of(j, "lease_expires_at") != m.lease) return bad("the lease end moved");
    }
    if (m.state == "concluded" && str_of(j, "result") != m.result) return bad("another result");
  }

  // The next request, from the acknowledged state (never one that should be refused).
  Request next_request() {
    Request r;
    r.key = prefix_ + "-op" + std::to_string(next_op_++);
    std::vector<std::string> open_ready, claimed, live;
    const std::int64_t now = wall_ms();
    for (const auto& [id, m] : intents_) {
      if (m.state == "open") {
        live.push_back(id);
        if (m.not_before + 5 < now) open_ready.push_back(id);
      } else if (m.state == "claimed") {
        live.push_back(id);
        claimed.push_back(id);
      }
    }
    std::vector<std::string> unrevoked;
    for (const auto& [id, h] : hints_) {
      if (!h.revoked) unrevoked.push_back(id);
    }
    const bool can_hold = claimed.size() < kHeldLeasesMax;
    // Weights per Op, in enum order.
    int w[kOpCount] = {
        15,                                                         // fact
        facts_.empty() || live.size() >= kLiveIntentsMax ? 0 : 20,  // create
        can_hold && !open_ready.empty() ? 10 : 0,                   // claim
        can_hold && !live.empty() ? 8 : 0,                          // claims
        claimed.empty() ? 0 : 14,                                   // heartbeat
        claimed.empty() ? 0 : 12,                                   // conclude
        claimed.empty() ? 0 : 4,                                    // fail
        claimed.empty() ? 0 : 4,                                    // release
        live.empty() ? 0 : 4,                                       // cancel
        3,                                                          // hint
        unrevoked.empty() ? 0 : 2,                                  // revoke
    };
    if (facts_.empty()) std::fill(std::begin(w) + 1, std::end(w), 0);
    int total = 0;
    for (int x : w) total += x;
    int pick = static_cast<int>(rng_() % static_cast<std::uint64_t>(total));
    int op = 0;
    while (pick >= w[op]) pick -= w[op++];
    r.op = static_cast<Op>(op);
    auto any = [&](const std::vector<std::string>& ids) { return ids[rng_() % ids.size()]; };
    const std::string n = std::to_string(next_op_);
    const std::string agent = "\"agent\":" + json_str(name_);
    const std::string ttl = ",\"lease_ttl_ms\":" + std::to_string(kLeaseTtlMs);
    r.method = "POST";
    switch (r.op) {
      case Op::kFact:
        r.path = "/v1/facts";
        r.body = "{\"kind\":\"obs\",\"content\":{\"writer\":" + json_str(prefix_) + ",\"n\":" + n +
                 "},\"creator\":" + json_str(name_) + "}";
        break;
      case Op::kCreate:
        r.marker = prefix_ + "-i" + n;
        r.path = "/v1/intents";
        r.body = "{\"kind\":" + json_str(kind_) + ",\"spec\":{\"marker\":" + json_str(r.marker) +
                 "},\"from_facts\":[" + json_str(facts_[rng_() % facts_.size()].id) + "]" + ttl +
                 ",\"max_attempts\":4,\"creator\":" + json_str(name_) + "}";
        intent_markers_.emplace(r.marker, false);
        break;
      case Op::kClaim:
        r.target = any(open_ready);
        r.path = "/v1/intents/" + r.target + "/claim";
        r.body = "{" + agent + ttl + "}";
        break;
      case Op::kClaims: {
        const std::size_t max =
            std::min<std::size_t>(1 + rng_() % 3, kHeldLeasesMax - claimed.size());
        r.path = "/v1/claims";
        r.body = "{" + agent + ",\"kinds\":[" + json_str(kind_) +
                 "],\"max\":" + std::to_string(max) +
                 ",\"wait_ms\":" + (rng_() % 4 == 0 ? "20" : "0") + ttl + "}";
        break;
      }
      case Op::kHeartbeat:
      case Op::kConclude:
      case Op::kFail:
      case Op::kRelease: {
        r.target = any(claimed);
        const IntentModel& m = intents_.at(r.target);
        static constexpr const char* kVerb[] = {"heartbeat", "conclude", "fail", "release"};
        r.path = "/v1/intents/" + r.target + "/" +
                 kVerb[static_cast<int>(r.op) - static_cast<int>(Op::kHeartbeat)];
        r.body = "{" + agent + ",\"epoch\":" + std::to_string(m.epoch);
        if (r.op == Op::kHeartbeat) r.body += ttl;
        if (r.op == Op::kConclude) {
          r.body +=
              ",\"result\":{\"kind\":\"result\",\"content\":{\"marker\":" + json_str(m.marker) +
              ",\"n\":" + n + "}}";
        }
        if (r.op == Op::kFail) {
          r.body += ",\"error\":\"failure " + n +
                    "\",\"retryable\":" + (rng_() % 3 == 0 ? "false" : "true");
        }
        r.body += "}";
        break;
      }
      case Op::kCancel:
        r.target = any(live);
        r.path = "/v1/intents/" + r.target + "/cancel";
        r.body = "{\"creator\":" + json_str(name_) + "}";
        break;
      case Op::kHint:
        // Denies a kind nobody uses: hints must not change the writers' work.
        r.marker = prefix_ + "-h" + n;
        r.path = "/v1/hints";
        r.body =
            "{\"kind\":\"policy\",\"selector\":{\"kind\":\"crash-unused\"},\"effect\":{\"type\":"
            "\"deny\"},\"reason\":" +
            json_str(r.marker) + ",\"creator\":" + json_str(name_) + "}";
        hint_markers_.emplace(r.marker, false);
        break;
      case Op::kRevoke:
        r.target = any(unrevoked);
        r.method = "DELETE";
        r.path = "/v1/hints/" + r.target;
        r.body = "{\"creator\":" + json_str(name_) + "}";
        break;
    }
    return r;
  }

  std::string name_;
  std::string kind_;
  std::string prefix_;  // makes keys, markers and fact contents unique per run
  std::mt19937_64 rng_;
  std::uint64_t next_op_ = 0;
  std::vector<FactModel> facts_;
  std::map<std::string, IntentModel> intents_;
  std::map<std::string, HintModel> hints_;
  std::map<std::string, bool> intent_markers_;
  std::map<std::string, bool> hint_markers_;
  std::optional<Request> inflight_;
  std::uint64_t acked_in_cycle_ = 0;
  std::uint64_t retried_ = 0;
  Violations violations_;
};

// Check C across writers: markers name exactly one record each (none when the
// create was refused), histories are exact, and no event names an unknown subject.
void check_exactly_once(const std::vector<std::unique_ptr<Writer>>& writers, const Snapshot& s,
                        Violations& v) {
  std::map<std::string, std::vector<std::string>> intents_by_marker, hints_by_marker;
  for (const auto& [id, in] : s.intents) {
    const Json* spec = in.find("spec");
    intents_by_marker[spec != nullptr ? str_of(*spec, "marker") : ""].push_back(id);
  }
  for (const auto& [id, h] : s.hints) hints_by_marker[str_of(h, "reason")].push_back(id);
  auto check_markers = [&](const char* what, std::map<std::string, std::vector<std::string>>& found,
                           const std::map<std::string, bool>& sent, const std::string& writer) {
    for (const auto& [marker, acked] : sent) {
      auto it = found.find(marker);
      const std::size_t n = it == found.end() ? 0 : it->second.size();
      const std::size_t want = acked ? 1 : 0;
      if (n != want) {
        std::string ids;
        if (it != found.end()) {
          for (const auto& id : it->second) ids += " " + id;
        }
        v.push_back(writer + ": marker " + marker + " is in " + std::to_string(n) + " " + what +
                    (ids.empty() ? "" : " (" + ids.substr(1) + ")") + ", want " +
                    std::to_string(want) +
                    (acked ? " (its create was acknowledged)" : " (its create was refused)"));
      }
      if (it != found.end()) found.erase(it);
    }
  };
  for (const auto& w : writers) {
    check_markers("intents", intents_by_marker, w->intent_markers(), w->name());
    check_markers("hints", hints_by_marker, w->hint_markers(), w->name());
  }
  for (const auto& [marker, ids] : intents_by_marker) {
    v.push_back("intent " + ids.front() + " has marker " + marker + ", which no writer sent");
  }
  for (const auto& [marker, ids] : hints_by_marker) {
    v.push_back("hint " + ids.front() + " has reason " + marker + ", which no writer sent");
  }

  std::map<std::string, std::vector<const ServerEvent*>> by_subject;
  for (const ServerEvent& e : s.events) by_subject[e.subject].push_back(&e);
  std::set<std::string> known;
  for (const auto& w : writers) w->check_histories(by_subject, known, v);
  for (const auto& [subject, evs] : by_subject) {
    if (known.count(subject) == 0) {
      v.push_back("event " + std::to_string(evs.front()->seq) + " (" + evs.front()->type +
                  ") names " + subject + ", which no acknowledged request created");
    }
  }
}

// ---- the run -----------------------------------------------------------------------------

struct Stats {
  std::uint64_t cycles = 0;
  std::uint64_t sigterms = 0;
  std::uint64_t acked = 0;
  std::uint64_t acked_min = UINT64_MAX;
  std::uint64_t acked_max = 0;
  std::uint64_t retried = 0;
  std::uint64_t applied_before_kill = 0;  // in-flight requests whose first attempt had committed
  std::uint64_t events = 0;
  double restart_ms_total = 0;
  double restart_ms_max = 0;
};

std::string self_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("cairn_crash_tests") : p.string();
}

std::string make_temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "cairn-crash-XXXXXX").string();
  if (::mkdtemp(t.data()) == nullptr) return "";
  return t;
}

TEST(Crash, KillNineUnderConcurrentWritersLosesNothingAndAppliesNothingTwice) {
  const std::uint64_t cycles = env_u64("CAIRN_CRASH_CYCLES", 100);
  const int writer_count = static_cast<int>(env_u64("CAIRN_CRASH_WRITERS", 4));
  const std::uint64_t per_dir =
      std::max<std::uint64_t>(1, env_u64("CAIRN_CRASH_CYCLES_PER_DIR", 50));
  const std::uint64_t seed = env_u64("CAIRN_CRASH_SEED", std::random_device{}() & 0xffffffffu);
  std::printf(
      "[crash] seed %llu, %llu cycles, %d writers, a fresh data directory every %llu cycles\n",
      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(cycles), writer_count,
      static_cast<unsigned long long>(per_dir));
  std::fflush(stdout);
  const auto started = std::chrono::steady_clock::now();
  Stats st;

  std::uint64_t cycle = 0;
  for (std::uint64_t dir_index = 0; cycle < cycles; ++dir_index) {
    const std::string root = make_temp_dir();
    ASSERT_FALSE(root.empty());
    const std::string data = root + "/data";
    CairndProcess server(CAIRND_PATH, data, root + "/cairnd.log");
    std::string err = server.start();
    ASSERT_EQ(err, "");
    std::mt19937_64 rng(mix(seed, dir_index) ^ 0x6b696c6cULL);
    std::vector<std::unique_ptr<Writer>> writers;
    for (int i = 0; i < writer_count; ++i) {
      writers.push_back(std::make_unique<Writer>(i, seed, dir_index));
    }
    std::vector<ServerEvent> history;  // the log as last verified

    const std::uint64_t end = std::min(cycles, cycle + per_dir);
    for (; cycle < end; ++cycle) {
      // Where to stop it: after 0..kKillAfterAckedMax acknowledgements plus a
      // jitter; every tenth cycle with SIGTERM instead of SIGKILL.
      const bool sigterm = cycle % 10 == 5;
      const std::uint64_t kill_after = rng() % 10 == 0 ? 0 : 1 + rng() % kKillAfterAckedMax;
      const int jitter_us = static_cast<int>(rng() % kKillJitterUsMax);
      Violations v;
      auto fail_cycle = [&](const char* phase) {
        std::string msg = "[crash] cycle " + std::to_string(cycle) + " (" + phase + ", after a " +
                          (sigterm ? "SIGTERM" : "SIGKILL") + " at " + std::to_string(kill_after) +
                          " acknowledgements + " + std::to_string(jitter_us) +
                          " us): " + std::to_string(v.size()) + " violations; data kept in " +
                          root + "\n  replay: CAIRN_CRASH_SEED=" + std::to_string(seed) +
                          " CAIRN_CRASH_CYCLES=" + std::to_string(cycle + 1) +
                          " CAIRN_CRASH_WRITERS=" + std::to_string(writer_count) +
                          " CAIRN_CRASH_CYCLES_PER_DIR=" + std::to_string(per_dir) + " " +
                          self_path() + "\n";
        for (std::size_t i = 0; i < v.size() && i < kViolationsShownMax; ++i) {
          msg += "  - " + v[i] + "\n";
        }
        ADD_FAILURE() << msg;
      };

      // Run: the writers until the server is killed.
      std::atomic<bool> stop{false};
      std::atomic<std::uint64_t> acked{0};
      std::atomic<int> running{writer_count};
      std::vector<std::thread> threads;
      for (auto& w : writers) {
        threads.emplace_back([&, wp = w.get()] {
          wp->run(server.port(), stop, acked);
          running.fetch_sub(1);
        });
      }
      const auto run_deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(kRunPhaseMsMax);
      while (acked.load() < kill_after && running.load() > 0 &&
             std::chrono::steady_clock::now() < run_deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(jitter_us));
      err = sigterm ? server.terminate(kSigtermExitMsMax) : server.kill9();
      stop.store(true);
      for (auto& t : threads) t.join();
      if (!err.empty()) v.push_back(err);
      std::uint64_t acked_cycle = 0;
      for (auto& w : writers) {
        acked_cycle += w->acked_in_cycle();
        for (auto& x : w->take_violations()) v.push_back(std::move(x));
      }
      if (!v.empty()) return fail_cycle("run");

      // Restart on the same directory.
      const auto t0 = std::chrono::steady_clock::now();
      err = server.start();
      const double restart_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!err.empty()) {
        v.push_back(err);
        return fail_cycle("restart");
      }
      HttpConn conn(server.port());

      // A: exactly the acknowledged state, before anything is written.
      Snapshot a;
      if (read_snapshot(conn, a, v)) {
        check_log(a, history, v);
        for (auto& w : writers) {
          w->check_records(a, conn, /*exact=*/false, v);
          if (!w->inflight_already_applied(a)) continue;
          ++st.applied_before_kill;
          // A graceful stop answers every request it applied before closing.
          if (sigterm) {
            v.push_back(w->name() + ": " + w->inflight()->describe() +
                        " was applied but not answered before the SIGTERM exit");
          }
        }
      }
      if (!v.empty()) return fail_cycle("A: after the restart");

      // B: the in-flight requests, retried with their keys.
      for (auto& w : writers) {
        if (w->inflight()) ++st.retried;
        w->resolve(conn);
        for (auto& x : w->take_violations()) v.push_back(std::move(x));
      }

      // C: everything answered — each change exactly once.
      Snapshot c;
      if (read_snapshot(conn, c, v)) {
        check_log(c, a.events, v);
        for (auto& w : writers) w->check_records(c, conn, /*exact=*/true, v);
        check_exactly_once(writers, c, v);
      }
      if (!v.empty()) return fail_cycle("B/C: after the retries");

      history = std::move(c.events);
      ++st.cycles;
      st.sigterms += sigterm ? 1 : 0;
      st.acked += acked_cycle;
      st.acked_min = std::min(st.acked_min, acked_cycle);
      st.acked_max = std::max(st.acked_max, acked_cycle);
      st.restart_ms_total += restart_ms;
      st.restart_ms_max = std::max(st.restart_ms_max, restart_ms);
      st.events = history.size();
      if ((cycle + 1) % 10 == 0) {
        std::printf("[crash] %llu cycles done, %llu events in the current log\n",
                    static_cast<unsigned long long>(cycle + 1),
                    static_cast<unsigned long long>(history.size()));
        std::fflush(stdout);
      }
    }
    // A graceful stop at the end of each directory must exit 0 as well.
    err = server.terminate(kSigtermExitMsMax);
    ASSERT_EQ(err, "") << "seed " << seed;
    std::filesystem::remove_all(root);
  }

  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "[crash] seed %llu: %llu cycles (%llu SIGTERM), %llu acknowledged requests (per cycle "
      "min %llu, mean %.1f, max %llu), %llu in-flight requests retried (%llu had committed "
      "before the kill), restart mean %.1f ms max %.1f ms, %.1f s\n",
      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(st.cycles),
      static_cast<unsigned long long>(st.sigterms), static_cast<unsigned long long>(st.acked),
      static_cast<unsigned long long>(st.acked_min),
      st.cycles ? static_cast<double>(st.acked) / static_cast<double>(st.cycles) : 0.0,
      static_cast<unsigned long long>(st.acked_max), static_cast<unsigned long long>(st.retried),
      static_cast<unsigned long long>(st.applied_before_kill),
      st.cycles ? st.restart_ms_total / static_cast<double>(st.cycles) : 0.0, st.restart_ms_max,
      secs);
  // The run exercised what it claims to: writes were acknowledged and requests
  // were caught in flight by the kills.
  EXPECT_EQ(st.cycles, cycles);
  EXPECT_GT(st.acked, 0u);
  EXPECT_GT(st.retried, 0u);
}

}  // namespace
}  // namespace cairn::testing
