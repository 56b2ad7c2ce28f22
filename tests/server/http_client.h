// http_client.h — a tiny blocking HTTP/1.1 client for the server tests
// (POSIX sockets, Content-Length bodies, keep-alive) and an SSE reader.
// Deliberately independent of Beast, so the tests check the wire format.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"

namespace cairn::testing {

struct HttpResult {
  int status = 0;                              // 0: the connection failed
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  Json json() const;         // the body parsed (null when it is not JSON)
  std::string code() const;  // error.code, or ""
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One persistent connection.
class HttpConn {
 public:
  explicit HttpConn(std::uint16_t port, int timeout_ms = 40'000);
  ~HttpConn();
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;
  bool ok() const { return fd_ >= 0; }
  HttpResult request(const std::string& method, const std::string& path,
                     const std::string& body = {}, const Headers& headers = {});
  // Sends raw bytes and reads one response (malformed-request tests). Like a
  // careful client, it stops sending when the server answers early (e.g. 413
  // before the whole body was sent).
  HttpResult raw(const std::string& bytes);
  // Sends raw bytes without reading anything.
  bool send(const std::string& bytes);
  // Reads the next response (pipelining: several requests sent at once).
  HttpResult next_response() { return read_response(); }
  // True when the server closed the connection (EOF or reset) with nothing
  // more to read within timeout_ms; false when bytes arrived or it stayed open.
  bool peer_closed(int timeout_ms);
  // True when bytes (or EOF) are ready to read within timeout_ms.
  bool readable(int timeout_ms);

 private:
  HttpResult read_response();
  int fd_ = -1;
  std::string buf_;
};

// One request on a fresh connection.
// Lenient readers for reply bodies (tests that report, not assert): a
// member's string / integer, "" / 0 when absent, null or of another type.
inline std::string str_of(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}
inline std::int64_t int_of(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  if (v == nullptr) return 0;
  auto i = v->int_if();
  return i ? *i : 0;
}
// `s` as a JSON string literal (quotes and escapes), for building bodies.
inline std::string json_str(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

HttpResult http(std::uint16_t port, const std::string& method, const std::string& path,
                const std::string& body = {}, const Headers& headers = {});

struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};

class SseStream {
 public:
  SseStream(std::uint16_t port, const std::string& path, const Headers& headers = {});
  ~SseStream();
  int status() const { return status_; }
  // The next event (comments skipped); false on timeout or close.
  bool next(SseEvent& out, int timeout_ms = 5'000);

 private:
  int fd_ = -1;
  int status_ = 0;
  std::string buf_;
};

}  // namespace cairn::testing
