// log_records.cc — log records in <data>/logs.db and their daily archival
// (see log_records.h).
#include "server/log_records.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "backend/sqlite/sqlite_status.h"
#include "model/assert.h"
#include "model/json_parse.h"

namespace cairn::server {

namespace {

constexpr int kBusyTimeoutMs = 5'000;
// Archive lines are written through a buffer of this size.
constexpr std::size_t kExportBufferBytes = 64u << 10;

std::int64_t system_wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status sqlite_error(sqlite3* db, int rc, std::string_view what) {
  return backend::sqlite_status(db, rc, "logs.db: " + std::string(what));
}

Status exec(sqlite3* db, const char* sql) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return Status();
}

struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

Result<Stmt> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  Stmt s(raw);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, sql);
  return s;
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  return p == nullptr ? std::string()
                      : std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

LogRecord read_row(sqlite3_stmt* s) {
  return LogRecord{sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), column_text(s, 2),
                   column_text(s, 3),          column_text(s, 4),          column_text(s, 5)};
}

// The first column of a one-row query as int64 (nullopt: no row or NULL).
Result<std::optional<std::int64_t>> query_int(sqlite3* db, const char* sql) {
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, sql));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, sql);
  if (sqlite3_column_type(s.get(), 0) == SQLITE_NULL) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(sqlite3_column_int64(s.get(), 0));
}

Result<std::optional<std::string>> read_watermark(sqlite3* db) {
  constexpr const char* kSql = "SELECT value FROM meta WHERE key = 'archived_up_to'";
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, kSql));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, kSql);
  std::string v = column_text(s.get(), 0);
  if (!parse_day_name(v)) {
    return internal_error("logs.db: meta.archived_up_to is not a YYYY-MM-DD day: " + v,
                          "storage_corrupt");
  }
  return std::optional<std::string>(std::move(v));
}

// The first day that may still hold records: the day after the watermark
// (nullopt: no watermark).
Result<std::optional<std::int64_t>> first_open_day(sqlite3* db) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> w, read_watermark(db));
  if (!w) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(*parse_day_name(*w) + 1);
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '-';
}

Status check_name(std::string_view field, std::string_view v, std::size_t max) {
  if (v.size() > max) {
    return too_large(
        std::string(field) + " is longer than " + std::to_string(max) + " bytes", "too_large",
        Json(JsonObject{{"field", Json(field)}, {"max", Json(static_cast<std::uint64_t>(max))}}));
  }
  if (v.empty()) {
    return invalid(std::string(field) + " is required", "invalid_field",
                   Json(JsonObject{{"field", Json(field)}}));
  }
  for (char c : v) {
    if (!name_char(c)) {
      return invalid(std::string(field) + " may only hold the characters [A-Za-z0-9._:/-]",
                     "invalid_field", Json(JsonObject{{"field", Json(field)}}));
    }
  }
  return Status();
}

// Writes all of `data` to `fd`.
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Status io_error(const std::string& what) {
  return unavailable(what + ": " + std::strerror(errno), "storage_io");
}

Status set_watermark(sqlite3* db, std::int64_t day) {
  constexpr const char* kSql =
      "INSERT INTO meta(key, value) VALUES ('archived_up_to', ?1) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, kSql));
  bind_text(s.get(), 1, day_name(day));
  if (const int rc = sqlite3_step(s.get()); rc != SQLITE_DONE) {
    return sqlite_error(db, rc, "set the watermark");
  }
  return Status();
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory " + dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return io_error("cannot fsync directory " + dir);
  return Status();
}

// Creates `dir` (and its parents) and fsyncs each created directory's parent,
// so the directory entry survives a crash.
Status make_durable_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> created;
  for (fs::path p = fs::path(dir); !p.empty() && !fs::exists(p); p = p.parent_path()) {
    created.push_back(p);
    if (p == p.parent_path()) break;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return unavailable("cannot create " + dir + ": " + ec.message(), "storage_io");
  for (const fs::path& p : created) {
    fs::path parent = p.parent_path();
    if (parent.empty()) parent = ".";
    CAIRN_RETURN_IF_ERROR(fsync_dir(parent.string()));
  }
  return Status();
}

}  // namespace

