// http.cc — see http.h. Sockets are non-blocking; every wait is a poll()
// bounded by the request's deadline.
#include "client/http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

namespace cairn::client {

namespace {

// ---- errors ------------------------------------------------------------------------

Status transport_error(std::string reason, std::string message, bool sent) {
  return unavailable(std::move(message), std::move(reason), Json(JsonObject{{"sent", Json(sent)}}));
}

Status timeout_error(bool sent) {
  return transport_error("timeout", "timed out waiting for the server", sent);
}

// ---- small text helpers ---------------------------------------------------------------

char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// True when the comma-separated header value contains `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (lower(trim(value.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view s, std::string_view also_allowed) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (is_unreserved(c) || also_allowed.find(c) != std::string_view::npos) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// ---- sockets -----------------------------------------------------------------------

int remaining_ms(std::int64_t deadline_ms) {
  const std::int64_t left = deadline_ms - monotonic_ms();
  if (left <= 0) return 0;
  return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
}

// Waits until `fd` is ready for `events`; false on timeout.
bool wait_fd(int fd, short events, std::int64_t deadline_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline_ms));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

Result<int> connect_to(const Url& url, std::int64_t deadline_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url.port);
  const int gai = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    return transport_error("unreachable", "cannot resolve " + url.host + ": " + ::gai_strerror(gai),
                           false);
  }
  std::string last_error = "no address";
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    const int s =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    int rc = ::connect(s, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!wait_fd(s, POLLOUT, deadline_ms)) {
        ::close(s);
        ::freeaddrinfo(res);
        return timeout_error(false);
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last_error = std::strerror(errno);
      ::close(s);
      continue;
    }
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fd = s;
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    return transport_error("unreachable",
                           "cannot connect to " + url.authority() + ": " + last_error, false);
  }
  return fd;
}

Status send_all(int fd, std::string_view data, std::int64_t deadline_ms, bool& sent) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      sent = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_fd(fd, POLLOUT, deadline_ms)) return timeout_error(sent);
      continue;
    }
    return transport_error(
        "connection_closed",
        std::string("the connection failed while sending: ") + std::strerror(errno), sent);
  }
  return Status();
}

// Reads what is available into `buf` (waiting up to the deadline). `eof` is
// set when the peer closed its side.
Status read_more(int fd, std::string& buf, std::int64_t deadline_ms, bool& eof) {
  char tmp[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf.append(tmp, static_cast<std::size_t>(n));
      return Status();
    }
    if (n == 0) {
      eof = true;
      return Status();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_fd(fd, POLLIN, deadline_ms)) return timeout_error(true);
      continue;
    }
    return transport_error("connection_closed",
                           std::string("the connection failed: ") + std::strerror(errno), true);
  }
}

Status closed_early() {
  return transport_error("connection_closed", "the server closed the connection before replying",
                         true);
}

// Buffered reads from one socket with a deadline.
struct Reader {
  int fd;
  std::string& buf;
  std::int64_t deadline_ms;

  // Ensures buf holds at least n bytes.
  Status need(std::size_t n) {
    while (buf.size() < n) {
      bool eof = false;
      CAIRN_RETURN_IF_ERROR(read_more(fd, buf, deadline_ms, eof));
      if (eof) return closed_early();
    }
    return Status();
  }

  // Takes one line ending in LF (CR stripped), at most max_bytes long.
  Result<std::string> line(std::size_t max_bytes) {
    std::size_t scanned = 0;
    for (;;) {
      const auto nl = buf.find('\n', scanned);
      if (nl != std::string::npos) {
        std::string out = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (!out.empty() && out.back() == '\r') out.pop_back();
        return out;
      }
      scanned = buf.size();
      if (buf.size() > max_bytes) return too_large("a response line is too long", "too_large");
      bool eof = false;
      CAIRN_RETURN_IF_ERROR(read_more(fd, buf, deadline_ms, eof));
      if (eof) return closed_early();
    }
  }
};

Result<std::uint64_t> parse_chunk_size(std::string_view line) {
  line = trim(line.substr(0, line.find(';')));  // chunk extensions are ignored
  std::uint64_t size = 0;
  auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
  if (line.empty() || ec != std::errc() || p != line.data() + line.size()) {
    return transport_error("bad_response", "malformed chunk size", true);
  }
  return size;
}

