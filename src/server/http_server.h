// http_server.h — cairnd: the HTTP/1.1 server around the engine (shell).
//
// Threads: one io thread runs every connection as a C++20 coroutine on one
// boost::asio::io_context (Boost.Beast parses and writes HTTP); one engine
// thread (EngineHost) owns the engine and the SQLite write connection.
// Reads of durable records use a read-only SQLite connection owned by the io
// thread. Beast and asio appear only in http_server.cc. See docs/server.md.
#pragma once

#include <cstdint>
#include <memory>

#include "model/status.h"
#include "server/config.h"

namespace cairn::server {

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens (creating) DATA/cairn.db, loads the engine, starts the engine
  // thread and binds the listening socket. Returns the bound port (useful
  // with port 0).
  Result<std::uint16_t> start();
  // Runs the io loop on the calling thread until shutdown has finished: no
  // new connections, in-flight requests answered (bounded by
  // shutdown_grace_ms), the engine's last commit done, the database closed.
  Status run();
  // Also stop on SIGINT / SIGTERM, and reload the contract on SIGHUP (call
  // between start() and run()).
  void handle_signals();
  // Re-reads the configured contract file (what SIGHUP does); callable from
  // any thread. An invalid file is refused (logged, counted) and the old
  // contract stays in force.
  void reload_contract();
  // Begins shutdown; callable from any thread.
  void request_stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::server
