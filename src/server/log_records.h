// log_records.h — cairnd's log records and their daily archival (shell: owns
// the SQLite file <data>/logs.db and writes files under <data>/archive/logs).
//
// A log record is {id, ts, source, type, ref, payload}: sense failures,
// workflow drops, runtime events. Records are append-only and totally
// ordered: `id` is SQLite's AUTOINCREMENT (never reused, also after the
// newest rows are deleted) and `ts` (wall ms) never goes backwards in id
// order, so "id order" and "ts order" agree.
//
// Durability: WAL with synchronous=FULL — an append that returned ok is on
// disk. Threading: every method is safe from any thread, and each kind of
// call has its own connection and mutex, so none waits for another's fsync:
// appends (`mu_`), reads (`read_mu_`: WAL readers see the last commit
// without waiting for a writer), archival (`archive_mu_`: one at a time; its
// export reads a snapshot and writes files while appends go on, then one
// short write transaction deletes the day).
//
// Archival (docs/senses.md#logs). A UTC day D is due when its end (D+1 at
// 00:00) is at or before now − retention_days. For each due day, oldest
// first, after the watermark meta.archived_up_to ("YYYY-MM-DD", the last day
// archived):
//   1. its records, in id order, one compact JSON object per line
//      {"id","ts","source","type","ref","payload"}, are written to
//      <archive_dir>/YYYY-MM-DD.jsonl.tmp, fsynced, renamed to
//      YYYY-MM-DD.jsonl, and the directory fsynced;
//   2. then one transaction deletes the records with ts < D+1 and sets the
//      watermark to D.
// A crash between 1 and 2 leaves the records in the database: the next run
// exports the same day again, byte for byte (a past day's records never
// change), and replaces the file — nothing lost, nothing duplicated.
// Days without records produce no file; the watermark still moves past them.
// The file of day D holds every record with ts < D+1 still in the database:
// normally exactly D's records. append() never gives a record a ts inside an
// archived day (its ts is at least the start of the day after the
// watermark); a row with such a ts (only a hand-edited database has one)
// therefore goes into the next archived day's file rather than being lost.
//
// Test hook: the environment variable CAIRN_FAILPOINT=archive_after_export
// (read once, when the records are opened) makes the process raise SIGKILL
// right after the first day's file is renamed into place, before the delete.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/json.h"
#include "model/status.h"

struct sqlite3;

namespace cairn::server {

struct LogLimits {
  // source and type: 1..128 bytes of [A-Za-z0-9._:/-].
  static constexpr std::size_t kSourceBytesMax = 128;
  static constexpr std::size_t kTypeBytesMax = 128;
  // ref: any UTF-8 text (a fact id, an intent id, a run id), at most this.
  static constexpr std::size_t kRefBytesMax = 256;
  // The payload as compact JSON.
  static constexpr std::size_t kPayloadBytesMax = 64u << 10;
  // Days exported by one archive() call; the next call goes on.
  static constexpr std::size_t kArchiveDaysPerCallMax = 400;
  // retention_days accepted by archive(): 0 (archive every finished day) up to 100 years.
  static constexpr std::int64_t kRetentionDaysMax = 36'500;
};

inline constexpr std::int64_t kDayMs = 86'400'000;

struct LogRecord {
  std::int64_t id = 0;
  std::int64_t ts = 0;  // wall ms
  std::string source;
  std::string type;
  std::string ref;
  std::string payload;  // compact JSON ("null" when none was given)
};

// {"id","ts","source","type","ref","payload"} (the API's and the archive's shape).
Json log_record_to_json(const LogRecord& r);

// "YYYY-MM-DD" for a UTC day number (days since 1970-01-01), and back
// (nullopt unless it is exactly that form and a real date).
std::string day_name(std::int64_t day);
std::optional<std::int64_t> parse_day_name(std::string_view s);

// Floor division: the UTC day of a wall time in ms (negative times too).
inline std::int64_t day_of(std::int64_t ts_ms) {
  return ts_ms >= 0 ? ts_ms / kDayMs : -((-ts_ms + kDayMs - 1) / kDayMs);
}

class LogRecords {
 public:
  using WallClock = std::function<std::int64_t()>;

  struct Appended {
    std::int64_t id = 0;
    std::int64_t ts = 0;
  };
  struct Page {
    std::vector<LogRecord> records;
    // The last id of a full page (pass it as after_id), or nullopt at the end.
    std::optional<std::int64_t> next;
  };
  struct ArchiveReport {
    std::vector<std::string> days;         // the day files written, oldest first
    std::uint64_t records = 0;             // records exported (and deleted)
    std::optional<std::string> watermark;  // meta.archived_up_to after the call
  };

  // Opens (creating) `path` (normally <data>/logs.db). `clock` gives the wall
  // time in ms for append(); empty: the system clock.
  static Result<std::unique_ptr<LogRecords>> open(const std::string& path, WallClock clock = {});
  ~LogRecords();
  LogRecords(const LogRecords&) = delete;
  LogRecords& operator=(const LogRecords&) = delete;

  // Checks a record's fields without writing: invalid / invalid_field for a
  // bad source, type or ref, too_large / too_large for an oversized field or
  // payload (details: field, max).
  static Status validate(std::string_view source, std::string_view type, std::string_view ref,
                         const Json& payload);

  // Appends one record (validate() first; nothing is written when it fails);
  // ts = max(now, the newest ts so far, the start of the day after the
  // watermark).
  Result<Appended> append(std::string_view source, std::string_view type, std::string_view ref,
                          const Json& payload);
  // Tests only (no route reaches it): appends with the given ts as is, so a
  // test can place records on past days. Breaks the ts order on purpose when
  // asked to.
  Result<Appended> append_at_for_test(std::int64_t ts, std::string_view source,
                                      std::string_view type, std::string_view ref,
                                      const Json& payload);

  // Records with id > after_id (and source == `source` when not empty), in
  // id order, at most `limit` (≥ 1).
  Result<Page> list(std::int64_t after_id, std::string_view source, std::size_t limit);

  // Runs archival as of `now_ms` (see the file comment) into `archive_dir`
  // (created if missing). At most kArchiveDaysPerCallMax day files per call.
  Result<ArchiveReport> archive(std::int64_t now_ms, std::int64_t retention_days,
                                const std::string& archive_dir);

  // meta.archived_up_to, or nullopt when nothing was archived yet.
  Result<std::optional<std::string>> watermark();

  const std::string& path() const { return path_; }

 private:
  struct DbClose {
    void operator()(sqlite3* db) const noexcept;
  };
  using Db = std::unique_ptr<sqlite3, DbClose>;

  LogRecords(std::string path, WallClock clock);
  Result<Appended> insert(std::int64_t ts, std::string_view source, std::string_view type,
                          std::string_view ref, const std::string& payload);
  // Exports records with ts < (day+1)·kDayMs to the day's file; returns how many.
  Result<std::uint64_t> export_day(std::int64_t day, const std::string& archive_dir);

  std::string path_;
  WallClock clock_;
  bool failpoint_after_export_ = false;

  std::mutex mu_;  // db_, last_ts_
  Db db_;
  std::int64_t last_ts_ = 0;  // the newest ts handed out (or the watermark's floor)

  std::mutex read_mu_;  // read_db_
  Db read_db_;

  std::mutex archive_mu_;  // archive_db_; one archival at a time
  Db archive_db_;
};

}  // namespace cairn::server
