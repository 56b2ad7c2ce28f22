// storm.cc — see storm.h.
//
// What check_storm() verifies, from the event log read through every live node
// (GET /v1/events) and the acknowledgements the agents recorded:
//   - the sequence is 1..last with no gap or duplicate, and every live node
//     serves byte-identical pages of it and reports the same last_seq, facts
//     and intent counts (every intent concluded, none open, claimed or dead);
//   - per intent, replaying its events: created exactly once; a claim only
//     when no lease is live (the previous lease ended by conclude, fail,
//     release or expiry — otherwise two live leases), with epoch = previous+1;
//     a renewal, conclusion or failure only by the holder, with the current
//     epoch, while its lease (extended by renewals) has not ended; an expiry
//     only once the lease end has passed; exactly one intent.concluded and
//     nothing after it;
//   - every 2xx the agents saw is in the log as the event it acknowledged: a
//     claim or heartbeat with its epoch and lease end, a conclusion with its
//     epoch and result, a failure or release with its epoch, a create;
//   - a batch fact posted through every node got one id, was recorded once and
//     is served by every node; every result fact was recorded once;
//   - the intents read back through each node show the logged result.
#include "cluster/storm.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "backend/postgres/pg_cluster.h"
#include "model/json.h"
#include "model/json_parse.h"
#include "server/http_client.h"