Json log_record_to_json(const LogRecord& r) {
  auto payload = parse_json(r.payload);
  return Json(JsonObject{{"id", Json(r.id)},
                         {"ts", Json(r.ts)},
                         {"source", Json(r.source)},
                         {"type", Json(r.type)},
                         {"ref", Json(r.ref)},
                         {"payload", payload.ok() ? std::move(payload).value() : Json(r.payload)}});
}

std::string day_name(std::int64_t day) {
  using namespace std::chrono;
  const year_month_day ymd{sys_days{days{day}}};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::optional<std::int64_t> parse_day_name(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const auto y = digits(0, 4);
  const auto m = digits(5, 2);
  const auto d = digits(8, 2);
  if (!y || !m || !d) return std::nullopt;
  using namespace std::chrono;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*m)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  return static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count());
}

void LogRecords::DbClose::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

LogRecords::LogRecords(std::string path, WallClock clock)
    : path_(std::move(path)), clock_(clock ? std::move(clock) : WallClock(system_wall_ms)) {
  const char* fp = std::getenv("CAIRN_FAILPOINT");
  failpoint_after_export_ = fp != nullptr && std::string_view(fp) == "archive_after_export";
}

LogRecords::~LogRecords() = default;

Result<std::unique_ptr<LogRecords>> LogRecords::open(const std::string& path, WallClock clock) {
  std::unique_ptr<LogRecords> r(new LogRecords(path, std::move(clock)));
  for (Db* db : {&r->db_, &r->read_db_, &r->archive_db_}) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    db->reset(raw);
    if (rc != SQLITE_OK) return sqlite_error(raw, rc, "open " + path);
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  }
  sqlite3* db = r->db_.get();
  CAIRN_RETURN_IF_ERROR(exec(db, "PRAGMA journal_mode=WAL"));
  for (Db* d : {&r->db_, &r->read_db_, &r->archive_db_}) {
    CAIRN_RETURN_IF_ERROR(exec(d->get(), "PRAGMA synchronous=FULL"));
  }
  {
    // The pragmas must have taken effect: an acknowledged append is on disk.
    CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, "PRAGMA journal_mode"));
    if (sqlite3_step(s.get()) != SQLITE_ROW || column_text(s.get(), 0) != "wal") {
      return unavailable(path + ": SQLite did not accept journal_mode=WAL", "wal_unavailable");
    }
  }
  CAIRN_RETURN_IF_ERROR(
      exec(db,
           "CREATE TABLE IF NOT EXISTS logs(id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT "
           "NULL, source TEXT, type TEXT, ref TEXT, payload TEXT);"
           "CREATE INDEX IF NOT EXISTS logs_by_ts ON logs(ts);"
           "CREATE INDEX IF NOT EXISTS logs_by_source ON logs(source, id);"
           "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"));
  // Every ts handed out so far is either still in the table or archived,
  // that is before the start of the day after the watermark.
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::int64_t> max_ts,
                         query_int(db, "SELECT MAX(ts) FROM logs"));
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::int64_t> open_day, first_open_day(db));
  r->last_ts_ = std::max(max_ts.value_or(0), open_day.value_or(0) * kDayMs);
  return r;
}

Status LogRecords::validate(std::string_view source, std::string_view type, std::string_view ref,
                            const Json& payload) {
  CAIRN_RETURN_IF_ERROR(check_name("source", source, LogLimits::kSourceBytesMax));
  CAIRN_RETURN_IF_ERROR(check_name("type", type, LogLimits::kTypeBytesMax));
  if (ref.size() > LogLimits::kRefBytesMax) {
    return too_large(
        "ref is longer than " + std::to_string(LogLimits::kRefBytesMax) + " bytes", "too_large",
        Json(JsonObject{{"field", Json("ref")},
                        {"max", Json(static_cast<std::uint64_t>(LogLimits::kRefBytesMax))}}));
  }
  if (!is_valid_utf8(ref)) {
    return invalid("ref must be UTF-8", "invalid_field", Json(JsonObject{{"field", Json("ref")}}));
  }
  const std::size_t bytes = to_json(payload).size();
  if (bytes > LogLimits::kPayloadBytesMax) {
    return too_large(
        "payload is " + std::to_string(bytes) + " bytes of compact JSON, more than " +
            std::to_string(LogLimits::kPayloadBytesMax),
        "too_large",
        Json(JsonObject{{"field", Json("payload")},
                        {"max", Json(static_cast<std::uint64_t>(LogLimits::kPayloadBytesMax))}}));
  }
  return Status();
}

