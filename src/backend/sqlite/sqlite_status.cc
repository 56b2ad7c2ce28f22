// sqlite_status.cc — see sqlite_status.h.
#include "backend/sqlite/sqlite_status.h"

#include <sqlite3.h>

#include <string>
#include <utility>

namespace cairn::backend {

Status sqlite_status(sqlite3* db, int rc, std::string_view context) {
  std::string message(context);
  message += ": ";
  // errmsg describes the connection's last failure; errstr is generic.
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  Json details(JsonObject{{"sqlite_code", Json(rc)}});
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return unavailable(std::move(message), "storage_busy", std::move(details));
    case SQLITE_FULL:
      return unavailable(std::move(message), "storage_full", std::move(details));
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_READONLY:
      return unavailable(std::move(message), "storage_io", std::move(details));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return internal_error(std::move(message), "storage_corrupt", std::move(details));
    default:  // CONSTRAINT, MISUSE, ERROR (bad SQL), RANGE, TOOBIG, ...
      return internal_error(std::move(message), "storage_error", std::move(details));
  }
}

}  // namespace cairn::backend
