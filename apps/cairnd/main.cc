// cairnd — the cairn server: HTTP/JSON API over the engine and embedded SQLite.
//
//   cairnd [--data DIR] [--store postgres://...] [--node NAME] [--listen HOST:PORT]
//          [--config FILE] [--contract FILE] [--log-level LEVEL]
//
// Flags override the config file; defaults are SQLite in ./cairn-data and
// 127.0.0.1:7400. SIGTERM / SIGINT shut down cleanly (exit 0); SIGHUP
// reloads the contract (docs/governance.md) and the senses (docs/senses.md). CLI11 is
// included here only: it is a heavy header.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "server/config.h"
#include "server/http_server.h"

int main(int argc, char** argv) {
  CLI::App app{"cairnd: the cairn coordination server"};
  std::string data;
  std::string store;
  std::string node;
  std::string listen;
  std::string config_path;
  std::string log_level;
  std::string contract;
  app.add_option("--data", data, "data directory (default ./cairn-data)");
  app.add_option("--store", store,
                 "postgres://... to keep the blackboard in PostgreSQL (default: SQLite in --data)");
  app.add_option("--node", node,
                 "this node's name: several cairnd nodes share the PostgreSQL --store");
  app.add_option("--listen", listen, "listen address HOST:PORT (default 127.0.0.1:7400)");
  app.add_option("--config", config_path, "YAML config file");
  app.add_option("--contract", contract, "governance contract (contract.yaml); reloaded on SIGHUP");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  CLI11_PARSE(app, argc, argv);

  cairn::server::ServerConfig config;
  if (!config_path.empty()) {
    auto loaded = cairn::server::load_config_file(config_path, config);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cairnd: %s\n", loaded.status().to_string().c_str());
      return 2;
    }
    config = std::move(loaded).value();
    config.config_file = config_path;
  }
  if (!data.empty()) config.data_dir = data;
  if (!store.empty()) config.store_url = store;
  if (!node.empty()) config.engine.node = node;
  if (!log_level.empty()) config.log_level = log_level;
  if (!contract.empty()) config.contract_path = contract;
  if (!listen.empty()) {
    cairn::Status s = cairn::server::parse_listen(listen, config.listen_host, config.listen_port);
    if (!s.ok()) {
      std::fprintf(stderr, "cairnd: %s\n", s.to_string().c_str());
      return 2;
    }
  }

  cairn::server::Server server(config);
  auto port = server.start();
  if (!port.ok()) {
    std::fprintf(stderr, "cairnd: %s\n", port.status().to_string().c_str());
    return 1;
  }
  server.handle_signals();
  const bool v6 = config.listen_host.find(':') != std::string::npos;
  std::printf("cairnd listening on http://%s%s%s:%u\n", v6 ? "[" : "", config.listen_host.c_str(),
              v6 ? "]" : "", static_cast<unsigned>(*port));
  std::fflush(stdout);
  cairn::Status s = server.run();
  if (!s.ok()) {
    std::fprintf(stderr, "cairnd: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}
