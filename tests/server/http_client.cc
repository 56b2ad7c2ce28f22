// http_client.cc — see http_client.h. (Not a *_test.cc: linked into the
// server test binary by tests/CMakeLists.txt.)
#include "server/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "model/json_parse.h"

namespace cairn::testing {

namespace {

int connect_to(std::uint16_t port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads more bytes into buf; false on EOF/timeout/error.
bool fill(int fd, std::string& buf) {
  char tmp[16384];
  const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<std::size_t>(n));
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string build(const std::string& method, const std::string& path, const std::string& body,
                  const Headers& headers) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "DELETE") {
    r +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

// Parses "HTTP/1.1 200 OK\r\nname: value\r\n...\r\n\r\n" at the front of buf.
bool parse_head(std::string& buf, int fd, HttpResult& out) {
  std::size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(fd, buf)) return false;
  }
  const std::string head = buf.substr(0, end);
  buf.erase(0, end + 4);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return false;
  out.status = std::atoi(status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line = head.substr(start, line_end - start);
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    out.headers[lower(line.substr(0, colon))] = v;
  }
  return true;
}

}  // namespace

Json HttpResult::json() const {
  auto j = parse_json(body);
  return j.ok() ? j.value() : Json();
}

std::string HttpResult::code() const {
  const Json j = json();
  const Json* e = j.find("error");
  if (e == nullptr) return "";
  const Json* c = e->find("code");
  return c != nullptr && c->is_string() ? c->as_string() : "";
}

HttpConn::HttpConn(std::uint16_t port, int timeout_ms) : fd_(connect_to(port, timeout_ms)) {}
HttpConn::~HttpConn() {
  if (fd_ >= 0) ::close(fd_);
}

HttpResult HttpConn::read_response() {
  HttpResult r;
  if (!parse_head(buf_, fd_, r)) return HttpResult{};
  auto it = r.headers.find("content-length");
  const std::size_t len = it == r.headers.end() ? 0 : std::stoul(it->second);
  while (buf_.size() < len) {
    if (!fill(fd_, buf_)) return HttpResult{};
  }
  r.body = buf_.substr(0, len);
  buf_.erase(0, len);
  return r;
}

HttpResult HttpConn::request(const std::string& method, const std::string& path,
                             const std::string& body, const Headers& headers) {
  if (fd_ < 0 || !send_all(fd_, build(method, path, body, headers))) return HttpResult{};
  return read_response();
}

HttpResult HttpConn::raw(const std::string& bytes) {
  if (fd_ < 0) return HttpResult{};
  std::size_t off = 0;
  while (off < bytes.size()) {
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    if (::poll(&p, 1, 10'000) <= 0) return HttpResult{};
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) break;  // an early answer
    const ssize_t n =
        ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) break;  // the server closed: read whatever it answered
    off += static_cast<std::size_t>(n);
  }
  return read_response();
}

bool HttpConn::send(const std::string& bytes) {
  return fd_ >= 0 && send_all(fd_, bytes);
}

bool HttpConn::readable(int timeout_ms) {
  if (fd_ < 0) return false;
  if (!buf_.empty()) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

bool HttpConn::peer_closed(int timeout_ms) {
  if (fd_ < 0) return true;
  if (!buf_.empty()) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK);
  return n <= 0;
}

HttpResult http(std::uint16_t port, const std::string& method, const std::string& path,
                const std::string& body, const Headers& headers) {
  HttpConn c(port);
  return c.request(method, path, body, headers);
}

SseStream::SseStream(std::uint16_t port, const std::string& path, const Headers& headers)
    : fd_(connect_to(port, 10'000)) {
  if (fd_ < 0 || !send_all(fd_, build("GET", path, "", headers))) return;
  HttpResult r;
  if (parse_head(buf_, fd_, r)) status_ = r.status;
}

SseStream::~SseStream() {
  if (fd_ >= 0) ::close(fd_);
}

bool SseStream::next(SseEvent& out, int timeout_ms) {
  for (;;) {
    const auto end = buf_.find("\n\n");
    if (end != std::string::npos) {
      const std::string block = buf_.substr(0, end);
      buf_.erase(0, end + 2);
      SseEvent e;
      bool any = false;
      std::size_t pos = 0;
      while (pos <= block.size()) {
        auto nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty() || line[0] == ':') continue;
        const auto colon = line.find(':');
        const std::string k = line.substr(0, colon);
        std::string v = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!v.empty() && v[0] == ' ') v.erase(0, 1);
        if (k == "id") e.id = v, any = true;
        if (k == "event") e.event = v, any = true;
        if (k == "data") e.data = v, any = true;
      }
      if (!any) continue;  // a comment block
      out = e;
      return true;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    if (!fill(fd_, buf_)) return false;
  }
}

}  // namespace cairn::testing