namespace cairn::testing {

// ---- bounds -----------------------------------------------------------------------

namespace {

constexpr int kHttpTimeoutMs = 40'000;               // one request (claims long-poll at most 30 s)
constexpr std::int64_t kRequestRetryMsMax = 60'000;  // retries of one request (503, 429, drops)
constexpr int kRequestAttemptsMax = 400;
constexpr int kBackoffFirstMs = 25;
constexpr int kBackoffCapMs = 1'000;
constexpr std::int64_t kCatchUpMsMax = 5'000;  // a node's view may lag another's by this much
constexpr int kMonitorPeriodMs = 200;
constexpr int kProbeTimeoutMs = 5'000;  // a probe while PostgreSQL is down
constexpr int kEventsPageItems = 1'000;
constexpr int kWorkSleepMsMax = 5;             // an agent's "work" between claim and conclude
constexpr int kHeartbeatSleepMsMax = 200;      // before a heartbeat
constexpr std::size_t kReadBackSamples = 300;  // intents read back through every node
constexpr std::int64_t kNodeStopMsMax = 30'000;
constexpr std::int64_t kKillHoldMs = 1'000;  // leases held by the victim's agents at the kill
constexpr std::int64_t kKillWaitMsMax = 10'000;

std::int64_t mono_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void sleep_ms(std::int64_t ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string clip(const std::string& s, std::size_t n = 300) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// State shared by the storm's threads.
struct Shared {
  Cluster* cluster = nullptr;
  const StormOptions* o = nullptr;
  std::atomic<bool> stop{false};
  // The kill: agents on `victim` that hold a lease keep it, idle, until the
  // node is dead, then drop it (their node died under their work).
  std::atomic<int> victim{-1};
  std::atomic<bool> killed{false};
  std::mutex mu;  // guards `out` while threads merge what they recorded
  StormOutcome* out = nullptr;
};

// ---- one client: a keep-alive connection to one node, retries, moves -----------------

struct CallResult {
  HttpResult r;            // status 0: no answer
  bool node_died = false;  // the node stopped taking connections (the client moved on)
  bool stopped = false;    // given up because the storm is over
};

class Client {
 public:
  // A `pinned` client stays on its node: when the node dies, calls answer node_died.
  Client(Shared& s, int node, std::string name, std::uint64_t seed, bool pinned = false)
      : s_(s), node_(node), pinned_(pinned), name_(std::move(name)), rng_(seed) {}

  int node() const { return node_; }
  std::mt19937_64& rng() { return rng_; }

  // Sends one request and retries it — same node, same Idempotency-Key — on
  // 503 (unavailable, outcome_unknown), 429, 409 lost_race and a dropped connection, with a
  // capped exponential backoff, for at most kRequestRetryMsMax. When the node
  // refuses new connections (killed), the client moves to the next node that
  // takes one; the request is resent there only when `resend_elsewhere` (the
  // key does not carry across nodes: only requests the engine itself
  // de-duplicates are resent), else node_died is returned.
  CallResult call(const std::string& method, const std::string& route, const std::string& path,
                  const std::string& body, const std::string& key, bool resend_elsewhere,
                  bool give_up_on_stop) {
    CallResult out;
    Headers h;
    if (!key.empty()) h.emplace_back("Idempotency-Key", key);
    const std::int64_t start = mono_ms();
    int attempt = 0;
    std::string last;
    for (;;) {
      if (give_up_on_stop && s_.stop.load()) {
        out.stopped = true;
        return out;
      }
      if (++attempt > kRequestAttemptsMax || mono_ms() - start > kRequestRetryMsMax) break;
      if (!conn_ || !conn_->ok()) {
        conn_ = std::make_unique<HttpConn>(s_.cluster->port(node_), kHttpTimeoutMs);
        if (!conn_->ok()) {
          conn_.reset();
          if (pinned_) {
            out.node_died = true;
            return out;
          }
          if (!move_on()) {
            backoff(attempt);
            continue;
          }
          if (!resend_elsewhere) {
            out.node_died = true;
            return out;
          }
          continue;
        }
      }
      HttpResult r = conn_->request(method, path, body, h);
      count(method + " " + route + " " + std::to_string(r.status) + " " + r.code());
      auto close = r.headers.find("connection");
      if (r.status == 0 || (close != r.headers.end() && close->second == "close")) conn_.reset();
      if (r.status == 0) {
        last = "no answer (connection dropped)";
        continue;  // reconnect: the same node answers a keyed retry with the first reply
      }
      // 409 lost_race: other nodes committed first too many times in a row;
      // nothing was applied and the key was forgotten — run it again.
      const bool lost_race = r.status == 409 && r.code() == "lost_race";
      if (lost_race) ++lost_races_;
      if (r.status == 503 || r.status == 429 || lost_race) {
        if (r.status == 503) ++unavailable_;
        last = std::to_string(r.status) + " " + clip(r.body);
        std::int64_t wait = 0;
        auto ra = r.headers.find("retry-after");
        if (r.status == 429 && ra != r.headers.end()) wait = std::atoll(ra->second.c_str()) * 1000;
        if (wait > 0) {
          sleep_ms(std::min<std::int64_t>(wait, kBackoffCapMs));
        } else {
          backoff(attempt);
        }
        continue;
      }
      if (r.status >= 500) {
        ++http_500_;
        error(name_ + ": " + method + " " + path + " key " + key + " on node " +
              std::to_string(node_) + " answered " + std::to_string(r.status) + " " + clip(r.body));
      }
      out.r = std::move(r);
      return out;
    }
    error(name_ + ": " + method + " " + path + " key " + key + " unanswered after " +
          std::to_string(attempt - 1) + " attempts over " + std::to_string(mono_ms() - start) +
          " ms (node " + std::to_string(node_) + "): last " + last);
    return out;
  }

  void error(std::string e) { errors_.push_back(std::move(e)); }
  void ack(Ack a) {
    a.node = node_;
    acks_.push_back(std::move(a));
  }

  // Hands what this client recorded to the outcome.
  void merge() {
    std::lock_guard<std::mutex> l(s_.mu);
    StormOutcome& o = *s_.out;
    for (auto& [k, v] : replies_) o.replies[k] += v;
    o.http_500 += http_500_;
    o.unavailable_503 += unavailable_;
    o.node_moves += moves_;
    o.lost_race_409 += lost_races_;
    for (auto& e : errors_) o.errors.push_back(std::move(e));
    for (auto& a : acks_) o.acks.push_back(std::move(a));
    replies_.clear();
    errors_.clear();
    acks_.clear();
    http_500_ = unavailable_ = moves_ = lost_races_ = 0;
  }

 private:
  void count(const std::string& k) { ++replies_[k]; }

  void backoff(int attempt) {
    const int exp = std::min(attempt - 1, 10);
    const int cap = std::min(kBackoffCapMs, kBackoffFirstMs << exp);
    sleep_ms(cap / 2 + static_cast<int>(rng_() % static_cast<std::uint64_t>(cap / 2 + 1)));
  }

  // Moves to the next node (in order) that takes a connection; false if none does.
  bool move_on() {
    const int n = s_.cluster->size();
    for (int k = 1; k < n; ++k) {
      const int cand = (node_ + k) % n;
      auto c = std::make_unique<HttpConn>(s_.cluster->port(cand), kHttpTimeoutMs);
      if (c->ok()) {
        node_ = cand;
        conn_ = std::move(c);
        ++moves_;
        return true;
      }
    }
    return false;
  }

  Shared& s_;
  int node_;
  bool pinned_;
  std::string name_;
  std::mt19937_64 rng_;
  std::unique_ptr<HttpConn> conn_;
  std::map<std::string, std::uint64_t> replies_;
  std::uint64_t http_500_ = 0;
  std::uint64_t unavailable_ = 0;
  std::uint64_t moves_ = 0;
  std::uint64_t lost_races_ = 0;
  std::vector<std::string> errors_;
  std::vector<Ack> acks_;
};

// ---- agents --------------------------------------------------------------------------

void run_agent(Shared& s, int index) {
  const StormOptions& o = *s.o;
  const std::string name = "agent-" + std::to_string(index);
  Client c(s, index % o.nodes, name, mix(o.seed, 1000 + static_cast<std::uint64_t>(index)));
  auto& rng = c.rng();
  std::uint64_t n = 0;
  std::vector<std::pair<std::string, std::uint64_t>> abandoned;
  auto key = [&] { return name + "-" + std::to_string(++n); };
  const std::string ttl = std::to_string(o.lease_ttl_ms);
  while (!s.stop.load()) {
    CallResult cr = c.call("POST", "/v1/claims", "/v1/claims",
                           "{\"agent\":" + json_str(name) + ",\"max\":1,\"wait_ms\":" +
                               std::to_string(o.claim_wait_ms) + ",\"lease_ttl_ms\":" + ttl + "}",
                           key(), false, true);
    if (cr.stopped) break;
    if (cr.r.status == 0) continue;  // unanswered (counted) or the node died: claim again
    if (cr.r.status != 200) {
      c.error(name + ": POST /v1/claims answered " + std::to_string(cr.r.status) + " " +
              clip(cr.r.body));
      continue;
    }
    const Json j = cr.r.json();
    const Json* claims = j.find("claims");
    if (claims == nullptr || !claims->is_array() || claims->size() == 0) continue;
    const Json& cl = claims->as_array().at(0);
    const Json* in = cl.find("intent");
    const std::string id = in != nullptr ? str_of(*in, "id") : std::string();
    const auto epoch = static_cast<std::uint64_t>(int_of(cl, "epoch"));
    c.ack(Ack{Ack::kClaim, id, name, epoch, int_of(cl, "lease_expires_at"), "", 0});
    const std::string base = "/v1/intents/" + id;
    const std::string who = "{\"agent\":" + json_str(name) + ",\"epoch\":" + std::to_string(epoch);

    // A request on the held lease. When the node died under it, the agent
    // either drops the lease (it expires and another agent reclaims it) or
    // resends it on the node it moved to.
    auto on_lease = [&](const std::string& verb, const std::string& body) -> HttpResult {
      const std::string k = key();
      CallResult r =
          c.call("POST", "/v1/intents/{id}/" + verb, base + "/" + verb, body, k, false, false);
      if (!r.node_died) return r.r;
      if (rng() % 2 == 0) {
        abandoned.emplace_back(id, epoch);
        return HttpResult{};
      }
      return c.call("POST", "/v1/intents/{id}/" + verb, base + "/" + verb, body, k, true, false).r;
    };
    auto expect_409 = [&](const std::string& verb, const HttpResult& r) {
      if (r.status != 0 && r.status != 409) {
        c.error(name + ": " + verb + " " + id + " epoch " + std::to_string(epoch) + " answered " +
                std::to_string(r.status) + " " + clip(r.body));
      }
    };

    if (s.victim.load() == c.node()) {
      const std::int64_t since = mono_ms();
      while (!s.killed.load() && mono_ms() - since < kKillWaitMsMax) sleep_ms(10);
      abandoned.emplace_back(id, epoch);
      continue;
    }
    int roll = static_cast<int>(rng() % 1000);
    if (roll < o.abandon_pm) continue;  // the lease expires
    roll -= o.abandon_pm;
    if (roll < o.fail_pm) {
      HttpResult r = on_lease("fail", who + ",\"error\":\"storm\",\"retryable\":true}");
      if (r.status == 200) {
        c.ack(Ack{Ack::kFail, id, name, epoch, 0, "", 0});
      } else {
        expect_409("fail", r);
      }
      continue;
    }
    roll -= o.fail_pm;
    if (roll < o.release_pm) {
      HttpResult r = on_lease("release", who + "}");
      if (r.status == 200) {
        c.ack(Ack{Ack::kRelease, id, name, epoch, 0, "", 0});
      } else {
        expect_409("release", r);
      }
      continue;
    }
    roll -= o.release_pm;
    if (roll < o.heartbeat_pm) {
      sleep_ms(static_cast<std::int64_t>(rng() % kHeartbeatSleepMsMax));
      HttpResult r = on_lease("heartbeat", who + ",\"lease_ttl_ms\":" + ttl + "}");
      if (r.status == 200) {
        const Json hj = r.json();
        c.ack(Ack{Ack::kHeartbeat, id, name, static_cast<std::uint64_t>(int_of(hj, "epoch")),
                  int_of(hj, "lease_expires_at"), "", 0});
      } else {
        expect_409("heartbeat", r);
        if (r.status != 0) continue;  // the lease is gone
      }
    }
    sleep_ms(static_cast<std::int64_t>(rng() % (kWorkSleepMsMax + 1)));
    HttpResult r = on_lease("conclude", who + ",\"result\":{\"kind\":\"result\",\"content\":{" +
                                            "\"intent\":" + json_str(id) +
                                            ",\"epoch\":" + std::to_string(epoch) + "}}}");
    if (r.status == 200) {
      c.ack(Ack{Ack::kConclude, id, name, epoch, 0, str_of(r.json(), "result"), 0});
    } else {
      expect_409("conclude", r);
    }
  }
  c.merge();
  if (!abandoned.empty()) {
    std::lock_guard<std::mutex> l(s.mu);
    for (auto& a : abandoned) s.out->abandoned_at_kill.push_back(std::move(a));
  }
}

// ---- creators ------------------------------------------------------------------------

void run_creator(Shared& s, int index) {
  const StormOptions& o = *s.o;
  const std::string name = "creator-" + std::to_string(index);
  // One client pinned to each node (the batch fact goes through all of them)
  // and the one the intents go through.
  std::vector<std::unique_ptr<Client>> pinned;
  for (int k = 0; k < o.nodes; ++k) {
    pinned.push_back(std::make_unique<Client>(
        s, k, name, mix(o.seed, 100 + static_cast<std::uint64_t>(index * 16 + k)), true));
  }
  Client c(s, index % o.nodes, name, mix(o.seed, 50 + static_cast<std::uint64_t>(index)));
  const int batches = (o.intents + o.batch_intents - 1) / o.batch_intents;
  std::vector<BatchFact> facts;
  for (int b = index; b < batches; b += o.creators) {
    BatchFact bf;
    bf.batch = b;
    bf.ids.assign(static_cast<std::size_t>(o.nodes), "");
    const std::string fact = "{\"kind\":\"batch\",\"content\":{\"batch\":" + std::to_string(b) +
                             ",\"seed\":" + std::to_string(o.seed) + "},\"creator\":\"creators\"}";
    std::string fid;
    for (int k = 0; k < o.nodes; ++k) {
      const int node = (b + k) % o.nodes;
      CallResult r = pinned[static_cast<std::size_t>(node)]->call(
          "POST", "/v1/facts", "/v1/facts", fact, name + "-fact-" + std::to_string(b), false,
          false);
      if (r.node_died || r.r.status == 0) continue;
      if (r.r.status != 200 && r.r.status != 201) {
        c.error(name + ": POST /v1/facts (batch " + std::to_string(b) + ") on node " +
                std::to_string(node) + " answered " + std::to_string(r.r.status) + " " +
                clip(r.r.body));
        continue;
      }
      const Json j = r.r.json();
      bf.ids[static_cast<std::size_t>(node)] = str_of(j, "id");
      const Json* created = j.find("created");
      if (created != nullptr && created->is_bool() && created->as_bool()) ++bf.created_true;
      if (fid.empty()) fid = str_of(j, "id");
    }
    // Every node serves the fact (a node's view may lag by one catch-up).
    for (int node = 0; node < o.nodes && !fid.empty(); ++node) {
      const std::int64_t start = mono_ms();
      for (;;) {
        CallResult r = pinned[static_cast<std::size_t>(node)]->call(
            "GET", "/v1/facts/{id}", "/v1/facts/" + fid, "", "", false, false);
        if (r.node_died || r.r.status == 0) break;
        if (r.r.status == 200 && str_of(r.r.json(), "id") == fid) break;
        if (r.r.status != 404 || mono_ms() - start > kCatchUpMsMax) {
          c.error(name + ": GET /v1/facts/" + fid + " (batch " + std::to_string(b) + ") on node " +
                  std::to_string(node) + " answered " + std::to_string(r.r.status) + " " +
                  clip(r.r.body));
          break;
        }
        sleep_ms(20);
      }
    }
    facts.push_back(std::move(bf));
    if (fid.empty()) {
      c.error(name + ": no node recorded the fact of batch " + std::to_string(b));
      continue;
    }
    const int end = std::min(o.intents, (b + 1) * o.batch_intents);
    for (int n = b * o.batch_intents; n < end; ++n) {
      const std::string id = intent_id(n);
      CallResult r =
          c.call("POST", "/v1/intents", "/v1/intents",
                 "{\"id\":" + json_str(id) + ",\"kind\":\"job\",\"from_facts\":[" + json_str(fid) +
                     "],\"max_attempts\":1000,\"lease_ttl_ms\":" + std::to_string(o.lease_ttl_ms) +
                     ",\"creator\":" + json_str(name) + "}",
                 "create-" + id, true, false);
      if (r.r.status == 200 || r.r.status == 201) {
        c.ack(Ack{Ack::kCreate, id, name, 0, 0, "", 0});
      } else if (r.r.status != 0) {
        c.error(name + ": POST /v1/intents " + id + " answered " + std::to_string(r.r.status) +
                " " + clip(r.r.body));
      }
    }
  }
  c.merge();
  for (auto& p : pinned) p->merge();
  std::lock_guard<std::mutex> l(s.mu);
  for (auto& f : facts) s.out->facts.push_back(std::move(f));
}

// ---- the monitor: progress, the fault, the end --------------------------------------

struct StateCounts {
  bool ok = false;
  std::int64_t concluded = 0;
  std::string body;
};

StateCounts read_state(Cluster& cl, std::unique_ptr<HttpConn>& conn, int& node) {
  for (int tries = 0; tries < cl.size(); ++tries) {
    if (cl.alive(node)) {
      if (!conn || !conn->ok()) conn = std::make_unique<HttpConn>(cl.port(node), kHttpTimeoutMs);
      HttpResult r = conn->request("GET", "/v1/state");
      if (r.status == 200) {
        const Json j = r.json();
        const Json* in = j.find("intents");
        return StateCounts{true, in != nullptr ? int_of(*in, "concluded") : 0, r.body};
      }
      conn.reset();
    }
    node = (node + 1) % cl.size();
    conn.reset();
  }
  return StateCounts{};
}

void restart_postgres(Cluster& cl, const StormOptions& o, StormOutcome& out) {
  const std::int64_t down_at = mono_ms();
  backend::testing::pg_cluster_down();
  // While it is down, every node refuses a new fact with 503.
  int probe = 0;
  std::int64_t slowest_ms = 0;
  while (mono_ms() - down_at < o.postgres_down_ms) {
    for (int i = 0; i < cl.size(); ++i) {
      if (!cl.alive(i)) continue;
      const std::int64_t sent_at = mono_ms();
      HttpConn conn(cl.port(i), kProbeTimeoutMs);
      HttpResult r =
          conn.request("POST", "/v1/facts",
                       "{\"kind\":\"probe\",\"content\":{\"probe\":" + std::to_string(++probe) +
                           ",\"seed\":" + std::to_string(o.seed) + "}}");
      slowest_ms = std::max(slowest_ms, mono_ms() - sent_at);
      if (r.status == 503) {
        ++out.probe_503;
      } else {
        out.errors.push_back("a fact posted through node " + std::to_string(i) +
                             " while PostgreSQL was down answered " + std::to_string(r.status) +
                             " " + clip(r.body) + " (expected 503; 0: no answer within " +
                             std::to_string(kProbeTimeoutMs) + " ms)");
      }
    }
    sleep_ms(250);
  }
  backend::testing::pg_cluster_up();
  std::fprintf(
      stderr,
      "[storm] PostgreSQL was down for %lld ms; %d probes, the slowest answered in %lld ms\n",
      static_cast<long long>(mono_ms() - down_at), probe, static_cast<long long>(slowest_ms));
}

}  // namespace

// ---- public --------------------------------------------------------------------------

const char* ack_name(Ack::Kind k) {
  switch (k) {
    case Ack::kCreate:
      return "create";
    case Ack::kClaim:
      return "claim";
    case Ack::kHeartbeat:
      return "heartbeat";
    case Ack::kConclude:
      return "conclude";
    case Ack::kFail:
      return "fail";
    case Ack::kRelease:
      return "release";
  }
  return "?";
}

std::string intent_id(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "job-%06d", n);
  return buf;
}

StormOptions storm_options_from_env(StormOptions o) {
  o.seed = env_u64("CAIRN_STORM_SEED", std::random_device{}());
  o.nodes = static_cast<int>(env_u64("CAIRN_STORM_NODES", static_cast<std::uint64_t>(o.nodes)));
  o.agents = static_cast<int>(env_u64("CAIRN_STORM_AGENTS", static_cast<std::uint64_t>(o.agents)));
  o.intents =
      static_cast<int>(env_u64("CAIRN_STORM_INTENTS", static_cast<std::uint64_t>(o.intents)));
  return o;
}

Cluster::Cluster(std::string cairnd, std::string store_url, std::string dir, int nodes)
    : cairnd_(std::move(cairnd)), store_url_(std::move(store_url)), dir_(std::move(dir)) {
  ::mkdir(dir_.c_str(), 0755);
  for (int i = 0; i < nodes; ++i) {
    const std::string name = "n" + std::to_string(i + 1);
    const std::string data = dir_ + "/" + name;
    ::mkdir(data.c_str(), 0755);
    std::vector<std::string> args = {"--store", store_url_};
    if (nodes > 1) {
      args.push_back("--node");
      args.push_back(name);
    }
    nodes_.push_back(std::make_unique<CairndProcess>(cairnd_, data, log_path(i), args));
  }
}

Cluster::~Cluster() {
  for (auto& n : nodes_) {
    if (n->running()) n->kill9();
  }
}

std::string Cluster::log_path(int i) const {
  return dir_ + "/n" + std::to_string(i + 1) + ".log";
}

std::string Cluster::start() {
  ports_.clear();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    std::string e = nodes_[i]->start();
    if (!e.empty()) return "node n" + std::to_string(i + 1) + ": " + e;
    ports_.push_back(nodes_[i]->port());
  }
  return "";
}

