// sqlite_fault_test.cc — I/O errors under SqliteStore, through a shim VFS
// that forwards to SQLite's default VFS and fails chosen calls: the error
// mapping (I/O error or full disk → unavailable, nothing applied) and the
// outcome_unknown rule (a COMMIT that fails after SQLite ended the
// transaction is ambiguous).
#include <sqlite3.h>

#include <string>

#include <gtest/gtest.h>

#include "backend/sqlite/sqlite_store.h"
#include "backend/sqlite/temp_db.h"

namespace cairn::backend::testing {
namespace {

using store::Batch;
using store::Mutation;

// ---- the shim VFS ----------------------------------------------------------------------

// Result codes to return instead of calling through (SQLITE_OK: pass).
struct Faults {
  int wal_sync = SQLITE_OK;   // xSync on a WAL file
  int wal_write = SQLITE_OK;  // xWrite on a WAL file
  int db_read = SQLITE_OK;    // xRead on a main database file
};
Faults g_faults;

struct ShimFile {
  sqlite3_file base;   // pMethods = &kShimIo
  sqlite3_file* real;  // the default VFS's file, allocated right after this
  int flags;
};

sqlite3_file* real(sqlite3_file* f) {
  return reinterpret_cast<ShimFile*>(f)->real;
}
bool is_wal(sqlite3_file* f) {
  return (reinterpret_cast<ShimFile*>(f)->flags & SQLITE_OPEN_WAL) != 0;
}
bool is_main_db(sqlite3_file* f) {
  return (reinterpret_cast<ShimFile*>(f)->flags & SQLITE_OPEN_MAIN_DB) != 0;
}

int shim_close(sqlite3_file* f) {
  return real(f)->pMethods->xClose(real(f));
}
int shim_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (is_main_db(f) && g_faults.db_read != SQLITE_OK) return g_faults.db_read;
  return real(f)->pMethods->xRead(real(f), buf, n, off);
}
int shim_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (is_wal(f) && g_faults.wal_write != SQLITE_OK) return g_faults.wal_write;
  return real(f)->pMethods->xWrite(real(f), buf, n, off);
}
int shim_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real(f)->pMethods->xTruncate(real(f), size);
}
int shim_sync(sqlite3_file* f, int flags) {
  if (is_wal(f) && g_faults.wal_sync != SQLITE_OK) return g_faults.wal_sync;
  return real(f)->pMethods->xSync(real(f), flags);
}
int shim_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real(f)->pMethods->xFileSize(real(f), size);
}
int shim_lock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xLock(real(f), level);
}
int shim_unlock(sqlite3_file* f, int level) {
  return real(f)->pMethods->xUnlock(real(f), level);
}
int shim_check_reserved(sqlite3_file* f, int* out) {
  return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int shim_file_control(sqlite3_file* f, int op, void* arg) {
  return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int shim_sector_size(sqlite3_file* f) {
  return real(f)->pMethods->xSectorSize(real(f));
}
int shim_device_characteristics(sqlite3_file* f) {
  return real(f)->pMethods->xDeviceCharacteristics(real(f));
}
int shim_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return real(f)->pMethods->xShmMap(real(f), page, size, extend, out);
}
int shim_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real(f)->pMethods->xShmLock(real(f), offset, n, flags);
}
void shim_shm_barrier(sqlite3_file* f) {
  real(f)->pMethods->xShmBarrier(real(f));
}
int shim_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real(f)->pMethods->xShmUnmap(real(f), delete_flag);
}
int shim_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  *out = nullptr;  // no memory-mapped reads: every read goes through xRead
  (void)f;
  (void)off;
  (void)n;
  return SQLITE_OK;
}
int shim_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  (void)f;
  (void)off;
  (void)p;
  return SQLITE_OK;
}

const sqlite3_io_methods kShimIo = {
    3,
    shim_close,
    shim_read,
    shim_write,
    shim_truncate,
    shim_sync,
    shim_file_size,
    shim_lock,
    shim_unlock,
    shim_check_reserved,
    shim_file_control,
    shim_sector_size,
    shim_device_characteristics,
    shim_shm_map,
    shim_shm_lock,
    shim_shm_barrier,
    shim_shm_unmap,
    shim_fetch,
    shim_unfetch,
};

sqlite3_vfs* root_vfs() {
  static sqlite3_vfs* root = sqlite3_vfs_find(nullptr);
  return root;
}

int shim_open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<ShimFile*>(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->flags = flags;
  const int rc = root_vfs()->xOpen(root_vfs(), name, f->real, flags, out_flags);
  f->base.pMethods = f->real->pMethods != nullptr ? &kShimIo : nullptr;
  return rc;
}
int shim_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return root_vfs()->xDelete(root_vfs(), name, sync_dir);
}
int shim_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return root_vfs()->xAccess(root_vfs(), name, flags, out);
}
int shim_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return root_vfs()->xFullPathname(root_vfs(), name, n, out);
}
int shim_randomness(sqlite3_vfs*, int n, char* out) {
  return root_vfs()->xRandomness(root_vfs(), n, out);
}
int shim_sleep(sqlite3_vfs*, int us) {
  return root_vfs()->xSleep(root_vfs(), us);
}
int shim_current_time(sqlite3_vfs*, double* out) {
  return root_vfs()->xCurrentTime(root_vfs(), out);
}
int shim_get_last_error(sqlite3_vfs*, int n, char* out) {
  return root_vfs()->xGetLastError(root_vfs(), n, out);
}
int shim_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return root_vfs()->xCurrentTimeInt64(root_vfs(), out);
}

