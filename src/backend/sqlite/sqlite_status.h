// sqlite_status.h — an SQLite result code as a cairn Status (shell), for
// every component that keeps a SQLite file (the store, cairnd's logs.db).
#pragma once

#include <string_view>

#include "model/status.h"

struct sqlite3;

namespace cairn::backend {

// "<context>: <SQLite's message>" with details {sqlite_code}. By primary
// code: BUSY/LOCKED → unavailable "storage_busy"; FULL → unavailable
// "storage_full"; IOERR, CANTOPEN, NOMEM, PROTOCOL, NOLFS, READONLY →
// unavailable "storage_io"; CORRUPT, NOTADB → internal "storage_corrupt";
// anything else (CONSTRAINT, MISUSE, ERROR for bad SQL, RANGE, TOOBIG, ...)
// → internal "storage_error". `db` may be null (then the code's generic text).
Status sqlite_status(sqlite3* db, int rc, std::string_view context);

}  // namespace cairn::backend