struct Head {
  HttpResponse response;
  bool keep_alive = true;
  bool chunked = false;
  bool has_length = false;
  std::uint64_t length = 0;
};

// Reads a status line and headers (skipping 1xx interim responses).
Result<Head> read_head(Reader& r, const HttpLimits& limits) {
  for (;;) {
    Head h;
    std::size_t header_bytes = 0;
    CAIRN_ASSIGN_OR_RETURN(std::string status_line, r.line(limits.response_header_bytes_max));
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.compare(0, 7, "HTTP/1.") != 0 ||
        status_line[8] != ' ') {
      return transport_error("bad_response", "not an HTTP/1.x response", true);
    }
    const bool http10 = status_line[7] == '0';
    int status = 0;
    auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
    if (ec != std::errc() || p != status_line.data() + 12 || status < 100 || status > 599) {
      return transport_error("bad_response", "malformed HTTP status line", true);
    }
    h.response.status = status;
    h.keep_alive = !http10;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(std::string line, r.line(limits.response_header_bytes_max));
      header_bytes += line.size() + 2;
      if (header_bytes > limits.response_header_bytes_max) {
        return too_large("the response headers are too large", "too_large");
      }
      if (line.empty()) break;
      const auto colon = line.find(':');
      if (colon == std::string::npos || colon == 0) {
        return transport_error("bad_response", "malformed response header", true);
      }
      std::string name = lower(std::string_view(line).substr(0, colon));
      std::string value(trim(std::string_view(line).substr(colon + 1)));
      if (name == "connection") {
        if (has_token(value, "close")) h.keep_alive = false;
        if (has_token(value, "keep-alive")) h.keep_alive = true;
      } else if (name == "transfer-encoding") {
        h.chunked = has_token(value, "chunked");
      } else if (name == "content-length") {
        std::uint64_t n = 0;
        auto [q, e2] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || e2 != std::errc() || q != value.data() + value.size()) {
          return transport_error("bad_response", "malformed Content-Length", true);
        }
        h.has_length = true;
        h.length = n;
      }
      h.response.headers.emplace_back(std::move(name), std::move(value));
    }
    if (status >= 100 && status < 200) continue;  // interim (100 Continue): read the next head
    return h;
  }
}

// Reads the body described by `h` into h.response.body. `keep` is cleared when
// the connection cannot carry another request.
Status read_body(Reader& r, Head& h, std::string_view method, const HttpLimits& limits,
                 bool& keep) {
  std::string& body = h.response.body;
  const int status = h.response.status;
  if (method == "HEAD" || status == 204 || status == 304) return Status();
  if (h.chunked) {
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(std::string size_line, r.line(limits.response_header_bytes_max));
      CAIRN_ASSIGN_OR_RETURN(std::uint64_t size, parse_chunk_size(size_line));
      if (size == 0) break;
      if (size > limits.response_body_bytes_max - body.size()) {
        return too_large("the response body is too large", "too_large");
      }
      CAIRN_RETURN_IF_ERROR(r.need(size + 2));
      body.append(r.buf, 0, size);
      if (r.buf.compare(size, 2, "\r\n") != 0) {
        return transport_error("bad_response", "a chunk does not end in CRLF", true);
      }
      r.buf.erase(0, size + 2);
    }
    for (;;) {  // trailers
      CAIRN_ASSIGN_OR_RETURN(std::string trailer, r.line(limits.response_header_bytes_max));
      if (trailer.empty()) break;
    }
    return Status();
  }
  if (h.has_length) {
    if (h.length > limits.response_body_bytes_max) {
      return too_large("the response body is too large", "too_large");
    }
    const auto n = static_cast<std::size_t>(h.length);
    CAIRN_RETURN_IF_ERROR(r.need(n));
    body.assign(r.buf, 0, n);
    r.buf.erase(0, n);
    return Status();
  }
  // Delimited by the connection's close.
  keep = false;
  for (;;) {
    bool eof = false;
    CAIRN_RETURN_IF_ERROR(read_more(r.fd, r.buf, r.deadline_ms, eof));
    if (r.buf.size() > limits.response_body_bytes_max) {
      return too_large("the response body is too large", "too_large");
    }
    if (eof) break;
  }
  body = std::move(r.buf);
  r.buf.clear();
  return Status();
}

