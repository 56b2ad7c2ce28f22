// api.h — the HTTP API v1 without the wire: routing, auth checks, request
// bodies → engine commands, store reads, engine replies → responses (shell;
// runs on the io thread only — it owns the read-only store connection and
// the per-caller rate buckets, with no locks).
//
// plan() decides what a request needs:
//   HttpResponse  answered at once (errors, store reads, /healthz, /metrics)
//   EngineCall    a command for the engine thread; finish() shapes its reply
//   WatchCall     an SSE stream (http_server.cc runs it)
// docs/api.md describes every route.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "engine/engine.h"
#include "senses/runtime.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/contract.h"
#include "server/http_types.h"
#include "server/log_records.h"
#include "server/metrics.h"
#include "store/store.h"

namespace cairn::server {

struct EngineCall {
  engine::Command command;
  std::string caller;
  std::string idempotency_key;
  bool created_201 = false;  // 201 when the reply says "created": true
  // The body is written as RFC 8785 canonical JSON (sorted members), so equal
  // replies are equal bytes (GET /v1/plan).
  bool canonical = false;
};

struct WatchCall {
  std::uint64_t after = 0;  // send events with seq > after
};

// Work that blocks on disk (fsync): run on a worker thread, not the io
// thread; `run` builds the reply there.
struct OffloadCall {
  enum class Worker : std::uint8_t { kLogWriter, kArchiver };
  Worker worker = Worker::kLogWriter;
  std::function<HttpResponse()> run;
};

struct Planned {
  std::string route;  // metrics label: "POST /v1/facts", "GET /v1/intents/{id}", ...
  std::variant<HttpResponse, EngineCall, WatchCall, OffloadCall> action;
};

class Api {
 public:
  Api(const ServerConfig& config, Metrics& metrics, store::Store& reader);

  Planned plan(const HttpRequest& req);
  HttpResponse finish(const EngineCall& call, const Status& status, const Json& body) const;

  // Events with seq > after, at most `limit` (the watch stream's history).
  Result<std::vector<Event>> events_after(std::uint64_t after, std::size_t limit);
  // The last durable event sequence number (0 when none).
  Result<std::uint64_t> last_seq();

  // The contract whose schema gate POST /v1/facts and conclude results pass
  // (null: none). io thread only, like plan().
  void set_contract(std::shared_ptr<const Contract> c) { contract_ = std::move(c); }

  // The observation runtime inside this cairnd (null: none); GET /v1/senses
  // and GET /v1/workflows/runs read its status. io thread only.
  void set_runtime(std::shared_ptr<senses::Runtime> r) { runtime_ = std::move(r); }
  // The log records behind /v1/logs and the archival POST /v1/logs/archive
  // runs (on the archiver thread). Unset: those routes answer 503.
  using ArchiveFn = std::function<Result<LogRecords::ArchiveReport>()>;
  void set_logs(LogRecords* logs, ArchiveFn archive) {
    logs_ = logs;
    archive_ = std::move(archive);
  }

  // Every route the server answers, as "METHOD /path" (docs and spec tests).
  static std::vector<std::string> routes();

 private:
  Result<Principal> authorize(const HttpRequest& req, Scope needed);
  Status rate_check(const std::string& caller);
  Result<Json> parse_body(const HttpRequest& req, bool allow_empty);
  // The creator a write acts as (auth on: the token's name).
  Result<std::string> creator_of(const Principal& p, const Json& body);
  // The agent a lifecycle call acts as (auth on: the token's name).
  Result<std::string> agent_of(const Principal& p, const Json& body);

  // invalid/reserved_kind for the kinds log and log.* (log records are not
  // facts: senses/config.h); forbidden/schema_denied when the contract's
  // schema gate refuses `scope` a fact of `kind` and `content_type`.
  Status schema_gate(const Principal& p, const FactBody& fact) const;

  HttpResponse get_fact(std::string_view id);
  HttpResponse list_facts(const std::string& query);
  HttpResponse list_intents(const std::string& query);
  HttpResponse list_hints(const std::string& query);
  HttpResponse list_events(const std::string& query);
  HttpResponse list_evidence(const std::string& query);
  HttpResponse list_logs(const std::string& query);

  const ServerConfig& config_;
  Metrics& metrics_;
  store::Store& reader_;
  Auth auth_;
  std::shared_ptr<const Contract> contract_;
  std::shared_ptr<senses::Runtime> runtime_;
  LogRecords* logs_ = nullptr;
  ArchiveFn archive_;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace cairn::server