std::string Cluster::stop() {
  std::string all;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->running()) continue;
    std::string e = nodes_[i]->terminate(static_cast<int>(kNodeStopMsMax));
    if (!e.empty()) all += "node n" + std::to_string(i + 1) + ": " + e + "; ";
  }
  return all;
}

StormOutcome run_storm(Cluster& cluster, const StormOptions& o) {
  StormOutcome out;
  Shared s;
  s.cluster = &cluster;
  s.o = &o;
  s.out = &out;
  const std::int64_t start = mono_ms();
  std::vector<std::thread> creators;
  std::vector<std::thread> agents;
  for (int i = 0; i < o.creators; ++i) creators.emplace_back(run_creator, std::ref(s), i);
  for (int i = 0; i < o.agents; ++i) agents.emplace_back(run_agent, std::ref(s), i);

  std::unique_ptr<HttpConn> conn;
  int node = 0;
  bool fault_done = o.fault == Fault::kNone;
  std::int64_t last_report = start;
  for (;;) {
    sleep_ms(kMonitorPeriodMs);
    StateCounts st = read_state(cluster, conn, node);
    if (st.ok) out.final_state = st.body;
    if (st.ok && st.concluded >= o.intents) {
      out.finished = true;
      break;
    }
    if (mono_ms() - last_report >= 10'000) {
      last_report = mono_ms();
      std::fprintf(stderr, "[storm] %lld ms: %lld of %d concluded\n",
                   static_cast<long long>(last_report - start),
                   static_cast<long long>(st.concluded), o.intents);
    }
    if (!fault_done && st.ok &&
        static_cast<double>(st.concluded) >= o.fault_at_concluded * o.intents) {
      fault_done = true;
      if (o.fault == Fault::kKillNode) {
        out.killed_node = static_cast<int>(o.seed % static_cast<std::uint64_t>(o.nodes));
        s.victim.store(out.killed_node);
        sleep_ms(kKillHoldMs);  // its agents' leases are now held across the kill
        std::string e = cluster.kill9(out.killed_node);
        s.killed.store(true);
        if (!e.empty())
          out.errors.push_back("killing node " + std::to_string(out.killed_node) + ": " + e);
        std::fprintf(stderr, "[storm] %lld ms: killed node n%d (%lld concluded)\n",
                     static_cast<long long>(mono_ms() - start), out.killed_node + 1,
                     static_cast<long long>(st.concluded));
      } else {
        std::fprintf(stderr, "[storm] %lld ms: stopping PostgreSQL (%lld concluded)\n",
                     static_cast<long long>(mono_ms() - start),
                     static_cast<long long>(st.concluded));
        restart_postgres(cluster, o, out);
      }
    }
    if (mono_ms() - start > o.run_ms_max) break;
  }
  s.stop.store(true);
  for (auto& t : agents) t.join();
  for (auto& t : creators) t.join();
  out.run_ms = mono_ms() - start;
  return out;
}