std::string build_request(std::string_view method, const Url& url, std::string_view target,
                          const HeaderList& headers, std::string_view body) {
  std::string r;
  r.reserve(256 + body.size());
  r += method;
  r += ' ';
  r += url.prefix;
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += url.authority();
  r += "\r\nUser-Agent: cairn-client\r\n";
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    if (lower(k) == "content-type") has_type = true;
    r += k;
    r += ": ";
    r += v;
    r += "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "DELETE") {
    if (!has_type && !body.empty()) r += "Content-Type: application/json\r\n";
    r += "Content-Length: ";
    r += std::to_string(body.size());
    r += "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

}  // namespace

std::int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Url> parse_url(std::string_view text) {
  auto bad = [&](std::string why) {
    return invalid("invalid URL '" + std::string(text) + "': " + why, "invalid_url");
  };
  std::string_view rest = text;
  const auto scheme_end = rest.find("://");
  if (scheme_end == std::string_view::npos) return bad("expected http://HOST[:PORT]");
  const std::string scheme = lower(rest.substr(0, scheme_end));
  if (scheme != "http") return bad("only http:// is supported (use a TLS proxy for https)");
  rest.remove_prefix(scheme_end + 3);
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) return bad("no query or fragment");
  Url u;
  if (authority.find('@') != std::string_view::npos) return bad("no user info (use --token)");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 literal");
      port_text = after.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
  }
  if (u.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("bad port");
    }
    u.port = static_cast<std::uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.prefix = std::string(path);
  return u;
}

const std::string* HttpResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

std::string encode_path_segment(std::string_view s) {
  return percent_encode(s, "");
}
std::string encode_query_value(std::string_view s) {
  return percent_encode(s, "");
}

// ---- HttpConnection ----------------------------------------------------------------

HttpConnection::HttpConnection(Url url, HttpLimits limits)
    : url_(std::move(url)), limits_(limits) {}

HttpConnection::~HttpConnection() {
  close();
}

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

Result<HttpResponse> HttpConnection::request(std::string_view method, std::string_view target,
                                             const HeaderList& headers, std::string_view body,
                                             int timeout_ms) {
  const std::int64_t deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 1);
  bool fresh = false;
  auto r = request_once(method, target, headers, body, deadline, fresh);
  if (r.ok() || fresh) return r;
  // A kept-alive connection the server had closed meanwhile fails at once,
  // before any response byte: open a new one and send again, but only for
  // requests that are safe to repeat (see http.h).
  const Status& s = r.status();
  const bool stale = s.reason() == "connection_closed";
  bool repeatable = method == "GET" || method == "HEAD";
  for (const auto& [k, v] : headers) {
    if (lower(k) == "idempotency-key" && !v.empty()) repeatable = true;
  }
  if (!stale || !repeatable) return r;
  return request_once(method, target, headers, body, deadline, fresh);
}

Result<HttpResponse> HttpConnection::request_once(std::string_view method, std::string_view target,
                                                  const HeaderList& headers, std::string_view body,
                                                  std::int64_t deadline_ms, bool& fresh) {
  fresh = fd_ < 0;
  if (fd_ < 0) {
    CAIRN_ASSIGN_OR_RETURN(fd_, connect_to(url_, deadline_ms));
    buf_.clear();
  }
  bool sent = false;
  Status s = send_all(fd_, build_request(method, url_, target, headers, body), deadline_ms, sent);
  if (!s.ok()) {
    close();
    return s;
  }
  Reader reader{fd_, buf_, deadline_ms};
  auto head = read_head(reader, limits_);
  if (!head.ok()) {
    close();
    return head.take_status();
  }
  bool keep = head->keep_alive;
  s = read_body(reader, *head, method, limits_, keep);
  if (!s.ok()) {
    close();
    return s;
  }
  if (!keep) close();
  return std::move(head->response);
}

// ---- SseStream ---------------------------------------------------------------------

SseStream::SseStream(Url url, HttpLimits limits) : url_(std::move(url)), limits_(limits) {}

SseStream::~SseStream() {
  close();
}

void SseStream::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  raw_.clear();
  text_.clear();
  body_done_ = false;
  chunk_left_ = 0;
  chunk_crlf_ = false;
}

