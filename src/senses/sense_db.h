// sense_db.h — a sense's own SQLite database (shell).
//
// Every sense has one SQLite file in the data directory (CAIRN_SENSE_DB in its
// environment), in WAL mode, whose schema comes from the sense's
// `migrations` directory: each *.sql file is applied once, in name order,
// through a `_migrations` journal. Senses of one group see each other's
// databases read-only (CAIRN_PEER_DBS, built here).
//
// Callers: the observation runtime (senses/runtime.*), before a sense's first
// run. docs/senses.md, "Sense databases", describes the rules for users.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/status.h"

namespace cairn::senses {

// At most this many *.sql files in a migrations directory, each at most this
// large; more: too_large, reason "migrations_too_large".
inline constexpr std::size_t kMigrationFilesMax = 1'000;
inline constexpr std::size_t kMigrationFileBytesMax = 1u << 20;
// How long prepare_sense_db waits for a lock held by the sense itself (or a
// peer reading) before it gives up (unavailable).
inline constexpr int kSenseDbBusyTimeoutMs = 5'000;

struct MigrationReport {
  std::vector<std::string> applied;  // file names applied now, in order
  std::size_t already = 0;           // files found already applied (same sha256)
};

// Creates/opens the database at `db_path` (its parent directory is created),
// sets journal_mode=WAL and synchronous=FULL, creates
//   _migrations(name TEXT PRIMARY KEY, sha256 TEXT NOT NULL,
//               applied_at_ms INTEGER NOT NULL)
// and applies each regular file `migrations_dir/*.sql` (sorted by name,
// bytewise) that the journal does not hold yet: the file's SQL and its journal
// row in one transaction (BEGIN IMMEDIATE … COMMIT). Errors:
//   migration_changed  (conflict) a journaled file's sha256 differs from the
//                      file's now — an applied migration was edited; nothing
//                      is applied.
//   migration_failed   (invalid) a file's SQL failed: its transaction rolled
//                      back entirely, later files were not applied; the
//                      message names the file and SQLite's error.
//   migrations_too_large (too_large) more than kMigrationFilesMax files, or a
//                      file larger than kMigrationFileBytesMax.
//   migrations_unreadable (invalid) the directory or a file cannot be read.
//   sense_db_unavailable (unavailable) the database cannot be opened/written.
// A journaled name whose file is gone is fine. An empty `migrations_dir`
// string: no migrations, only the journal. The database is closed before
// returning, with its -wal and -shm files kept so that read-only peers can
// open it (see read_only_uri).
Result<MigrationReport> prepare_sense_db(const std::string& db_path,
                                         const std::string& migrations_dir, std::int64_t now_ms);

// "file:/abs/path/name.db?mode=ro": how a peer's database is offered to a
// sense. The path is made absolute; every byte outside [A-Za-z0-9/._~-] is
// percent-encoded (so '?', '#', '%', ' ', ';' and '=' never appear raw).
std::string read_only_uri(const std::string& db_path);

// CAIRN_PEER_DBS's value: "name=URI" pairs joined by ';' for every member of
// `group_members` (name, db_path) except `self`, sorted by name. Names are
// [a-z0-9_-], URIs contain no ';'.
std::string peer_dbs_value(const std::string& self,
                           const std::vector<std::pair<std::string, std::string>>& group_members);

}  // namespace cairn::senses