// ---- the checker ---------------------------------------------------------------------

namespace {}  // namespace

std::string render(const LogEvent& e) {
  std::string s = "#" + std::to_string(e.seq) + " " + e.type;
  if (!e.agent.empty()) s += " by " + e.agent;
  if (e.epoch != 0) s += " e" + std::to_string(e.epoch);
  if (e.lease != 0) s += " until " + std::to_string(e.lease);
  s += " at " + std::to_string(e.at);
  return s;
}

namespace {

// Reads the whole log through node `i`; the raw pages go to `pages`.
bool read_log(Cluster& cl, int i, std::vector<std::string>& pages, std::vector<LogEvent>* events,
              std::vector<std::string>& v) {
  HttpConn conn(cl.port(i), kHttpTimeoutMs);
  std::uint64_t after = 0;
  for (;;) {
    HttpResult r = conn.request("GET", "/v1/events?after=" + std::to_string(after) +
                                           "&limit=" + std::to_string(kEventsPageItems));
    if (r.status != 200) {
      v.push_back("GET /v1/events?after=" + std::to_string(after) + " on node " +
                  std::to_string(i) + " answered " + std::to_string(r.status) + " " + clip(r.body));
      return false;
    }
    pages.push_back(r.body);
    const Json j = r.json();
    const Json* evs = j.find("events");
    if (evs == nullptr || !evs->is_array()) {
      v.push_back("GET /v1/events: no events array: " + clip(r.body));
      return false;
    }
    for (const Json& e : evs->as_array()) {
      LogEvent le;
      le.seq = static_cast<std::uint64_t>(int_of(e, "seq"));
      le.type = str_of(e, "type");
      le.subject = str_of(e, "subject");
      le.at = int_of(e, "at");
      if (const Json* d = e.find("data"); d != nullptr && d->is_object()) {
        le.agent = str_of(*d, "agent");
        le.result = str_of(*d, "result");
        le.epoch = static_cast<std::uint64_t>(int_of(*d, "epoch"));
        le.lease = int_of(*d, "lease_expires_at");
      }
      after = le.seq;
      if (events != nullptr) events->push_back(std::move(le));
    }
    const Json* next = j.find("next");
    if (next == nullptr || next->is_null()) return true;
    after = static_cast<std::uint64_t>(int_of(j, "next"));
  }
}

struct IntentLog {
  std::vector<std::size_t> events;  // indexes into the log
  int created = 0;
  int concluded = 0;
  std::size_t concluded_at = 0;  // index of its intent.concluded
};

}  // namespace

