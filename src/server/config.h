// config.h — cairnd's configuration: listen address, data directory, limits,
// auth tokens (shell). Loaded from YAML (yaml-cpp); command-line flags
// override it (apps/cairnd/main.cc).
//
// Every limit has a name with its unit; docs/server.md lists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "model/json_parse.h"
#include "model/status.h"
#include "senses/config.h"

namespace cairn::server {

// Scopes are ordered: each includes the ones before it.
enum class Scope : std::uint8_t { kRead = 1, kAgent = 2, kAdmin = 3 };
std::string_view scope_name(Scope s);

struct TokenConfig {
  std::string name;        // the caller's name (creator / agent) when it authenticates
  std::string sha256_hex;  // lowercase hex SHA-256 of the bearer token
  Scope scope = Scope::kRead;
};

struct ServerLimits {
  // Request body; a fact's content may be 1 MiB, plus room for the envelope.
  std::size_t body_bytes_max = (1u << 20) + (64u << 10);
  std::size_t header_bytes_max = 16u << 10;
  // An Idempotency-Key: 1..this many bytes of visible ASCII (the engine keeps
  // every key of its window in memory and in the store).
  std::size_t idempotency_key_bytes_max = 255;
  std::size_t connections_max = 10'000;
  // A connection idle (or reading one request) longer than this is closed.
  std::int64_t idle_timeout_ms = 60'000;
  std::int64_t write_timeout_ms = 30'000;
  // After an error reply that closes the connection, what the client is still
  // sending is read and dropped (at most this much, within idle_timeout_ms)
  // so the close does not reset the connection before the reply is read.
  std::size_t linger_bytes_max = 8u << 20;
  // Requests queued for the engine thread; past it: 503 overloaded.
  std::size_t ingress_depth_max = 10'000;
  // Per-caller token bucket (requests/s and burst); 0 disables it.
  double caller_rate_per_s = 2'000;
  double caller_burst = 4'000;
  std::size_t rate_buckets_max = 100'000;
  // Watch (SSE) streams.
  std::size_t watchers_max = 1'000;
  std::size_t watch_buffer_events_max = 4'096;
  std::int64_t watch_heartbeat_ms = 15'000;
  std::size_t watch_history_page = 512;
  // List routes.
  std::size_t list_limit_max = 1'000;
  std::size_t list_limit_default = 100;
  std::size_t list_scan_max = 10'000;  // index entries examined per list call
  // How long shutdown waits for in-flight requests.
  std::int64_t shutdown_grace_ms = 10'000;
  JsonLimits json;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 7400;
  std::string data_dir = "./cairn-data";
  // Empty: embedded SQLite in data_dir/cairn.db. "postgres://..." or
  // "postgresql://...": a PostgreSQL database. Without engine.node (`node:`,
  // --node) one cairnd owns the database (a second is refused); with it,
  // several nodes with distinct names share it (docs/cluster.md).
  std::string store_url;
  std::string log_level = "info";  // trace|debug|info|warn|error|off
  // Shared mode: how long a node waits for the cluster's writer turn before
  // it commits optimistically anyway (docs/cluster.md); 0: never wait.
  std::int64_t writer_turn_wait_ms = 200;
  // The governance contract (docs/governance.md); empty: none. In the config
  // file a relative path is resolved against the file's directory.
  std::string contract_path;
  // The file this configuration was read from (SIGHUP re-reads its senses:,
  // workflows: and reflexes:); empty: none.
  std::string config_file;
  ServerLimits limits;
  engine::EngineConfig engine;
  // The observation runtime (senses:, workflows:, reflexes:; docs/senses.md):
  // when not empty, cairnd runs it beside the API.
  senses::ObserveConfig observe;
  // Log records and their daily archival (logs:; docs/senses.md#logs).
  senses::LogsConfig logs;
  std::vector<TokenConfig> tokens;
};

// "127.0.0.1:7400", "[::1]:7400", "localhost:7400".
Status parse_listen(std::string_view text, std::string& host, std::uint16_t& port);
// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

// Reads a YAML file over `base` (errors in lanes:, default_lane: and plan:
// name the file and line: "PATH:LINE: field problem", details {file, line,
// field}):
//   listen: 127.0.0.1:7400
//   data: ./cairn-data
//   log_level: info
//   store: postgres://...      (empty: SQLite in data)
//   node: n1                   (shared mode on PostgreSQL)
//   contract: contract.yaml    (relative to this file's directory)
//   lanes:                     (present: lane budgets on; docs/server.md)
//     llm/openai: {max_concurrency: 2, max_cost_units: 2, duration_ms: 6000}
//   default_lane: true
//   plan: {first_response_budget_ms: 10000, all_responses_budget_ms: 30000,
//          default_duration_ms: 1000}
//   limits: {body_bytes_max: ..., connections_max: ..., caller_rate_per_s: ..., ...}
//   tokens:
//     - {name: alice, sha256: <64 hex>, scopes: [agent]}
Result<ServerConfig> load_config_file(const std::string& path, ServerConfig base);

// Refuses configurations that cannot work (bad tokens, a non-loopback
// address without tokens, zero limits).
Status validate_config(const ServerConfig& c);

}  // namespace cairn::server