constexpr const char* kShimName = "cairn-fault-shim";

// Registers the shim once (not as the default VFS).
const char* shim_vfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v{};
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(sizeof(ShimFile)) + root_vfs()->szOsFile;
    v.mxPathname = root_vfs()->mxPathname;
    v.zName = kShimName;
    v.xOpen = shim_open;
    v.xDelete = shim_delete;
    v.xAccess = shim_access;
    v.xFullPathname = shim_full_pathname;
    v.xRandomness = shim_randomness;
    v.xSleep = shim_sleep;
    v.xCurrentTime = shim_current_time;
    v.xGetLastError = shim_get_last_error;
    v.xCurrentTimeInt64 = shim_current_time_int64;
    return v;
  }();
  static const int registered = sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  EXPECT_EQ(registered, SQLITE_OK);
  return kShimName;
}

// ---- tests -----------------------------------------------------------------------------

class SqliteFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    g_faults = Faults{};
    opt_.vfs = shim_vfs();
  }
  void TearDown() override { g_faults = Faults{}; }

  std::unique_ptr<SqliteStore> open() {
    auto r = SqliteStore::open(dir_.file("cairn.db"), {}, opt_);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  static Batch batch(const std::string& tag) {
    Batch b;
    for (int i = 0; i < 4; ++i) {
      b.mutations.push_back({Mutation::Op::kPut, tag + "/" + std::to_string(i), tag});
    }
    return b;
  }

  // How many of the four keys of `tag` exist: 0 or 4, never in between.
  static int keys_of(SqliteStore& s, const std::string& tag) {
    const auto n = static_cast<int>(dump(s, tag + "/").size());
    EXPECT_TRUE(n == 0 || n == 4) << tag << " is half applied: " << n << " keys";
    return n;
  }

  TempDir dir_;
  SqliteOptions opt_;
};

TEST_F(SqliteFaults, TheShimPassesThrough) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(batch("a")).ok());
  s.reset();
  s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(keys_of(*s, "a"), 4);
}

TEST_F(SqliteFaults, ReadErrorBeforeCommitIsUnavailableAndAppliesNothing) {
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    ASSERT_TRUE(s->commit(batch("a")).ok());
  }  // the last connection checkpoints: the pages are in the main file now
  auto s = open();
  ASSERT_NE(s, nullptr);
  const store::Version before = s->last_version().value();
  g_faults.db_read = SQLITE_IOERR_READ;
  Batch b = batch("b");
  b.preconditions.push_back(store::Precondition::version_equals("a/0", before));
  auto r = s->commit(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().to_string();
  EXPECT_EQ(r.status().reason(), "storage_io");
  g_faults = Faults{};
  EXPECT_EQ(keys_of(*s, "b"), 0);
  EXPECT_EQ(s->last_version().value(), before);
  auto again = s->commit(b);  // the connection recovers once the disk does
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(keys_of(*s, "b"), 4);
}

TEST_F(SqliteFaults, FullDiskWritingTheWalIsNeverReportedAsApplied) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(batch("a")).ok());
  const store::Version before = s->last_version().value();
  g_faults.wal_write = SQLITE_FULL;
  auto r = s->commit(batch("b"));
  ASSERT_FALSE(r.ok());
  // The WAL is written at COMMIT, and SQLite ends the transaction: by the
  // rule that is outcome_unknown, never ok and never "definitely not" —
  // here a caller reading back finds nothing.
  EXPECT_EQ(r.status().code(), Code::kOutcomeUnknown) << r.status().to_string();
  EXPECT_EQ(r.status().details().find("sqlite_code")->as_number(), SQLITE_FULL);
  g_faults = Faults{};
  EXPECT_EQ(keys_of(*s, "b"), 0);
  EXPECT_EQ(s->last_version().value(), before);
  ASSERT_TRUE(s->commit(batch("c")).ok());
  s.reset();
  s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(keys_of(*s, "a"), 4);
  EXPECT_EQ(keys_of(*s, "b"), 0);
  EXPECT_EQ(keys_of(*s, "c"), 4);
}

TEST_F(SqliteFaults, FailedWalSyncAtCommitIsOutcomeUnknown) {
  auto s = open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->commit(batch("a")).ok());
  g_faults.wal_sync = SQLITE_IOERR_FSYNC;
  auto r = s->commit(batch("b"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kOutcomeUnknown) << r.status().to_string();
  g_faults = Faults{};
  // Whatever the answer, the batch is whole or absent, and work goes on.
  keys_of(*s, "b");
  auto c = s->commit(batch("c"));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  s.reset();
  s = open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(keys_of(*s, "a"), 4);
  keys_of(*s, "b");
  EXPECT_EQ(keys_of(*s, "c"), 4);
  EXPECT_EQ(s->get("c/0").value()->version, s->last_version().value());
}

}  // namespace
}  // namespace cairn::backend::testing