Result<LogRecords::Appended> LogRecords::append(std::string_view source, std::string_view type,
                                                std::string_view ref, const Json& payload) {
  CAIRN_RETURN_IF_ERROR(validate(source, type, ref, payload));
  const std::string text = to_json(payload);
  const std::int64_t now = clock_();
  std::lock_guard lock(mu_);
  const std::int64_t ts = std::max(now, last_ts_);
  CAIRN_ASSIGN_OR_RETURN(Appended a, insert(ts, source, type, ref, text));
  last_ts_ = ts;
  return a;
}

Result<LogRecords::Appended> LogRecords::append_at_for_test(std::int64_t ts,
                                                            std::string_view source,
                                                            std::string_view type,
                                                            std::string_view ref,
                                                            const Json& payload) {
  CAIRN_RETURN_IF_ERROR(validate(source, type, ref, payload));
  std::lock_guard lock(mu_);
  CAIRN_ASSIGN_OR_RETURN(Appended a, insert(ts, source, type, ref, to_json(payload)));
  last_ts_ = std::max(last_ts_, ts);
  return a;
}

// REQUIRES: mu_ held.
Result<LogRecords::Appended> LogRecords::insert(std::int64_t ts, std::string_view source,
                                                std::string_view type, std::string_view ref,
                                                const std::string& payload) {
  constexpr const char* kSql =
      "INSERT INTO logs(ts, source, type, ref, payload) VALUES (?1, ?2, ?3, ?4, ?5)";
  sqlite3* db = db_.get();
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, kSql));
  sqlite3_bind_int64(s.get(), 1, ts);
  bind_text(s.get(), 2, source);
  bind_text(s.get(), 3, type);
  bind_text(s.get(), 4, ref);
  bind_text(s.get(), 5, payload);
  const int rc = sqlite3_step(s.get());
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "append");
  const std::int64_t id = sqlite3_last_insert_rowid(db);
  CAIRN_ASSERT(id > 0);
  return Appended{id, ts};
}

Result<LogRecords::Page> LogRecords::list(std::int64_t after_id, std::string_view source,
                                          std::size_t limit) {
  CAIRN_ASSERT(limit >= 1);
  const char* sql =
      source.empty()
          ? "SELECT id, ts, source, type, ref, payload FROM logs WHERE id > ?1 ORDER BY id "
            "LIMIT ?2"
          : "SELECT id, ts, source, type, ref, payload FROM logs WHERE id > ?1 AND source = ?3 "
            "ORDER BY id LIMIT ?2";
  std::lock_guard lock(read_mu_);
  sqlite3* db = read_db_.get();
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, sql));
  sqlite3_bind_int64(s.get(), 1, after_id);
  sqlite3_bind_int64(s.get(), 2, static_cast<std::int64_t>(limit));
  if (!source.empty()) bind_text(s.get(), 3, source);
  Page page;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) page.records.push_back(read_row(s.get()));
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "list");
  if (page.records.size() == limit) page.next = page.records.back().id;
  return page;
}

Result<std::optional<std::string>> LogRecords::watermark() {
  std::lock_guard lock(read_mu_);
  return read_watermark(read_db_.get());
}

// REQUIRES: archive_mu_ held.
Result<std::uint64_t> LogRecords::export_day(std::int64_t day, const std::string& archive_dir) {
  sqlite3* db = archive_db_.get();
  const std::string name = day_name(day);
  const std::string final_path = archive_dir + "/" + name + ".jsonl";
  const std::string tmp_path = final_path + ".tmp";
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot create " + tmp_path);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  constexpr const char* kSql =
      "SELECT id, ts, source, type, ref, payload FROM logs WHERE ts < ?1 ORDER BY id";
  CAIRN_ASSIGN_OR_RETURN(Stmt s, prepare(db, kSql));
  sqlite3_bind_int64(s.get(), 1, (day + 1) * kDayMs);
  std::string buf;
  std::uint64_t n = 0;
  int rc;
  // The rows are streamed (one statement, one snapshot), never all in memory.
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    append_json(buf, log_record_to_json(read_row(s.get())));
    buf += '\n';
    ++n;
    if (buf.size() >= kExportBufferBytes) {
      if (!write_all(fd, buf)) return io_error("cannot write " + tmp_path);
      buf.clear();
    }
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "export " + name);
  s.reset();
  if (!write_all(fd, buf)) return io_error("cannot write " + tmp_path);
  if (::fsync(fd) != 0) return io_error("cannot fsync " + tmp_path);
  ::close(fd);
  closer.fd = -1;
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return io_error("cannot rename " + tmp_path);
  }
  CAIRN_RETURN_IF_ERROR(fsync_dir(archive_dir));
  return n;
}

