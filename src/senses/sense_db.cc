// sense_db.cc — see sense_db.h.
#include "senses/sense_db.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "model/sha256.h"

namespace cairn::senses {
namespace {

namespace fs = std::filesystem;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

struct MigrationFile {
  std::string name;
  std::string sql;
  std::string sha256;  // hex of the file's bytes
};

// A file name fit for a message: bytes outside printable ASCII become '?'.
std::string shown(std::string_view name) {
  std::string out(name.substr(0, 255));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

Status db_error(sqlite3* db, const std::string& what, const std::string& path) {
  return unavailable(what + " on sense database " + path + ": " + sqlite3_errmsg(db),
                     "sense_db_unavailable");
}

Status exec(sqlite3* db, const char* sql, const std::string& path) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return unavailable(std::string(sql) + " on sense database " + path + ": " + text,
                       "sense_db_unavailable");
  }
  return Status();
}

// The single text value of a one-row query.
Result<std::string> query_text(sqlite3* db, const char* sql, const std::string& path) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) {
    return db_error(db, sql, path);
  }
  Stmt stmt(raw);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return db_error(db, sql, path);
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
  return std::string(text ? text : "");
}

// The *.sql regular files of `dir` (not hidden ones), sorted by name bytewise.
Result<std::vector<MigrationFile>> read_migrations(const std::string& dir) {
  std::vector<MigrationFile> files;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return invalid("cannot read migrations directory " + dir + ": " + ec.message(),
                   "migrations_unreadable");
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.starts_with(".") || !name.ends_with(".sql")) continue;
    if (!it->is_regular_file(ec)) continue;  // follows symlinks; directories etc. are skipped
    if (files.size() == kMigrationFilesMax) {
      return too_large("migrations directory " + dir + " holds more than " +
                           std::to_string(kMigrationFilesMax) + " .sql files",
                       "migrations_too_large");
    }
    files.push_back(MigrationFile{name, {}, {}});
  }
  if (ec) {
    return invalid("cannot read migrations directory " + dir + ": " + ec.message(),
                   "migrations_unreadable");
  }
  std::sort(files.begin(), files.end(),
            [](const MigrationFile& a, const MigrationFile& b) { return a.name < b.name; });
  for (MigrationFile& f : files) {
    const fs::path p = fs::path(dir) / f.name;
    std::ifstream in(p, std::ios::binary);
    if (!in) {
      return invalid("cannot read migration " + shown(f.name) + " in " + dir,
                     "migrations_unreadable");
    }
    f.sql.resize(kMigrationFileBytesMax + 1);
    in.read(f.sql.data(), static_cast<std::streamsize>(f.sql.size()));
    if (in.bad()) {
      return invalid("cannot read migration " + shown(f.name) + " in " + dir,
                     "migrations_unreadable");
    }
    f.sql.resize(static_cast<std::size_t>(in.gcount()));
    if (f.sql.size() > kMigrationFileBytesMax) {
      return too_large("migration " + shown(f.name) + " in " + dir + " is larger than " +
                           std::to_string(kMigrationFileBytesMax) + " bytes",
                       "migrations_too_large");
    }
    f.sha256 = to_hex(sha256(f.sql));
  }
  return files;
}

// Transaction control inside a migration would end the transaction that also
// writes its journal row, so it is refused when the file is prepared.
struct AuthorizerState {
  bool refused_transaction = false;
};
int refuse_transaction_control(void* user, int action, const char*, const char*, const char*,
                               const char*) {
  if (action == SQLITE_TRANSACTION || action == SQLITE_SAVEPOINT) {
    static_cast<AuthorizerState*>(user)->refused_transaction = true;
    return SQLITE_DENY;
  }
  return SQLITE_OK;
}