std::vector<std::string> check_log(const std::vector<LogEvent>& log, int intent_count,
                                   StormOutcome& out) {
  std::vector<std::string> v;
  // The sequence: 1..last without gaps.
  for (std::size_t k = 0; k < log.size(); ++k) {
    if (log[k].seq != k + 1) {
      v.push_back("event sequence gap: position " + std::to_string(k) + " holds seq " +
                  std::to_string(log[k].seq) + ", expected " + std::to_string(k + 1) +
                  (k > 0 ? " (previous " + render(log[k - 1]) + ")" : std::string()));
      break;
    }
  }

  // Per intent: replay the leases.
  std::unordered_map<std::string, IntentLog> intents;
  for (int n = 0; n < intent_count; ++n) intents[intent_id(n)];
  std::unordered_map<std::string, int> recorded;  // fact id -> fact.recorded events
  struct Lease {
    bool held = false;
    std::string holder;
    std::uint64_t epoch = 0;
    std::int64_t end = 0;
  };
  std::unordered_map<std::string, Lease> leases;
  auto history = [&](const std::string& id, std::size_t upto) {
    std::string s;
    for (std::size_t k : intents[id].events) {
      if (k > upto) break;
      s += "\n      " + render(log[k]);
    }
    return s;
  };
  for (std::size_t k = 0; k < log.size(); ++k) {
    const LogEvent& e = log[k];
    if (e.type == "fact.recorded") {
      ++recorded[e.subject];
      continue;
    }
    if (e.type.rfind("intent.", 0) != 0) {
      v.push_back("unexpected event " + render(e) + " on " + e.subject);
      continue;
    }
    auto it = intents.find(e.subject);
    if (it == intents.end()) {
      v.push_back(render(e) + " names an intent nobody created: " + e.subject);
      continue;
    }
    IntentLog& il = it->second;
    il.events.push_back(k);
    Lease& l = leases[e.subject];
    auto bad = [&](const std::string& what) {
      v.push_back("intent " + e.subject + ": " + what + "; its events:" + history(e.subject, k));
    };
    if (il.concluded > 0) bad(render(e) + " after it was concluded");
    if (e.type == "intent.created") {
      if (++il.created > 1) bad("created twice");
      continue;
    }
    if (e.type == "intent.claimed") {
      if (l.held) {
        bad("two live leases: " + render(e) + " while epoch " + std::to_string(l.epoch) + " of " +
            l.holder + " (lease until " + std::to_string(l.end) + ") had not ended");
      }
      if (e.epoch != l.epoch + 1) {
        bad("claim epoch " + std::to_string(e.epoch) + " after epoch " + std::to_string(l.epoch));
      }
      l = Lease{true, e.agent, e.epoch, e.lease};
      continue;
    }
    const bool holder_ok = l.held && e.epoch == l.epoch && e.agent == l.holder;
    if (e.type == "intent.renewed" || e.type == "intent.concluded" || e.type == "intent.failed" ||
        e.type == "intent.dead") {
      if (!holder_ok || e.at >= l.end) {
        bad("stale epoch accepted: " + render(e) + " but the lease is " +
            (l.held ? "epoch " + std::to_string(l.epoch) + " of " + l.holder + " until " +
                          std::to_string(l.end)
                    : std::string("not held (last epoch ") + std::to_string(l.epoch) + ")"));
      }
      if (e.type == "intent.renewed") {
        if (e.lease < l.end) bad("renewal moved the lease end backwards: " + render(e));
        l.end = std::max(l.end, e.lease);
        continue;
      }
      l.held = false;
      if (e.type == "intent.concluded") {
        ++il.concluded;
        il.concluded_at = k;
      }
      if (e.type == "intent.dead") bad("died (max_attempts is 1000): " + render(e));
      continue;
    }
    if (e.type == "intent.released") {
      if (!holder_ok) bad("release of a lease not held: " + render(e));
      l.held = false;
      continue;
    }
    if (e.type == "intent.expired") {
      if (!l.held || e.epoch != l.epoch || e.at < l.end) {
        bad("expiry of a live or absent lease: " + render(e) + " (lease epoch " +
            std::to_string(l.epoch) + " until " + std::to_string(l.end) + ")");
      }
      l.held = false;
      continue;
    }
    bad("unexpected " + render(e));
  }
  std::size_t not_created = 0;
  std::size_t not_concluded = 0;
  std::string examples;
  for (auto& [id, il] : intents) {
    if (il.created != 1) ++not_created;
    if (il.concluded != 1) {
      ++not_concluded;
      if (not_concluded <= 5) {
        examples += "\n    " + id + " concluded " + std::to_string(il.concluded) + " times:";
        for (std::size_t k : il.events) examples += "\n      " + render(log[k]);
      }
    }
    if (il.concluded == 1) {
      const std::string& res = log[il.concluded_at].result;
      if (recorded[res] != 1) {
        v.push_back("intent " + id + ": its result fact " + res + " was recorded " +
                    std::to_string(recorded[res]) + " times");
      }
    }
  }
  if (not_created > 0 || not_concluded > 0) {
    v.push_back(std::to_string(not_created) + " intents not created exactly once and " +
                std::to_string(not_concluded) + " not concluded exactly once (of " +
                std::to_string(intent_count) + "); e.g." + examples);
  }

  // Every acknowledgement is the event it acknowledged.
  std::size_t unmatched = 0;
  for (const Ack& a : out.acks) {
    auto it = intents.find(a.intent);
    if (it == intents.end()) {
      v.push_back(std::string("acknowledged ") + ack_name(a.kind) + " names an unknown intent '" +
                  a.intent + "'");
      continue;
    }
    const char* want = nullptr;
    switch (a.kind) {
      case Ack::kCreate:
        want = "intent.created";
        break;
      case Ack::kClaim:
        want = "intent.claimed";
        break;
      case Ack::kHeartbeat:
        want = "intent.renewed";
        break;
      case Ack::kConclude:
        want = "intent.concluded";
        break;
      case Ack::kFail:
        want = "intent.failed";
        break;
      case Ack::kRelease:
        want = "intent.released";
        break;
    }
    bool found = false;
    for (std::size_t k : it->second.events) {
      const LogEvent& e = log[k];
      if (e.type != want) continue;
      if (a.kind == Ack::kCreate) {
        found = true;
      } else if (e.epoch == a.epoch && e.agent == a.agent) {
        if ((a.kind == Ack::kClaim || a.kind == Ack::kHeartbeat) && e.lease != a.lease) continue;
        if (a.kind == Ack::kConclude && e.result != a.result) continue;
        found = true;
      }
      if (found) break;
    }
    if (!found && ++unmatched <= 20) {
      v.push_back(std::string("acknowledged (2xx) ") + ack_name(a.kind) + " of " + a.intent +
                  " by " + a.agent + " epoch " + std::to_string(a.epoch) +
                  (a.lease != 0 ? " until " + std::to_string(a.lease) : std::string()) +
                  (a.result.empty() ? std::string() : " result " + a.result) + " on node " +
                  std::to_string(a.node) +
                  " is not in the log; its events:" + history(a.intent, log.size()));
    }
  }
  if (unmatched > 20) {
    v.push_back(std::to_string(unmatched) + " acknowledgements are not in the log in all");
  }

  // Facts posted through every node.
  for (const BatchFact& f : out.facts) {
    std::set<std::string> ids;
    for (const std::string& id : f.ids) {
      if (!id.empty()) ids.insert(id);
    }
    if (ids.size() != 1) {
      std::string all;
      for (const std::string& id : f.ids) all += " '" + id + "'";
      v.push_back("batch fact " + std::to_string(f.batch) +
                  " posted through each node got the ids" + all);
      continue;
    }
    if (recorded[*ids.begin()] != 1) {
      v.push_back("batch fact " + std::to_string(f.batch) + " (" + *ids.begin() + ") recorded " +
                  std::to_string(recorded[*ids.begin()]) + " times");
    }
    if (f.created_true > 1) {
      v.push_back("batch fact " + std::to_string(f.batch) + " answered created:true " +
                  std::to_string(f.created_true) + " times");
    }
  }

  // Leases dropped when their node died ended by expiry and were claimed again
  // (or by the dropped request itself, when it had landed before the kill).
  for (const auto& [id, epoch] : out.abandoned_at_kill) {
    auto it = intents.find(id);
    if (it == intents.end()) continue;
    bool ended = false;
    bool expired = false;
    bool reclaimed = false;
    for (std::size_t k : it->second.events) {
      const LogEvent& e = log[k];
      if (e.epoch == epoch && e.type != "intent.claimed" && e.type != "intent.renewed") {
        ended = true;
        expired = e.type == "intent.expired";
      }
      if (e.type == "intent.claimed" && e.epoch == epoch + 1) reclaimed = true;
    }
    if (expired && reclaimed) ++out.abandoned_reclaimed;
    if (!ended) {
      v.push_back("the lease epoch " + std::to_string(epoch) + " on " + id +
                  " dropped at the kill never ended; its events:" + history(id, log.size()));
    }
  }
  return v;
}

