// http_server.cc — the one translation unit that includes Boost.Beast/asio
// (compile time: these headers are heavy). See http_server.h.
#include "server/http_server.h"

// g++ 12 needs <utility> before asio's coroutine support headers.
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "backend/postgres/pg_store.h"
#include "backend/sqlite/sqlite_store.h"
#include "senses/runtime.h"
#include "server/api.h"
#include "server/contract.h"
#include "server/engine_host.h"
#include "server/errors.h"
#include "server/log.h"
#include "server/log_records.h"
#include "server/metrics.h"
#include "server/observe_config.h"
#include "server/worker.h"

namespace cairn::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;

namespace {

constexpr auto kUseAwaitable = asio::use_awaitable;
// The longest an HTTP request waits for the engine: the longest long-poll
// plus a generous margin for a slow commit.
constexpr std::chrono::milliseconds kEngineReplyMax{30'000 + 60'000};
// Pause after a failed accept (e.g. out of file descriptors).
constexpr std::chrono::milliseconds kAcceptRetry{50};
constexpr std::chrono::milliseconds kDrainPoll{20};
// A connection refused for want of room lingers (see Server::Impl::linger)
// at most this long: it is not counted against connections_max.
constexpr std::chrono::milliseconds kRefusedLingerMax{2'000};
// Log appends waiting for the log writer thread; past it: 503 overloaded.
constexpr std::size_t kLogAppendQueueMax = 10'000;
// POST /v1/logs/archive requests waiting for the archiver thread.
constexpr std::size_t kArchiveQueueMax = 16;
// The longest a request waits for a worker thread's reply.
constexpr std::chrono::milliseconds kOffloadReplyMax{120'000};

// A request waiting for its engine reply. The engine thread posts the reply
// to the io thread, which fills it and cancels the timer the coroutine waits
// on; everything here is touched on the io thread only.
// A request waiting for a worker thread (OffloadCall); io thread only.
struct OffloadWaiter {
  explicit OffloadWaiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  HttpResponse response;
  bool done = false;
};

struct Waiter {
  explicit Waiter(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  bool done = false;
  Status status;
  Json body;
};

// One SSE client. Live events are queued here by the fan-out (io thread);
// the client's coroutine writes them and sleeps on `wake` in between.
struct Watcher {
  explicit Watcher(asio::io_context& io) : wake(io) {}
  asio::steady_timer wake;
  bool live = false;              // history sent; the fan-out queues from now on
  std::uint64_t last_queued = 0;  // seq of the newest event queued or sent
  std::uint64_t last_sent = 0;    // seq of the newest event written
  std::deque<std::pair<std::uint64_t, std::shared_ptr<const std::string>>> frames;
  bool overflow = false;
  bool closed = false;
};

// The time limit on reading one request (idle_timeout_ms). Unlike the
// stream's own timeout, which closes the socket, it cancels the pending read,
// so the server can still answer 408. `gen` tells a stale expiry (queued
// before a re-arm or disarm) from the current one.
struct ReadDeadline {
  ReadDeadline(asio::io_context& io, tcp::socket& s) : timer(io), socket(&s) {}
  asio::steady_timer timer;
  tcp::socket* socket;
  std::uint64_t gen = 0;
  bool armed = false;
  bool fired = false;

  static void arm(const std::shared_ptr<ReadDeadline>& d, std::chrono::milliseconds after) {
    d->armed = true;
    d->fired = false;
    const std::uint64_t g = ++d->gen;
    d->timer.expires_after(after);
    d->timer.async_wait([d, g](const beast::error_code& ec) {
      if (ec || !d->armed || d->gen != g) return;
      d->armed = false;
      d->fired = true;
      beast::error_code ignored;
      d->socket->cancel(ignored);
    });
  }
  void disarm() {
    armed = false;
    ++gen;
    timer.cancel();
  }
};

std::string sse_frame(const Event& e) {
  std::string f = "id: " + std::to_string(e.seq) + "\nevent: " + e.type + "\ndata: ";
  append_json(f, event_to_json(e));
  f += "\n\n";
  return f;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServerConfig c)
      : config(std::move(c)), ioc(1), acceptor(ioc), signals(ioc), hup(ioc) {}

  // Destruction order matters: coroutine frames still suspended when the
  // io_context is destroyed run their destructors then, and those touch
  // `metrics` and `watchers` — so both are declared before (outlive) `ioc`,
  // and ~Impl empties the containers that own timers first.
  ~Impl() {
    stop_runtime();
    stop_host();
    watchers.clear();
    waiters.clear();
    offloads.clear();
  }

  ServerConfig config;
  Metrics metrics;
  std::set<std::shared_ptr<Watcher>> watchers;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::signal_set hup;  // SIGHUP: reload the contract
  std::unique_ptr<store::Store> reader;
  std::unique_ptr<Api> api;
  std::unique_ptr<EngineHost> host;
  std::uint16_t port = 0;  // the bound port (the runtime's URL)
  // The observation runtime (docs/senses.md), when senses:, workflows: or
  // reflexes: are configured. It talks to this server over HTTP, so shutdown
  // stops it on its own thread while the io loop still answers
  // (runtime_stopper), and drain() waits for that.
  std::mutex runtime_mu;  // guards `runtime` (io thread, reload and stopper threads)
  std::shared_ptr<senses::Runtime> runtime;
  std::string runtime_token;  // its bearer token when auth is on
  std::thread runtime_stopper;
  std::atomic<bool> runtime_stopped{true};
  // SIGHUP re-reads the config file's senses:, workflows:, reflexes: on this
  // thread (stopping the old runtime waits for its runs to end).
  std::thread runtime_reloader;
  std::atomic<bool> reload_running{false};
  // Log records (<data>/logs.db): appends on log_writer, archival on
  // archiver (at start, every logs.archive_interval_ms, and on demand).
  std::unique_ptr<LogRecords> logs;
  std::unique_ptr<Worker> log_writer;
  std::unique_ptr<Worker> archiver;

  std::unordered_map<engine::RequestId, std::shared_ptr<Waiter>> waiters;
  std::unordered_map<std::uint64_t, std::shared_ptr<OffloadWaiter>> offloads;
  std::uint64_t next_offload = 1;
  engine::RequestId next_id = 1;
  std::size_t inflight = 0;
  bool stopping = false;
  bool host_stopped = false;

  // ---- the contract ----
  // Puts `c` in force: the schema gate at once (io thread), the rules and
  // result checks on the engine thread before its next cycle.
  void use_contract(std::shared_ptr<const Contract> c) {
    metrics.set_contract_rules(static_cast<std::int64_t>(c->rules.size()));
    api->set_contract(c);
    host->set_governance(to_governance(*c));
  }

  static Json contract_fields(const Contract& c) {
    return Json(
        JsonObject{{"file", Json(c.file)},
                   {"sha256", Json(c.sha256)},
                   {"rules", Json(static_cast<std::uint64_t>(c.rules.size()))},
                   {"result_checks", Json(static_cast<std::uint64_t>(c.result_checks.size()))},
                   {"schema", Json(c.schema.has_value())}});
  }

  // SIGHUP (io thread): re-reads the file; a valid one replaces the contract,
  // an invalid one is refused and the old one stays in force.
  void reload_contract() {
    if (stopping) return;
    if (config.contract_path.empty()) {
      log(LogLevel::kWarn, "contract reload: no contract is configured (contract:, --contract)");
      return;
    }
    auto loaded = load_contract_file(config.contract_path);
    if (!loaded.ok()) {
      metrics.record_contract_reload(false);
      log(LogLevel::kError, "contract reload failed; the old contract stays in force",
          Json(JsonObject{{"file", Json(config.contract_path)},
                          {"error", Json(loaded.status().message())},
                          {"details", loaded.status().details()}}));
      return;
    }
    auto c = std::make_shared<const Contract>(std::move(loaded).value());
    metrics.record_contract_reload(true);
    log(LogLevel::kInfo, "contract reloaded", contract_fields(*c));
    use_contract(std::move(c));
  }

  void wait_for_hup() {
    hup.async_wait([this](const beast::error_code& ec, int) {
      if (ec) return;
      reload_contract();
      reload_runtime();
      wait_for_hup();
    });
  }

  // ---- engine thread → io thread ----
  void deliver(engine::RequestId id, Status status, Json body) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return;  // the request gave up (timeout)
    std::shared_ptr<Waiter> w = it->second;
    waiters.erase(it);
    w->status = std::move(status);
    w->body = std::move(body);
    w->done = true;
    w->timer.cancel();
  }

  void fanout(const std::vector<Event>& events) {
    if (watchers.empty() || events.empty()) return;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<const std::string>>> frames;
    frames.reserve(events.size());
    for (const Event& e : events) {
      frames.emplace_back(e.seq, std::make_shared<const std::string>(sse_frame(e)));
    }
    for (const std::shared_ptr<Watcher>& w : watchers) {
      if (!w->live || w->overflow || w->closed) continue;
      for (const auto& f : frames) {
        if (f.first <= w->last_queued) continue;
        w->frames.push_back(f);
        w->last_queued = f.first;
      }
      if (w->frames.size() > config.limits.watch_buffer_events_max) {
        w->overflow = true;
        w->frames.clear();
      }
      w->wake.cancel();
    }
  }

  // ---- writing ----
  awaitable<bool> write_response(beast::tcp_stream& stream, const HttpResponse& r, bool keep,
                                 unsigned version) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "cairnd");
    res.set(http::field::content_type, r.content_type);
    if (r.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(r.retry_after_s));
    if (!r.allow.empty()) res.set(http::field::allow, r.allow);
    // RFC 9110 §11.6.1: a 401 names the scheme the client should use.
    if (r.status == 401) res.set(http::field::www_authenticate, "Bearer realm=\"cairn\"");
    res.keep_alive(keep);
    res.body() = r.body;
    res.prepare_payload();
    stream.expires_after(std::chrono::milliseconds(config.limits.write_timeout_ms));
    beast::error_code ec;
    co_await http::async_write(stream, res, asio::redirect_error(kUseAwaitable, ec));
    co_return !ec;
  }

