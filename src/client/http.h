// http.h — a small blocking HTTP/1.1 client on POSIX sockets (shell).
//
// What the cairn clients need and nothing more: `http://host:port[/prefix]`
// URLs (host names through getaddrinfo, IPv4 and IPv6), one keep-alive
// connection reused across requests and re-opened when the server closed it,
// a deadline per request (connect, send and every read are bounded by it),
// Content-Length, chunked and close-delimited response bodies, and a
// Server-Sent Events reader. No TLS: cairnd speaks plain HTTP (put a TLS
// proxy in front of it for remote use).
//
// Errors are Status values, never exceptions:
//   invalid      reason "invalid_url"        — the URL cannot be used
//   unavailable  reason "unreachable"        — name lookup or connect failed
//   unavailable  reason "timeout"            — the deadline passed
//   unavailable  reason "connection_closed"  — the peer closed before a full response
//   unavailable  reason "bad_response"       — the reply is not HTTP/1.x we understand
//   too_large    reason "too_large"          — headers or body over their bound
// Every transport error carries `details.sent`: true when the request may have
// reached the server (so a retry must be safe: a GET, or the same
// Idempotency-Key).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/status.h"

namespace cairn::client {

// Bounds on what the client accepts from a server.
struct HttpLimits {
  std::size_t response_header_bytes_max = 64 * 1024;
  std::size_t response_body_bytes_max = 512u << 20;  // a page of 1,000 facts of up to 1 MiB
  std::size_t sse_event_bytes_max = 8u << 20;        // one SSE event (its data lines)
};

struct Url {
  std::string host;  // without brackets for IPv6 literals
  std::uint16_t port = 80;
  std::string prefix;  // path prefix without a trailing '/', e.g. "" or "/cairn"
  // "host:port" as sent in the Host header (IPv6 in brackets).
  std::string authority() const;
};

// Parses "http://host[:port][/prefix]". https and other schemes are refused.
Result<Url> parse_url(std::string_view text);

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HeaderList headers;  // names lowercased, in arrival order
  std::string body;
  // The first header with this (lowercase) name, or nullptr.
  const std::string* header(std::string_view lower_name) const;
};

// Percent-encodes one path segment (RFC 3986 unreserved characters pass).
std::string encode_path_segment(std::string_view s);
// Percent-encodes a query value.
std::string encode_query_value(std::string_view s);

// One keep-alive connection to one server. Not thread-safe.
class HttpConnection {
 public:
  explicit HttpConnection(Url url, HttpLimits limits = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request and reads its response within `timeout_ms`. `target` is
  // the path and query below the URL's prefix (it must start with '/').
  // A reused connection that the server had already closed is re-opened once
  // and the request re-sent only when nothing of it can have been read
  // (the failure happened while writing, or before any response byte).
  Result<HttpResponse> request(std::string_view method, std::string_view target,
                               const HeaderList& headers, std::string_view body, int timeout_ms);

  void close();
  const Url& url() const { return url_; }

 private:
  friend class SseStream;
  Result<HttpResponse> request_once(std::string_view method, std::string_view target,
                                    const HeaderList& headers, std::string_view body,
                                    std::int64_t deadline_ms, bool& fresh);

  Url url_;
  HttpLimits limits_;
  int fd_ = -1;
  std::string buf_;  // bytes read past the last response
};

struct SseEvent {
  std::string id;     // the last `id:` field seen in this event ("" when none)
  std::string event;  // `event:` field, "message" when absent
  std::string data;   // `data:` lines joined with '\n'
};

// A Server-Sent Events stream (GET with Accept: text/event-stream).
class SseStream {
 public:
  SseStream(Url url, HttpLimits limits = {});
  ~SseStream();
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  // Connects and reads the response head within `timeout_ms`. A non-2xx
  // reply is returned as `response` (with its body) and the stream is not
  // open; a 2xx reply leaves the stream open for `next`.
  Result<HttpResponse> open(std::string_view target, const HeaderList& headers, int timeout_ms);

  // The next event. Ok(true): `out` is set. Ok(false): the server ended the
  // stream. unavailable/timeout: no byte (not even a comment) arrived for
  // `idle_timeout_ms`.
  Result<bool> next(SseEvent& out, int idle_timeout_ms);

  void close();

 private:
  Status fill(std::int64_t deadline_ms, bool& eof);  // reads body bytes into text_
  Url url_;
  HttpLimits limits_;
  int fd_ = -1;
  std::string raw_;   // bytes from the socket not yet decoded
  std::string text_;  // decoded body bytes not yet parsed into events
  bool chunked_ = false;
  bool body_done_ = false;
  std::uint64_t chunk_left_ = 0;  // bytes left in the current chunk
  bool chunk_crlf_ = false;       // a chunk's trailing CRLF is still expected
};

// Milliseconds on a monotonic clock (for deadlines).
std::int64_t monotonic_ms();

}  // namespace cairn::client