std::vector<std::string> check_storm(Cluster& cl, const StormOptions& o, StormOutcome& out) {
  std::vector<std::string> v;
  std::vector<int> live;
  for (int i = 0; i < cl.size(); ++i) {
    if (cl.alive(i)) live.push_back(i);
  }
  if (live.empty()) return {"no node is alive to read the log from"};

  // Every live node's view: the same counts once it caught up.
  std::uint64_t last_seq = 0;
  std::string state0;
  for (int i : live) {
    const std::int64_t start = mono_ms();
    std::string body;
    bool done = false;
    while (!done && mono_ms() - start <= kCatchUpMsMax) {
      HttpResult r = http(cl.port(i), "GET", "/v1/state");
      body = r.body;
      const Json j = r.json();
      const Json* in = j.find("intents");
      done = r.status == 200 && in != nullptr && int_of(*in, "concluded") == o.intents &&
             int_of(*in, "open") == 0 && int_of(*in, "claimed") == 0 &&
             int_of(*in, "deferred") == 0 && int_of(*in, "dead") == 0 &&
             int_of(*in, "cancelled") == 0 && (state0.empty() || body == state0);
      if (!done) sleep_ms(50);
    }
    if (!done) {
      v.push_back("node " + std::to_string(i) + " GET /v1/state: " + clip(body, 600) +
                  " (expected every one of the " + std::to_string(o.intents) +
                  " intents concluded" +
                  (state0.empty() ? std::string(")")
                                  : ", and the same as node " + std::to_string(live[0]) + ": " +
                                        clip(state0, 600) + ")"));
    }
    if (state0.empty()) {
      state0 = body;
      auto j = parse_json(body);
      last_seq = j.ok() ? static_cast<std::uint64_t>(int_of(*j, "last_seq")) : 0;
    }
  }

  // The log, through every live node: the same bytes.
  std::vector<LogEvent> log;
  std::vector<std::string> pages0;
  if (!read_log(cl, live[0], pages0, &log, v)) return v;
  for (std::size_t k = 1; k < live.size(); ++k) {
    std::vector<std::string> pages;
    if (!read_log(cl, live[k], pages, nullptr, v)) continue;
    if (pages != pages0) {
      std::size_t p = 0;
      while (p < pages.size() && p < pages0.size() && pages[p] == pages0[p]) ++p;
      v.push_back("node " + std::to_string(live[k]) + " serves a different event log than node " +
                  std::to_string(live[0]) + " from page " + std::to_string(p) + " (" +
                  std::to_string(pages.size()) + " vs " + std::to_string(pages0.size()) +
                  " pages)");
    }
  }
  std::fprintf(stderr, "[storm] the log holds %zu events\n", log.size());
  if (log.size() != last_seq) {
    v.push_back("GET /v1/state says last_seq " + std::to_string(last_seq) + " but the log holds " +
                std::to_string(log.size()) + " events");
  }

  for (std::string& x : check_log(log, o.intents, out)) v.push_back(std::move(x));

  // Intents read back through every live node show the logged conclusion.
  std::unordered_map<std::string, std::size_t> concluded;  // intent -> its intent.concluded
  for (std::size_t k = 0; k < log.size(); ++k) {
    if (log[k].type == "intent.concluded") concluded[log[k].subject] = k;
  }
  std::mt19937_64 rng(mix(o.seed, 7));
  for (int i : live) {
    HttpConn conn(cl.port(i), kHttpTimeoutMs);
    for (std::size_t s = 0; s < kReadBackSamples; ++s) {
      const std::string id =
          intent_id(static_cast<int>(rng() % static_cast<std::uint64_t>(o.intents)));
      auto ci = concluded.find(id);
      if (ci == concluded.end()) continue;
      const LogEvent& c = log[ci->second];
      HttpResult r = conn.request("GET", "/v1/intents/" + id);
      const Json j = r.json();
      if (r.status != 200 || str_of(j, "state") != "concluded" || str_of(j, "result") != c.result ||
          static_cast<std::uint64_t>(int_of(j, "epoch")) != c.epoch) {
        v.push_back("GET /v1/intents/" + id + " on node " + std::to_string(i) + ": " +
                    std::to_string(r.status) + " " + clip(r.body) + " but the log says " +
                    render(c) + " result " + c.result);
      }
    }
  }

  return v;
}

}  // namespace cairn::testing