  awaitable<bool> write_raw(beast::tcp_stream& stream, const std::string& data) {
    stream.expires_after(std::chrono::milliseconds(config.limits.write_timeout_ms));
    beast::error_code ec;
    co_await asio::async_write(stream, asio::buffer(data), asio::redirect_error(kUseAwaitable, ec));
    co_return !ec;
  }

  // ---- engine calls ----
  // A long-poll's client that closes its connection (or resets it) while the
  // request waits for work: tell the engine, so the request does not take
  // work nobody will do. Bytes of a pipelined next request end the watch.
  void watch_for_hangup(beast::tcp_stream& stream, engine::RequestId id,
                        const std::shared_ptr<Waiter>& w) {
    tcp::socket& sock = stream.socket();
    sock.async_wait(tcp::socket::wait_read, [this, &sock, id, w](const beast::error_code& ec) {
      if (ec || w->done) return;
      char c;
      const ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        host->abandon(id);
      }
    });
  }

  awaitable<HttpResponse> call_engine(const EngineCall& call, beast::tcp_stream* stream) {
    const engine::RequestId id = next_id++;
    auto w = std::make_shared<Waiter>(ioc);
    waiters.emplace(id, w);
    Status s = host->submit(engine::Request{id, call.caller, call.idempotency_key, call.command});
    if (!s.ok()) {
      waiters.erase(id);
      co_return error_response(s);
    }
    if (const auto* cn = std::get_if<engine::ClaimNext>(&call.command);
        cn != nullptr && cn->wait_ms > 0 && stream != nullptr) {
      watch_for_hangup(*stream, id, w);
    }
    ++inflight;
    w->timer.expires_after(kEngineReplyMax);
    while (!w->done) {
      beast::error_code ec;
      co_await w->timer.async_wait(asio::redirect_error(kUseAwaitable, ec));
      if (!ec) break;  // expired
    }
    --inflight;
    if (stream != nullptr) {
      beast::error_code ignored;
      stream->socket().cancel(ignored);  // ends a hang-up watch, if one is pending
    }
    if (!w->done) {
      waiters.erase(id);
      co_return error_response(
          outcome_unknown("the engine did not answer in time; read back or retry with the same "
                          "Idempotency-Key",
                          "outcome_unknown"));
    }
    co_return api->finish(call, w->status, w->body);
  }

  // ---- worker threads ----
  awaitable<HttpResponse> offload(OffloadCall call) {
    Worker* worker =
        call.worker == OffloadCall::Worker::kArchiver ? archiver.get() : log_writer.get();
    const std::uint64_t id = next_offload++;
    auto w = std::make_shared<OffloadWaiter>(ioc);
    offloads.emplace(id, w);
    const bool queued = worker != nullptr && worker->post([this, id, run = std::move(call.run)]() {
      HttpResponse r = run();
      asio::post(ioc, [this, id, r = std::move(r)]() mutable {
        auto it = offloads.find(id);
        if (it == offloads.end()) return;  // the request gave up
        it->second->response = std::move(r);
        it->second->done = true;
        it->second->timer.cancel();
        offloads.erase(it);
      });
    });
    if (!queued) {
      offloads.erase(id);
      co_return error_response(unavailable("too many log requests are queued", "overloaded"));
    }
    ++inflight;
    w->timer.expires_after(kOffloadReplyMax);
    while (!w->done) {
      beast::error_code ec;
      co_await w->timer.async_wait(asio::redirect_error(kUseAwaitable, ec));
      if (!ec) break;  // expired
    }
    --inflight;
    if (!w->done) {
      offloads.erase(id);
      co_return error_response(outcome_unknown(
          "the log worker did not answer in time; read back to see whether it was done",
          "outcome_unknown"));
    }
    co_return std::move(w->response);
  }

  // Archival as configured, now (the archiver thread).
  Result<LogRecords::ArchiveReport> run_archival() {
    const std::string dir = (std::filesystem::path(config.data_dir) / "archive" / "logs").string();
    auto r = logs->archive(wall_ms(), config.logs.retention_days, dir);
    if (!r.ok()) {
      log(LogLevel::kError, "log archival failed",
          Json(JsonObject{{"error", Json(r.status().to_string())}}));
      return r;
    }
    metrics.log_archived_days.fetch_add(r->days.size(), std::memory_order_relaxed);
    if (!r->days.empty()) {
      JsonArray days;
      for (const std::string& d : r->days) days.emplace_back(d);
      log(LogLevel::kInfo, "log records archived",
          Json(JsonObject{{"days", Json(std::move(days))}, {"records", Json(r->records)}}));
    }
    return r;
  }

  // ---- watch (SSE) ----
  awaitable<void> watch(beast::tcp_stream& stream, WatchCall call, unsigned version) {
    if (watchers.size() >= config.limits.watchers_max) {
      co_await write_response(stream,
                              error_response(unavailable("too many watch streams", "overloaded")),
                              false, version);
      co_return;
    }
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::server, "cairnd");
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(false);  // the body runs until the connection closes
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(std::chrono::milliseconds(config.limits.write_timeout_ms));
    beast::error_code ec;
    co_await http::async_write_header(stream, sr, asio::redirect_error(kUseAwaitable, ec));
    if (ec) co_return;

    auto w = std::make_shared<Watcher>(ioc);
    watchers.insert(w);
    ++metrics.watchers;
    struct Unregister {
      Impl* self;
      std::shared_ptr<Watcher> w;
      ~Unregister() {
        self->watchers.erase(w);
        --self->metrics.watchers;
      }
    } unregister{this, w};

    // History from the store, then live: the switch happens in the same
    // handler as the read that found nothing newer, so no fan-out can slip
    // between them (the fan-out only carries events that are already
    // durable, hence visible to the reader).
    std::uint64_t cursor = call.after;
    bool ok = co_await write_raw(stream, ": cairn watch after " + std::to_string(cursor) + "\n\n");
    while (ok && !w->closed) {
      auto evs = api->events_after(cursor, config.limits.watch_history_page);
      if (!evs.ok()) {
        log(LogLevel::kWarn, "watch history read failed",
            Json(JsonObject{{"error", Json(evs.status().to_string())}}));
        co_return;
      }
      if (evs->empty()) break;
      std::string chunk;
      for (const Event& e : *evs) {
        chunk += sse_frame(e);
        cursor = e.seq;
      }
      ok = co_await write_raw(stream, chunk);
      w->last_sent = cursor;
    }
    if (!ok) co_return;
    w->live = true;
    w->last_queued = cursor;
    w->last_sent = cursor;

    while (!w->closed) {
      if (w->overflow) {
        ++metrics.watch_overflows;
        std::string f = "event: overflow\ndata: ";
        append_json(f, Json(JsonObject{{"resume_after", Json(w->last_sent)}}));
        f += "\n\n";
        co_await write_raw(stream, f);
        break;
      }
      if (!w->frames.empty()) {
        std::string chunk;
        std::uint64_t last = w->last_sent;
        for (const auto& [seq, text] : w->frames) {
          chunk += *text;
          last = seq;
        }
        w->frames.clear();
        if (!co_await write_raw(stream, chunk)) break;
        w->last_sent = last;
        continue;
      }
      w->wake.expires_after(std::chrono::milliseconds(config.limits.watch_heartbeat_ms));
      beast::error_code wec;
      co_await w->wake.async_wait(asio::redirect_error(kUseAwaitable, wec));
      if (!wec && w->frames.empty() && !w->overflow && !w->closed) {
        if (!co_await write_raw(stream, ": ping\n\n")) break;
      }
    }
  }

  // Header checks Beast leaves to the server (RFC 9112): an HTTP/1.1 request
  // has exactly one Host; a Transfer-Encoding must end in chunked, otherwise
  // the body's end is unknown and the bytes after the headers could be taken
  // for another request.
  static Status framing_problem(const http::request_parser<http::string_body>& parser) {
    const auto& h = parser.get();
    const std::size_t hosts = h.count(http::field::host);
    if (hosts > 1 || (hosts == 0 && h.version() >= 11)) {
      return invalid("an HTTP/1.1 request needs exactly one Host header", "bad_request",
                     Json(JsonObject{{"field", Json("Host")}}));
    }
    if (h.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      return invalid("a request's Transfer-Encoding must end in chunked", "bad_request",
                     Json(JsonObject{{"field", Json("Transfer-Encoding")}}));
    }
    return Status();
  }

  // Before closing a connection on an error reply (RFC 9112 §9.6): stop
  // sending, then read and drop what the client is still sending (up to
  // linger_bytes_max, for at most `within`, default idle_timeout_ms), so the
  // close does not reset the connection and destroy the reply before the
  // client reads it.
  awaitable<void> linger(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                         std::chrono::milliseconds within = std::chrono::milliseconds(0)) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    buffer.clear();
    if (within.count() <= 0) within = std::chrono::milliseconds(config.limits.idle_timeout_ms);
    stream.expires_after(within);
    std::size_t dropped = 0;
    char sink[16 << 10];
    while (!ec && dropped < config.limits.linger_bytes_max) {
      const std::size_t n = co_await stream.async_read_some(
          asio::buffer(sink), asio::redirect_error(kUseAwaitable, ec));
      dropped += n;
    }
  }

  // ---- one connection ----
  awaitable<void> session(tcp::socket socket) {
    ++metrics.connections;
    struct Count {
      Metrics& m;
      ~Count() { --m.connections; }
    } count{metrics};
    beast::tcp_stream stream(std::move(socket));
    auto deadline = std::make_shared<ReadDeadline>(ioc, stream.socket());
    struct Disarm {
      ReadDeadline& d;
      ~Disarm() { d.disarm(); }
    } disarm{*deadline};
    try {
      beast::flat_buffer buffer;
      for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(config.limits.header_bytes_max));
        parser.body_limit(config.limits.body_bytes_max);
        // One deadline for the whole request (head and body): trickling bytes
        // does not extend it.
        stream.expires_never();
        ReadDeadline::arm(deadline, std::chrono::milliseconds(config.limits.idle_timeout_ms));
        beast::error_code ec;
        co_await http::async_read_header(stream, buffer, parser,
                                         asio::redirect_error(kUseAwaitable, ec));
        if (!ec) {
          if (Status bad = framing_problem(parser); !bad.ok()) {
            HttpResponse r = error_response(bad);
            metrics.record_request("invalid", r.status, 0);
            co_await write_response(stream, r, false, 11);
            co_await linger(stream, buffer);
            break;
          }
        }
        if (!ec && parser.get()[http::field::expect] == "100-continue" && !parser.is_done()) {
          http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
          co_await http::async_write(stream, cont, asio::redirect_error(kUseAwaitable, ec));
        }
        if (!ec && !parser.is_done()) {
          co_await http::async_read(stream, buffer, parser,
                                    asio::redirect_error(kUseAwaitable, ec));
        }
        deadline->disarm();
        if (deadline->fired) ec = beast::error::timeout;
        if (ec == beast::error::timeout && (parser.got_some() || buffer.size() > 0)) {
          // A request was started but not finished within idle_timeout_ms
          // (a truncated body, a trickled header): say so, then close.
          HttpResponse r = error_response(
              invalid("the request was not received completely within " +
                          std::to_string(config.limits.idle_timeout_ms) + " ms",
                      "request_timeout",
                      Json(JsonObject{{"limit", Json("idle_timeout_ms")},
                                      {"max", Json(config.limits.idle_timeout_ms)}})));
          metrics.record_request("invalid", r.status, 0);
          co_await write_response(stream, r, false, 11);
          break;
        }
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::eof) {
          break;
        }
        if (ec) {
          Status s;
          if (ec == http::error::body_limit) {
            s = too_large(
                "the request body is larger than " + std::to_string(config.limits.body_bytes_max) +
                    " bytes",
                "too_large",
                Json(JsonObject{
                    {"limit", Json("body_bytes_max")},
                    {"max", Json(static_cast<std::uint64_t>(config.limits.body_bytes_max))}}));
          } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            s = too_large(
                "the request line and headers are larger than " +
                    std::to_string(config.limits.header_bytes_max) + " bytes",
                "too_large",
                Json(JsonObject{
                    {"limit", Json("header_bytes_max")},
                    {"max", Json(static_cast<std::uint64_t>(config.limits.header_bytes_max))}}));
          } else {
            s = invalid("malformed HTTP request: " + ec.message(), "bad_request");
          }
          HttpResponse r = error_response(s);
          metrics.record_request("invalid", r.status, 0);
          co_await write_response(stream, r, false, 11);
          co_await linger(stream, buffer);
          break;
        }
        http::request<http::string_body>& req = parser.get();
        const auto t0 = std::chrono::steady_clock::now();
        HttpRequest hr;
        hr.method = std::string(req.method_string());
        hr.target = std::string(req.target());
        hr.body = std::move(req.body());
        hr.content_type = std::string(req[http::field::content_type]);
        hr.authorization = std::string(req[http::field::authorization]);
        hr.idempotency_key = std::string(req["Idempotency-Key"]);
        hr.last_event_id = std::string(req["Last-Event-ID"]);
        Planned p = api->plan(hr);
        if (auto* wc = std::get_if<WatchCall>(&p.action)) {
          metrics.record_request(p.route, 200, 0);
          co_await watch(stream, *wc, req.version());
          break;
        }
        HttpResponse resp;
        if (auto* r = std::get_if<HttpResponse>(&p.action)) {
          resp = std::move(*r);
        } else if (auto* oc = std::get_if<OffloadCall>(&p.action)) {
          resp = co_await offload(std::move(*oc));
        } else {
          resp = co_await call_engine(std::get<EngineCall>(p.action), &stream);
        }
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        metrics.record_request(p.route, resp.status, secs);
        const bool keep = req.keep_alive() && !stopping;
        if (!co_await write_response(stream, resp, keep, req.version())) break;
        if (!keep) break;
      }
    } catch (const std::exception& e) {
      log(LogLevel::kError, "connection failed", Json(JsonObject{{"error", Json(e.what())}}));
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  awaitable<void> refuse(tcp::socket socket) {
    try {
      beast::tcp_stream stream(std::move(socket));
      if (co_await write_response(stream,
                                  error_response(unavailable("too many connections", "overloaded")),
                                  false, 11)) {
        beast::flat_buffer buffer;
        co_await linger(stream, buffer, kRefusedLingerMax);
      }
    } catch (const std::exception&) {
    }
  }

  awaitable<void> accept_loop() {
    try {
      while (!stopping) {
        beast::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(kUseAwaitable, ec));
        if (stopping) break;
        if (ec) {
          if (ec == asio::error::operation_aborted) break;
          asio::steady_timer t(ioc, kAcceptRetry);
          co_await t.async_wait(asio::redirect_error(kUseAwaitable, ec));
          continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        if (static_cast<std::size_t>(metrics.connections.load()) >= config.limits.connections_max) {
          ++metrics.connections_refused;
          asio::co_spawn(ioc, refuse(std::move(socket)), asio::detached);
          continue;
        }
        asio::co_spawn(ioc, session(std::move(socket)), asio::detached);
      }
    } catch (const std::exception& e) {
      log(LogLevel::kError, "accept loop failed", Json(JsonObject{{"error", Json(e.what())}}));
    }
  }

  // ---- shutdown ----
  void begin_shutdown() {
    if (stopping) return;
    stopping = true;
    log(LogLevel::kInfo, "shutting down",
        Json(JsonObject{{"inflight", Json(static_cast<std::uint64_t>(inflight))}}));
    beast::error_code ec;
    acceptor.close(ec);
    hup.cancel(ec);
    for (const std::shared_ptr<Watcher>& w : watchers) {
      w->closed = true;
      w->wake.cancel();
    }
    if (!runtime_stopper.joinable() && (runtime || runtime_reloader.joinable())) {
      runtime_stopped = false;
      runtime_stopper = std::thread([this] {
        if (runtime_reloader.joinable()) runtime_reloader.join();
        std::shared_ptr<senses::Runtime> rt;
        {
          std::lock_guard lk(runtime_mu);
          rt = runtime;
        }
        if (rt) rt->stop();
        runtime_stopped = true;
      });
    }
    asio::co_spawn(ioc, drain(), asio::detached);
  }

  // Stops the runtime and waits for it (any thread but the io thread while
  // the io loop runs: the runtime's last requests need it).
  void stop_runtime() {
    if (runtime_stopper.joinable()) runtime_stopper.join();
    if (runtime_reloader.joinable()) runtime_reloader.join();
    std::lock_guard lk(runtime_mu);
    if (runtime) runtime->stop();
    runtime_stopped = true;
  }

  // SIGHUP (io thread): the config file's senses:, workflows: and reflexes:
  // are read again; a valid file replaces the runtime (the old one stops
  // first: running senses end like a timeout), an invalid one is logged with
  // its file:line and the running runtime stays.
  void reload_runtime() {
    if (stopping || config.config_file.empty()) return;
    if (reload_running) {
      log(LogLevel::kWarn, "senses reload: the previous reload is still running; ignored");
      return;
    }
    if (runtime_reloader.joinable()) runtime_reloader.join();
    reload_running = true;
    runtime_reloader = std::thread([this] {
      auto loaded = load_observe_file(config.config_file);
      if (!loaded.ok()) {
        log(LogLevel::kError, "senses reload refused; the running configuration stays",
            Json(JsonObject{{"file", Json(config.config_file)},
                            {"error", Json(loaded.status().message())},
                            {"details", loaded.status().details()}}));
        reload_running = false;
        return;
      }
      std::shared_ptr<senses::Runtime> next;
      {
        std::lock_guard lk(runtime_mu);
        if (loaded->first == config.observe) {
          // Nothing the runtime runs changed (e.g. a SIGHUP for the
          // contract): running senses go on undisturbed.
          log(LogLevel::kInfo, "senses reload: unchanged",
              Json(JsonObject{{"file", Json(config.config_file)}}));
          reload_running = false;
          return;
        }
        if (runtime) runtime->stop();
        config.observe = loaded->first;
        if (!config.observe.empty() && port != 0) {
          if (Status st = start_runtime_locked(port, true); !st.ok()) {
            log(LogLevel::kError, "senses reload: the runtime did not start",
                Json(JsonObject{{"error", Json(st.message())}}));
          }
        } else {
          runtime.reset();
        }
        next = runtime;
        runtime_stopped = !runtime;
      }
      const Json fields = JsonObject{
          {"file", Json(config.config_file)},
          {"senses", Json(static_cast<std::uint64_t>(loaded->first.senses.size()))},
          {"workflows", Json(static_cast<std::uint64_t>(loaded->first.workflows.size()))},
          {"reflexes", Json(static_cast<std::uint64_t>(loaded->first.reflexes.size()))}};
      asio::post(ioc, [this, next, fields] {
        api->set_runtime(next);
        log(LogLevel::kInfo, "senses reloaded", fields);
      });
      reload_running = false;
    });
  }

  awaitable<void> drain() {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(config.limits.shutdown_grace_ms);
    asio::steady_timer t(ioc);
    while ((inflight > 0 || !runtime_stopped) && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(kDrainPoll);
      beast::error_code ec;
      co_await t.async_wait(asio::redirect_error(kUseAwaitable, ec));
    }
    // Give the last responses a moment to be written.
    t.expires_after(kDrainPoll);
    beast::error_code ec;
    co_await t.async_wait(asio::redirect_error(kUseAwaitable, ec));
    stop_host();
    ioc.stop();
  }

  // Starts the observation runtime against this server's own listener.
  Status start_runtime(std::uint16_t bound) {
    std::lock_guard lk(runtime_mu);
    port = bound;
    CAIRN_RETURN_IF_ERROR(start_runtime_locked(bound, false));
    api->set_runtime(runtime);
    return Status();
  }
  Status start_runtime_locked(std::uint16_t port, bool io_running) {
    std::string host = config.listen_host;
    if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    senses::RuntimeOptions o;
    o.data_dir = config.data_dir;
    o.api.url = "http://" + host + ":" + std::to_string(port);
    o.api.token = runtime_token;
    o.api.timeout_ms = 10'000;
    // At start the io loop does not run yet, so a first cursor comes from the
    // store (the api's reader, not yet used by any other thread); a reload
    // (io loop running) lets the runtime ask over HTTP.
    if (!io_running) {
      if (auto last = api->last_seq(); last.ok()) o.initial_cursor = *last;
    }
    o.local_log = [](std::string_view level, std::string_view message) {
      log(level == "error" ? LogLevel::kError : LogLevel::kWarn, message);
    };
    runtime = std::make_shared<senses::Runtime>(config.observe, std::move(o));
    if (Status st = runtime->start(); !st.ok()) {
      runtime.reset();
      return st;
    }
    runtime_stopped = false;
    log(LogLevel::kInfo, "observation runtime started",
        Json(JsonObject{
            {"senses", Json(static_cast<std::uint64_t>(config.observe.senses.size()))},
            {"workflows", Json(static_cast<std::uint64_t>(config.observe.workflows.size()))},
            {"reflexes", Json(static_cast<std::uint64_t>(config.observe.reflexes.size()))}}));
    return Status();
  }

  void stop_host() {
    // The log workers finish what is queued (an archival in progress
    // finishes its day).
    if (log_writer) log_writer->stop();
    if (archiver) archiver->stop();
    if (host_stopped || !host) return;
    host->stop();  // the engine finishes its commits; the database closes
    host_stopped = true;
  }
};

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() {
  if (impl_) impl_->stop_host();
}

