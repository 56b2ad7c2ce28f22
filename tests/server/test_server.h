// test_server.h — a real cairnd (in-process Server on a free loopback port,
// temp data directory) for the server tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "model/json_parse.h"
#include "server/http_client.h"
#include "server/http_server.h"

namespace cairn::testing {

inline std::string make_temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "cairn-server-XXXXXX").string();
  char* d = ::mkdtemp(t.data());
  EXPECT_NE(d, nullptr);
  return t;
}

inline void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Waits (bounded) until `done` holds: a server acts on signals, timers and
// long-polls asynchronously, so a test waits for the effect it checks next.
template <class F>
bool eventually(F done, int timeout_ms = 15'000, int poll_ms = 10) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return done();
}

class TestServer {
 public:
  explicit TestServer(std::string data_dir = make_temp_dir()) : data_dir_(std::move(data_dir)) {
    config.data_dir = data_dir_;
    config.listen_port = 0;
    config.log_level = "warn";
  }
  ~TestServer() { stop(); }
  // Starts (or restarts) the server on the same data directory.
  void start() {
    server_ = std::make_unique<server::Server>(config);
    auto p = server_->start();
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    port = *p;
    thread_ = std::thread([this] {
      Status s = server_->run();
      EXPECT_TRUE(s.ok()) << s.to_string();
    });
  }
  void stop() {
    if (!server_) return;
    server_->request_stop();
    thread_.join();
    server_.reset();
  }
  void remove_data() { std::filesystem::remove_all(data_dir_); }
  const std::string& data_dir() const { return data_dir_; }

  HttpResult get(const std::string& path, const Headers& h = {}) {
    return http(port, "GET", path, "", h);
  }
  HttpResult post(const std::string& path, const std::string& body, const Headers& h = {}) {
    return http(port, "POST", path, body, h);
  }

  server::ServerConfig config;
  std::uint16_t port = 0;

 private:
  std::string data_dir_;
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
};

inline std::string str(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}
inline std::int64_t num(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  return v != nullptr && v->int_if() ? *v->int_if() : -1;
}

}  // namespace cairn::testing