class SenseDb {
 public:
  SenseDb(Db db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

  Status configure() {
    sqlite3* db = db_.get();
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kSenseDbBusyTimeoutMs);
    // WAL: the sense writes while its peers read, neither blocking the other.
    CAIRN_ASSIGN_OR_RETURN(std::string mode, query_text(db, "PRAGMA journal_mode=WAL", path_));
    if (mode != "wal") {
      return unavailable(
          "SQLite did not enable WAL on " + path_ + " (journal_mode is '" + mode + "')",
          "sense_db_unavailable");
    }
    CAIRN_RETURN_IF_ERROR(exec(db, "PRAGMA synchronous=FULL", path_));
    // Keep -wal and -shm when the last connection closes: a read-only peer
    // cannot create them where it may not write.
    int persist = 1;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist) != SQLITE_OK) {
      return db_error(db, "SQLITE_FCNTL_PERSIST_WAL", path_);
    }
    return exec(db,
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, sha256 TEXT NOT "
                "NULL, applied_at_ms INTEGER NOT NULL)",
                path_);
  }

  // name → sha256 of every journaled migration.
  Result<std::map<std::string, std::string>> journal() {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), "SELECT name, sha256 FROM _migrations", -1, &raw, nullptr) !=
        SQLITE_OK) {
      return db_error(db_.get(), "read _migrations", path_);
    }
    Stmt stmt(raw);
    std::map<std::string, std::string> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
      const auto* sha = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
      out.emplace(name ? name : "", sha ? sha : "");
    }
    if (rc != SQLITE_DONE) return db_error(db_.get(), "read _migrations", path_);
    return out;
  }

  Status changed(const MigrationFile& f, const std::string& journaled_sha) const {
    Json details = Json::object();
    details.set("file", shown(f.name));
    details.set("journaled_sha256", journaled_sha);
    details.set("file_sha256", f.sha256);
    return conflict("migration " + shown(f.name) + " was edited after it was applied to " + path_ +
                        " (sha256 " + journaled_sha.substr(0, 12) + "… in the journal, " +
                        f.sha256.substr(0, 12) + "… now); add a new migration instead",
                    "migration_changed", std::move(details));
  }

  // Applies `f` and journals it in one transaction; false when another
  // process journaled it first (same content).
  Result<bool> apply(const MigrationFile& f, std::int64_t now_ms) {
    sqlite3* db = db_.get();
    CAIRN_RETURN_IF_ERROR(exec(db, "BEGIN IMMEDIATE", path_));
    Status st = apply_in_transaction(f, now_ms);
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK", path_).ignore();
      if (st.reason() == "already_applied") return false;
      return st;
    }
    if (Status c = exec(db, "COMMIT", path_); !c.ok()) {
      if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK", path_).ignore();
      return c;
    }
    return true;
  }

 private:
  Status apply_in_transaction(const MigrationFile& f, std::int64_t now_ms) {
    sqlite3* db = db_.get();
    // Journaled meanwhile (by another cairn on the same data directory)?
    {
      sqlite3_stmt* raw = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT sha256 FROM _migrations WHERE name = ?1", -1, &raw,
                             nullptr) != SQLITE_OK) {
        return db_error(db, "read _migrations", path_);
      }
      Stmt stmt(raw);
      sqlite3_bind_text(stmt.get(), 1, f.name.data(), static_cast<int>(f.name.size()),
                        SQLITE_TRANSIENT);
      const int rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_ROW) {
        const auto* sha = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
        const std::string journaled = sha ? sha : "";
        if (journaled != f.sha256) return changed(f, journaled);
        return Status(Code::kConflict, "already applied", "already_applied");
      }
      if (rc != SQLITE_DONE) return db_error(db, "read _migrations", path_);
    }
    if (f.sql.find('\0') != std::string::npos) {
      return invalid("migration " + shown(f.name) + " contains a NUL byte", "migration_failed");
    }
    AuthorizerState auth;
    sqlite3_set_authorizer(db, refuse_transaction_control, &auth);
    char* msg = nullptr;
    const int rc = sqlite3_exec(db, f.sql.c_str(), nullptr, nullptr, &msg);
    sqlite3_set_authorizer(db, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      std::string text = msg ? msg : sqlite3_errmsg(db);
      sqlite3_free(msg);
      if (auth.refused_transaction) {
        text +=
            " (a migration must not contain BEGIN, COMMIT, ROLLBACK or SAVEPOINT: each file "
            "already runs in its own transaction)";
      }
      Json details = Json::object();
      details.set("file", shown(f.name));
      details.set("sqlite", text);
      return invalid("migration " + shown(f.name) + " failed on " + path_ + ": " + text,
                     "migration_failed", std::move(details));
    }
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO _migrations (name, sha256, applied_at_ms) VALUES (?1, ?2, "
                           "?3)",
                           -1, &raw, nullptr) != SQLITE_OK) {
      return db_error(db, "journal a migration", path_);
    }
    Stmt stmt(raw);
    sqlite3_bind_text(stmt.get(), 1, f.name.data(), static_cast<int>(f.name.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt.get(), 2, f.sha256.data(), static_cast<int>(f.sha256.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt.get(), 3, now_ms);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
      return db_error(db, "journal migration " + shown(f.name), path_);
    }
    return Status();
  }

  Db db_;
  std::string path_;
};

bool uri_plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
         c == '.' || c == '_' || c == '~' || c == '-';
}

}  // namespace

Result<MigrationReport> prepare_sense_db(const std::string& db_path,
                                         const std::string& migrations_dir, std::int64_t now_ms) {
  // Read the files first: a directory that cannot be read changes nothing.
  std::vector<MigrationFile> files;
  if (!migrations_dir.empty()) {
    CAIRN_ASSIGN_OR_RETURN(files, read_migrations(migrations_dir));
  }
  std::error_code ec;
  const fs::path parent = fs::path(db_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) {
    return unavailable("cannot create " + parent.string() + ": " + ec.message(),
                       "sense_db_unavailable");
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(db_path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // closed on every path, also when opening failed
  if (rc != SQLITE_OK) {
    return unavailable("cannot open sense database " + db_path + ": " +
                           (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)),
                       "sense_db_unavailable");
  }
  SenseDb sdb(std::move(db), db_path);
  CAIRN_RETURN_IF_ERROR(sdb.configure());
  CAIRN_ASSIGN_OR_RETURN(auto journaled, sdb.journal());

  // Every applied migration must still be what was applied.
  for (const MigrationFile& f : files) {
    auto it = journaled.find(f.name);
    if (it != journaled.end() && it->second != f.sha256) return sdb.changed(f, it->second);
  }
  MigrationReport report;
  for (const MigrationFile& f : files) {
    if (journaled.contains(f.name)) {
      ++report.already;
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(bool applied, sdb.apply(f, now_ms));
    if (applied) {
      report.applied.push_back(f.name);
    } else {
      ++report.already;
    }
  }
  return report;
}

std::string read_only_uri(const std::string& db_path) {
  std::error_code ec;
  fs::path abs = fs::absolute(db_path, ec);
  const std::string path = (ec ? fs::path(db_path) : abs).lexically_normal().string();
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "file:";
  for (const char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (uri_plain(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += "?mode=ro";
  return out;
}

std::string peer_dbs_value(const std::string& self,
                           const std::vector<std::pair<std::string, std::string>>& group_members) {
  std::vector<std::pair<std::string, std::string>> peers;
  for (const auto& [name, path] : group_members) {
    if (name != self) peers.emplace_back(name, path);
  }
  std::sort(peers.begin(), peers.end());
  std::string out;
  for (const auto& [name, path] : peers) {
    if (!out.empty()) out += ';';
    out += name;
    out += '=';
    out += read_only_uri(path);
  }
  return out;
}

}  // namespace cairn::senses
