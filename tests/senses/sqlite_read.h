// sqlite_read.h — reading a SQLite file the way a test checks it: opened
// read-only (with a busy timeout, so a live writer in WAL mode is fine),
// one query, closed again.
#pragma once

#include <sqlite3.h>

#include <optional>
#include <string>
#include <vector>

namespace cairn::testing {

// Every row of `sql`, each as its columns' text (NULL → nullopt); empty when
// the file or the query fails.
inline std::vector<std::vector<std::optional<std::string>>> sql_rows(const std::string& path,
                                                                     const std::string& sql) {
  std::vector<std::vector<std::optional<std::string>>> out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 5'000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::optional<std::string>> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const auto* t = sqlite3_column_text(st, i);
        if (t == nullptr) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(reinterpret_cast<const char*>(t)));
        }
      }
      out.push_back(std::move(row));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The first row (empty when none).
inline std::vector<std::optional<std::string>> sql_row(const std::string& path,
                                                       const std::string& sql) {
  auto rows = sql_rows(path, sql);
  return rows.empty() ? std::vector<std::optional<std::string>>{} : std::move(rows.front());
}

// The first column of every row, as text ("" for NULL).
inline std::vector<std::string> sql_column(const std::string& path, const std::string& sql) {
  std::vector<std::string> out;
  for (const auto& row : sql_rows(path, sql)) out.push_back(row.empty() ? "" : row[0].value_or(""));
  return out;
}

}  // namespace cairn::testing