Result<LogRecords::ArchiveReport> LogRecords::archive(std::int64_t now_ms,
                                                      std::int64_t retention_days,
                                                      const std::string& archive_dir) {
  if (retention_days < 0 || retention_days > LogLimits::kRetentionDaysMax) {
    return invalid(
        "retention_days must be within 0.." + std::to_string(LogLimits::kRetentionDaysMax),
        "invalid_field", Json(JsonObject{{"field", Json("retention_days")}}));
  }
  std::lock_guard lock(archive_mu_);
  sqlite3* db = archive_db_.get();
  // Day D is due when (D+1)·kDayMs ≤ now − retention: the last due day is
  // the one before the day of the cutoff.
  const std::int64_t last_due = day_of(now_ms - retention_days * kDayMs) - 1;
  ArchiveReport report;
  CAIRN_ASSIGN_OR_RETURN(report.watermark, read_watermark(db));
  bool dir_ready = false;
  while (report.days.size() < LogLimits::kArchiveDaysPerCallMax) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::int64_t> open_day, first_open_day(db));
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::int64_t> min_ts,
                           query_int(db, "SELECT MIN(ts) FROM logs"));
    // The next day with records (a row older than the watermark, which
    // append never makes, goes with the first open day).
    std::optional<std::int64_t> day;
    if (min_ts) day = open_day ? std::max(*open_day, day_of(*min_ts)) : day_of(*min_ts);
    if (!day || *day > last_due) {
      // No due day holds records: the watermark moves over the empty days
      // to the last due one (it stays unset until a day was archived).
      if (!open_day || *open_day > last_due) break;
      CAIRN_RETURN_IF_ERROR(set_watermark(db, last_due));
      report.watermark = day_name(last_due);
      break;
    }
    if (!dir_ready) {
      CAIRN_RETURN_IF_ERROR(make_durable_dir(archive_dir));
      dir_ready = true;
    }
    CAIRN_ASSIGN_OR_RETURN(std::uint64_t n, export_day(*day, archive_dir));
    if (failpoint_after_export_) ::raise(SIGKILL);  // test hook (see the header)
    // The file is durable: now the records go, and the watermark moves, in
    // one transaction.
    CAIRN_RETURN_IF_ERROR(exec(db, "BEGIN IMMEDIATE"));
    Status st = [&]() -> Status {
      CAIRN_ASSIGN_OR_RETURN(Stmt del, prepare(db, "DELETE FROM logs WHERE ts < ?1"));
      sqlite3_bind_int64(del.get(), 1, (*day + 1) * kDayMs);
      if (const int rc = sqlite3_step(del.get()); rc != SQLITE_DONE) {
        return sqlite_error(db, rc, "delete archived records");
      }
      if (static_cast<std::uint64_t>(sqlite3_changes64(db)) != n) {
        return internal_error("logs.db: " + std::to_string(n) + " records exported for " +
                                  day_name(*day) + " but " + std::to_string(sqlite3_changes64(db)) +
                                  " to delete",
                              "archive_mismatch");
      }
      CAIRN_RETURN_IF_ERROR(set_watermark(db, *day));
      return exec(db, "COMMIT");
    }();
    if (!st.ok()) {
      exec(db, "ROLLBACK").ignore();
      return st;
    }
    {
      // Later appends start after the archived day.
      std::lock_guard l(mu_);
      last_ts_ = std::max(last_ts_, (*day + 1) * kDayMs);
    }
    report.days.push_back(day_name(*day));
    report.records += n;
    report.watermark = day_name(*day);
  }
  return report;
}

}  // namespace cairn::server