Result<HttpResponse> SseStream::open(std::string_view target, const HeaderList& headers,
                                     int timeout_ms) {
  close();
  const std::int64_t deadline = monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 1);
  CAIRN_ASSIGN_OR_RETURN(fd_, connect_to(url_, deadline));
  HeaderList all = headers;
  all.emplace_back("Accept", "text/event-stream");
  all.emplace_back("Cache-Control", "no-cache");
  bool sent = false;
  Status s = send_all(fd_, build_request("GET", url_, target, all, ""), deadline, sent);
  if (!s.ok()) {
    close();
    return s;
  }
  Reader reader{fd_, raw_, deadline};
  auto head = read_head(reader, limits_);
  if (!head.ok()) {
    close();
    return head.take_status();
  }
  if (head->response.status < 200 || head->response.status >= 300) {
    bool keep = false;
    s = read_body(reader, *head, "GET", limits_, keep);
    close();
    if (!s.ok()) return s;
    return std::move(head->response);
  }
  chunked_ = head->chunked;
  return std::move(head->response);
}

Status SseStream::fill(std::int64_t deadline_ms, bool& eof) {
  eof = false;
  if (body_done_) {
    eof = true;
    return Status();
  }
  if (!chunked_) {
    bool closed = false;
    if (raw_.empty()) CAIRN_RETURN_IF_ERROR(read_more(fd_, raw_, deadline_ms, closed));
    text_ += raw_;
    raw_.clear();
    if (closed) body_done_ = eof = true;
    return Status();
  }
  Reader r{fd_, raw_, deadline_ms};
  if (chunk_crlf_) {
    CAIRN_RETURN_IF_ERROR(r.need(2));
    if (raw_.compare(0, 2, "\r\n") != 0) {
      return transport_error("bad_response", "a chunk does not end in CRLF", true);
    }
    raw_.erase(0, 2);
    chunk_crlf_ = false;
  }
  if (chunk_left_ == 0) {
    CAIRN_ASSIGN_OR_RETURN(std::string size_line, r.line(limits_.response_header_bytes_max));
    CAIRN_ASSIGN_OR_RETURN(chunk_left_, parse_chunk_size(size_line));
    if (chunk_left_ == 0) {
      body_done_ = eof = true;
      return Status();
    }
  }
  CAIRN_RETURN_IF_ERROR(r.need(1));
  const std::size_t n = std::min<std::uint64_t>(chunk_left_, raw_.size());
  text_.append(raw_, 0, n);
  raw_.erase(0, n);
  chunk_left_ -= n;
  if (chunk_left_ == 0) chunk_crlf_ = true;
  return Status();
}

Result<bool> SseStream::next(SseEvent& out, int idle_timeout_ms) {
  if (fd_ < 0) return false;
  std::int64_t deadline = monotonic_ms() + (idle_timeout_ms > 0 ? idle_timeout_ms : 1);
  SseEvent ev;
  bool has_data = false;
  std::size_t event_bytes = 0;
  for (;;) {
    const auto nl = text_.find('\n');
    if (nl == std::string::npos) {
      if (text_.size() > limits_.sse_event_bytes_max) {
        return too_large("a server-sent event is too large", "too_large");
      }
      bool eof = false;
      CAIRN_RETURN_IF_ERROR(fill(deadline, eof));
      if (eof && text_.find('\n') == std::string::npos) return false;
      continue;
    }
    std::string line = text_.substr(0, nl);
    text_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    event_bytes += line.size();
    if (event_bytes > limits_.sse_event_bytes_max) {
      return too_large("a server-sent event is too large", "too_large");
    }
    if (line.empty()) {
      // The end of a block: an event when it carried data; a comment-only
      // block (a keep-alive ping) still proves the stream is alive.
      deadline = monotonic_ms() + (idle_timeout_ms > 0 ? idle_timeout_ms : 1);
      event_bytes = 0;
      if (has_data || !ev.event.empty()) {
        if (ev.event.empty()) ev.event = "message";
        out = std::move(ev);
        return true;
      }
      ev = SseEvent{};
      continue;
    }
    if (line.front() == ':') continue;  // comment
    const auto colon = line.find(':');
    const std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? std::string() : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    if (field == "data") {
      if (has_data) ev.data += '\n';
      ev.data += value;
      has_data = true;
    } else if (field == "event") {
      ev.event = value;
    } else if (field == "id") {
      ev.id = value;
    }
    // "retry" and unknown fields are ignored.
  }
}

}  // namespace cairn::client