Result<std::uint16_t> Server::start() {
  Impl& s = *impl_;
  init_logging(s.config.log_level);
  CAIRN_RETURN_IF_ERROR(validate_config(s.config));
  // An invalid contract refuses the start (its error names file:line).
  std::shared_ptr<const Contract> contract;
  if (!s.config.contract_path.empty()) {
    auto loaded = load_contract_file(s.config.contract_path);
    if (!loaded.ok()) return loaded.take_status();
    contract = std::make_shared<const Contract>(std::move(loaded).value());
    log(LogLevel::kInfo, "contract loaded", Impl::contract_fields(*contract));
  }
  std::error_code fec;
  std::filesystem::create_directories(s.config.data_dir, fec);
  if (fec) {
    return unavailable("cannot create data directory " + s.config.data_dir + ": " + fec.message(),
                       "data_dir");
  }
  std::unique_ptr<store::Store> writer;
  std::optional<EngineHost::Shared> shared;
  if (s.config.store_url.empty()) {
    const std::string path = (std::filesystem::path(s.config.data_dir) / "cairn.db").string();
    auto w = backend::SqliteStore::open(path);
    if (!w.ok()) return w.take_status();
    auto r = backend::SqliteStore::open_reader(path);
    if (!r.ok()) return r.take_status();
    writer = std::move(w).value();
    s.reader = std::move(r).value();
  } else if (s.config.engine.node.empty()) {
    // The engine's writer owns the database (one cairnd per database); the
    // list routes read through a second, plain store with its own pool.
    backend::PgOptions owner;
    owner.exclusive_owner = true;
    owner.pool_size = 1;
    auto w = backend::PgStore::open(s.config.store_url, {}, owner);
    if (!w.ok()) return w.take_status();
    auto r = backend::PgStore::open(s.config.store_url, {}, backend::PgOptions{});
    if (!r.ok()) return r.take_status();
    writer = std::move(w).value();
    s.reader = std::move(r).value();
  } else {
    // Shared mode: this node is one of several on the database; its commits
    // notify the others, it listens for theirs and takes the database's time.
    backend::PgOptions node;
    node.shared_node = s.config.engine.node;
    node.notify_channel = backend::pg_notify_channel("");
    node.pool_size = 2;  // commits and catch-up reads; the clock
    auto w = backend::PgStore::open(s.config.store_url, {}, node);
    if (!w.ok()) return w.take_status();
    auto r = backend::PgStore::open(s.config.store_url, {}, backend::PgOptions{});
    if (!r.ok()) return r.take_status();
    backend::PgStore* pg = w->get();
    shared = EngineHost::Shared{s.config.store_url,
                                node.notify_channel,
                                [pg] { return pg->server_time_ms(); },
                                1'000,
                                [pg](int wait_ms) { return pg->begin_writer_turn(wait_ms); },
                                [pg] { pg->end_writer_turn(); },
                                s.config.writer_turn_wait_ms};
    writer = std::move(w).value();
    s.reader = std::move(r).value();
  }
  if (!s.config.tokens.empty()) {
    // The runtime inside cairnd (now, or after a SIGHUP adds senses)
    // authenticates like any agent, with a token made for this process's
    // lifetime and never written anywhere.
    std::random_device rd;
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 64; ++i) s.runtime_token += kHex[rd() & 15];
    s.config.tokens.push_back(
        TokenConfig{"senses", to_hex(sha256(s.runtime_token)), Scope::kAgent});
  }
  s.api = std::make_unique<Api>(s.config, s.metrics, *s.reader);
  // Log records live in this node's data directory (also with PostgreSQL).
  if (s.config.logs.retention_days < 0 ||
      s.config.logs.retention_days > LogLimits::kRetentionDaysMax ||
      s.config.logs.archive_interval_ms < 0) {
    return invalid("logs: retention_days must be within 0.." +
                       std::to_string(LogLimits::kRetentionDaysMax) +
                       " and archive_interval a duration ≥ 0",
                   "invalid_config");
  }
  {
    auto l = LogRecords::open((std::filesystem::path(s.config.data_dir) / "logs.db").string());
    if (!l.ok()) return l.take_status();
    s.logs = std::move(l).value();
  }
  s.log_writer = std::make_unique<Worker>(kLogAppendQueueMax);
  {
    Impl* self = &s;
    s.archiver = std::make_unique<Worker>(
        kArchiveQueueMax, [self] { self->run_archival().status().ignore(); },
        s.config.logs.archive_interval_ms);
    s.api->set_logs(s.logs.get(), [self] { return self->run_archival(); });
  }
  s.log_writer->start();
  s.archiver->start();
  if (contract) {
    s.config.engine.governance = to_governance(*contract);
    s.api->set_contract(contract);
    s.metrics.set_contract_rules(static_cast<std::int64_t>(contract->rules.size()));
  }
  s.host =
      std::make_unique<EngineHost>(s.config.engine, std::move(writer),
                                   s.config.limits.ingress_depth_max, s.metrics, std::move(shared));
  Impl* self = &s;
  CAIRN_RETURN_IF_ERROR(s.host->start(
      [self](engine::RequestId id, Status st, Json body) {
        asio::post(self->ioc, [self, id, st = std::move(st), body = std::move(body)]() mutable {
          self->deliver(id, std::move(st), std::move(body));
        });
      },
      [self](std::vector<Event> events) {
        asio::post(self->ioc, [self, events = std::move(events)]() { self->fanout(events); });
      }));

  try {
    std::string host = s.config.listen_host;
    if (host == "localhost") host = "127.0.0.1";
    const tcp::endpoint ep(asio::ip::make_address(host), s.config.listen_port);
    s.acceptor.open(ep.protocol());
    s.acceptor.set_option(asio::socket_base::reuse_address(true));
    s.acceptor.bind(ep);
    s.acceptor.listen(asio::socket_base::max_listen_connections);
    const std::uint16_t port = s.acceptor.local_endpoint().port();
    log(LogLevel::kInfo, "started",
        Json(JsonObject{{"data", Json(s.config.data_dir)},
                        {"listen", Json(s.config.listen_host + ":" + std::to_string(port))},
                        {"auth", Json(!s.config.tokens.empty())},
                        {"started_at", Json(wall_ms())}}));
    s.port = port;
    if (!s.config.observe.empty()) {
      if (Status rs = s.start_runtime(port); !rs.ok()) {
        s.stop_runtime();
        s.stop_host();
        return rs;
      }
    }
    return port;
  } catch (const std::exception& e) {
    s.stop_host();
    return unavailable("cannot listen on " + s.config.listen_host + ":" +
                           std::to_string(s.config.listen_port) + ": " + e.what(),
                       "listen_failed");
  }
}

