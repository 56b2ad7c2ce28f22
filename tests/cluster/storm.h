// storm.h — several real cairnd processes on one PostgreSQL database, driven
// by hundreds of agent threads over keep-alive HTTP, and the checker that
// replays the global event log afterwards. Shell code (tests only).
//
// The pieces:
//   Cluster      cairnd nodes (`--store postgres://... --node nK`), each with its
//                own data directory and a free loopback port; kill9() one.
//   run_storm()  creator threads create the intents (client-chosen ids, an
//                Idempotency-Key each) while agent threads claim them by
//                long-poll and heartbeat, conclude, fail, release or abandon
//                them; a monitor ends the run when every intent is concluded
//                and injects the fault (kill -9 a node, restart PostgreSQL).
//                Every 2xx the agents saw is recorded as an Ack.
//   check_storm() reads the event log through every live node and checks it
//                against the acknowledgements (see storm.cc for the list).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crash/cairnd_process.h"

namespace cairn::testing {

enum class Fault { kNone, kKillNode, kRestartPostgres };

struct StormOptions {
  int nodes = 3;
  int agents = 200;
  int intents = 20'000;
  int creators = 6;
  int batch_intents = 100;  // intents grounded in one batch fact
  std::int64_t lease_ttl_ms = 5'000;
  int claim_wait_ms = 1'000;
  // Per mille of claimed intents an agent treats so (the rest: conclude at once).
  int heartbeat_pm = 200;  // heartbeat, then conclude
  int fail_pm = 20;        // fail (retryable): back to open after a backoff
  int release_pm = 30;     // release: back to open at once
  int abandon_pm = 5;      // drop the lease silently: it expires
  std::uint64_t seed = 1;
  std::int64_t run_ms_max = 150'000;  // the storm is a failure after this
  Fault fault = Fault::kNone;
  double fault_at_concluded = 0.3;  // inject the fault when this share is concluded
  std::int64_t postgres_down_ms = 3'000;
};

// One acknowledged (2xx) request.
struct Ack {
  enum Kind { kCreate, kClaim, kHeartbeat, kConclude, kFail, kRelease };
  Kind kind = kCreate;
  std::string intent;
  std::string agent;
  std::uint64_t epoch = 0;
  std::int64_t lease = 0;  // claims and heartbeats: lease_expires_at
  std::string result;      // conclude: the result fact id
  int node = 0;
};
const char* ack_name(Ack::Kind k);

// One batch fact posted through every node in turn.
struct BatchFact {
  int batch = 0;
  std::vector<std::string> ids;  // per node it was posted through ("" when never answered)
  int created_true = 0;          // replies with "created": true
};

struct StormOutcome {
  bool finished = false;  // every intent concluded within run_ms_max
  std::int64_t run_ms = 0;
  std::string final_state;  // the last GET /v1/state body
  std::vector<Ack> acks;
  std::vector<BatchFact> facts;
  std::map<std::string, std::uint64_t> replies;  // "POST /v1/claims 200" -> count
  std::uint64_t http_500 = 0;
  std::uint64_t unavailable_503 = 0;  // 503 replies (unavailable, storage_*, outcome_unknown)
  std::uint64_t probe_503 = 0;        // the monitor's probes while PostgreSQL was down
  std::uint64_t lost_race_409 = 0;    // 409 lost_race replies (retried)
  std::uint64_t node_moves = 0;       // agents/creators that moved to another node
  std::vector<std::string> errors;    // unexpected replies, unanswered requests
  int killed_node = -1;
  // Leases the agents of the killed node dropped when their node died.
  std::vector<std::pair<std::string, std::uint64_t>> abandoned_at_kill;
  // Of those, the ones the log shows expired and then claimed again (check_storm).
  std::size_t abandoned_reclaimed = 0;
};

class Cluster {
 public:
  // Starts `nodes` cairnd processes on `store_url` under `dir` (data dirs and logs).
  Cluster(std::string cairnd, std::string store_url, std::string dir, int nodes);
  ~Cluster();
  // "" when every node printed its URL, else what went wrong.
  std::string start();
  int size() const { return static_cast<int>(nodes_.size()); }
  std::uint16_t port(int i) const { return ports_.at(static_cast<std::size_t>(i)); }
  bool alive(int i) const { return nodes_.at(static_cast<std::size_t>(i))->running(); }
  std::string kill9(int i) { return nodes_.at(static_cast<std::size_t>(i))->kill9(); }
  // SIGTERM every live node; "" when all exited 0.
  std::string stop();
  std::string log_path(int i) const;

 private:
  std::string cairnd_;
  std::string store_url_;
  std::string dir_;
  std::vector<std::unique_ptr<CairndProcess>> nodes_;
  std::vector<std::uint16_t> ports_;
};

StormOptions storm_options_from_env(StormOptions base);
std::string intent_id(int n);

StormOutcome run_storm(Cluster& cluster, const StormOptions& o);

// Every violation found, each naming the intent, epochs and events involved.
// One event of the log (GET /v1/events), with the members the checker reads.
struct LogEvent {
  std::uint64_t seq = 0;
  std::string type;
  std::string subject;
  std::string agent;   // data.agent
  std::string result;  // data.result (intent.concluded)
  std::uint64_t epoch = 0;
  std::int64_t lease = 0;  // data.lease_expires_at (intent.claimed, intent.renewed)
  std::int64_t at = 0;
};
std::string render(const LogEvent& e);

// The checks of the log alone against the acknowledgements: the sequence, the
// per-intent lease replay, every ack in the log, the batch facts, the leases
// dropped at a kill (counts out.abandoned_reclaimed). Intents are
// intent_id(0..intent_count-1).
std::vector<std::string> check_log(const std::vector<LogEvent>& log, int intent_count,
                                   StormOutcome& out);

// check_log() on the log read through every live node, plus what the nodes
// serve: the same log bytes, the same state counts, the intents read back.
std::vector<std::string> check_storm(Cluster& cluster, const StormOptions& o, StormOutcome& out);

}  // namespace cairn::testing