void Server::handle_signals() {
  Impl& s = *impl_;
  s.signals.add(SIGINT);
  s.signals.add(SIGTERM);
  s.signals.async_wait([&s](const beast::error_code& ec, int signo) {
    if (ec) return;
    log(LogLevel::kInfo, "signal", Json(JsonObject{{"signal", Json(signo)}}));
    s.begin_shutdown();
  });
  s.hup.add(SIGHUP);
  s.wait_for_hup();
}

void Server::reload_contract() {
  Impl* s = impl_.get();
  asio::post(s->ioc, [s] { s->reload_contract(); });
}

void Server::request_stop() {
  Impl* s = impl_.get();
  asio::post(s->ioc, [s] { s->begin_shutdown(); });
}

Status Server::run() {
  Impl& s = *impl_;
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  try {
    s.ioc.run();
  } catch (const std::exception& e) {
    log(LogLevel::kError, "io loop failed", Json(JsonObject{{"error", Json(e.what())}}));
    s.stop_host();
    return internal_error(std::string("io loop failed: ") + e.what());
  }
  s.stop_runtime();
  s.stop_host();
  beast::error_code ec;
  s.signals.cancel(ec);
  s.hup.cancel(ec);
  log(LogLevel::kInfo, "stopped");
  return Status();
}

}  // namespace cairn::server
