// Sense databases (senses/sense_db.h): real SQLite files in a temporary
// directory, migrations applied once across "restarts" (new calls), and a
// real child process (python3's sqlite3) that reads a peer's database through
// CAIRN_PEER_DBS and cannot write it.
#include "senses/sense_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/json_parse.h"
#include "model/sha256.h"
#include "senses/process.h"

namespace cairn::senses {
namespace {

namespace fs = std::filesystem;

const std::string kScripts = std::string(CAIRN_SOURCE_DIR) + "/tests/senses/scripts/";
constexpr std::int64_t kNowMs = 1'700'000'000'000;

// A read-write connection for checking what prepare_sense_db left behind.
class Conn {
 public:
  explicit Conn(const std::string& path_or_uri, int flags = SQLITE_OPEN_READWRITE) {
    sqlite3* raw = nullptr;
    rc_ = sqlite3_open_v2(path_or_uri.c_str(), &raw, flags, nullptr);
    db_.reset(raw);
  }
  bool ok() const { return rc_ == SQLITE_OK; }
  // Every row of `sql`, each column as text ("NULL" for null), joined by '|'.
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_.get());
    while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        if (i) row += '|';
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        row += t ? t : "NULL";
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    return out;
  }
  std::string one(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? "" : r[0];
  }
  int exec(const std::string& sql) {
    return sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr);
  }
  bool has_table(const std::string& name) {
    return one("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + name +
               "'") == "1";
  }

 private:
  struct Closer {
    void operator()(sqlite3* d) const { sqlite3_close(d); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
  int rc_ = SQLITE_ERROR;
};

class SenseDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cairn-sensedb-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "migrations");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string db() const { return (dir_ / "senses" / "disk.db").string(); }
  std::string migrations() const { return (dir_ / "migrations").string(); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / "migrations" / name, std::ios::binary) << text;
  }
  Result<MigrationReport> prepare() const { return prepare_sense_db(db(), migrations(), kNowMs); }

  fs::path dir_;
};

TEST_F(SenseDbTest, WalAndAnEmptyJournalWithoutMigrations) {
  auto r = prepare_sense_db(db(), "", kNowMs);  // the parent directory is created
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->applied.empty());
  EXPECT_EQ(r->already, 0u);
  Conn c(db());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(
      c.rows("SELECT name, type, \"notnull\", pk FROM pragma_table_info('_migrations')"),
      (std::vector<std::string>{"name|TEXT|0|1", "sha256|TEXT|1|0", "applied_at_ms|INTEGER|1|0"}));
  EXPECT_EQ(c.one("SELECT count(*) FROM _migrations"), "0");
  // An empty directory: the same.
  auto again = prepare();
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_TRUE(again->applied.empty());
}

TEST_F(SenseDbTest, FilesAppliedInNameOrderOnceAcrossRestarts) {
  // 002 needs 001's table: applied in the wrong order it would fail.
  write("002_seed.sql", "INSERT INTO readings (x) VALUES (1), (2);");
  write("001_schema.sql", "CREATE TABLE readings (x INTEGER NOT NULL);");
  write("notes.txt", "not a migration");
  write(".hidden.sql", "this is not SQL and is not read");
  fs::create_directories(dir_ / "migrations" / "000_dir.sql");
  auto r = prepare();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->applied, (std::vector<std::string>{"001_schema.sql", "002_seed.sql"}));
  EXPECT_EQ(r->already, 0u);
  {
    Conn c(db());
    EXPECT_EQ(c.rows("SELECT x FROM readings ORDER BY x"), (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(
        c.rows("SELECT name, sha256, applied_at_ms FROM _migrations ORDER BY name"),
        (std::vector<std::string>{
            "001_schema.sql|" + to_hex(sha256("CREATE TABLE readings (x INTEGER NOT NULL);")) +
                "|1700000000000",
            "002_seed.sql|" + to_hex(sha256("INSERT INTO readings (x) VALUES (1), (2);")) +
                "|1700000000000"}));
  }
  // A restart: nothing applied again (the seed rows are not duplicated).
  r = prepare_sense_db(db(), migrations(), kNowMs + 1);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->applied.empty());
  EXPECT_EQ(r->already, 2u);
  EXPECT_EQ(Conn(db()).one("SELECT count(*) FROM readings"), "2");
  // A third file later: only it.
  write("003_more.sql", "INSERT INTO readings (x) VALUES (3);");
  r = prepare_sense_db(db(), migrations(), kNowMs + 2);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->applied, (std::vector<std::string>{"003_more.sql"}));
  EXPECT_EQ(r->already, 2u);
  Conn c(db());
  EXPECT_EQ(c.rows("SELECT x FROM readings ORDER BY x"), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(c.one("SELECT applied_at_ms FROM _migrations WHERE name = '003_more.sql'"),
            "1700000000002");
}

TEST_F(SenseDbTest, NamesSortBytewise) {
  // Bytewise: "10" < "9" and "B" < "a". Each file appends its name.
  write("001.sql", "CREATE TABLE seen (i INTEGER PRIMARY KEY, name TEXT);");
  for (const char* n : {"9.sql", "10.sql", "a.sql", "B.sql"}) {
    write(n, std::string("INSERT INTO seen (name) VALUES ('") + n + "');");
  }
  auto r = prepare();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->applied, (std::vector<std::string>{"001.sql", "10.sql", "9.sql", "B.sql", "a.sql"}));
  EXPECT_EQ(Conn(db()).rows("SELECT name FROM seen ORDER BY i"),
            (std::vector<std::string>{"10.sql", "9.sql", "B.sql", "a.sql"}));
}

TEST_F(SenseDbTest, FailingFileRollsBackAloneAndIsRetried) {
  write("001_ok.sql", "CREATE TABLE a (x);");
  // Its first two statements succeed, the third is a syntax error.
  write("002_bad.sql", "CREATE TABLE b (x);\nINSERT INTO a VALUES (1);\nSELEC nonsense;\n");
  write("003_later.sql", "CREATE TABLE c (x);");
  auto r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migration_failed");
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  EXPECT_NE(r.status().message().find("002_bad.sql"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("syntax error"), std::string::npos) << r.status().message();
  {
    Conn c(db());
    EXPECT_TRUE(c.has_table("a"));                    // 001 stays
    EXPECT_EQ(c.one("SELECT count(*) FROM a"), "0");  // 002's insert rolled back
    EXPECT_FALSE(c.has_table("b"));                   // 002's create rolled back
    EXPECT_FALSE(c.has_table("c"));                   // 003 not applied
    EXPECT_EQ(c.rows("SELECT name FROM _migrations"), (std::vector<std::string>{"001_ok.sql"}));
  }
  // Still broken: the same error, nothing changes.
  r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migration_failed");
  // Fixed (it was never journaled, so editing it is allowed): 002 and 003 apply.
  write("002_bad.sql", "CREATE TABLE b (x);\nINSERT INTO a VALUES (1);\n");
  r = prepare();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->applied, (std::vector<std::string>{"002_bad.sql", "003_later.sql"}));
  EXPECT_EQ(r->already, 1u);
  Conn c(db());
  EXPECT_TRUE(c.has_table("b"));
  EXPECT_TRUE(c.has_table("c"));
  EXPECT_EQ(c.one("SELECT count(*) FROM a"), "1");
}

TEST_F(SenseDbTest, EditedAppliedMigrationIsRefused) {
  write("001_schema.sql", "CREATE TABLE readings (x);");
  ASSERT_TRUE(prepare().ok());
  write("001_schema.sql", "CREATE TABLE readings (x, y);");
  write("002_new.sql", "CREATE TABLE other (x);");
  auto r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migration_changed");
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_NE(r.status().message().find("001_schema.sql"), std::string::npos);
  ASSERT_NE(r.status().details().find("file_sha256"), nullptr);
  EXPECT_EQ(r.status().details().find("file_sha256")->as_string(),
            to_hex(sha256("CREATE TABLE readings (x, y);")));
  EXPECT_FALSE(Conn(db()).has_table("other"));  // nothing else was applied either
}

TEST_F(SenseDbTest, JournaledFileThatIsGoneIsFine) {
  write("001_a.sql", "CREATE TABLE a (x);");
  write("002_b.sql", "CREATE TABLE b (x);");
  ASSERT_TRUE(prepare().ok());
  fs::remove(dir_ / "migrations" / "001_a.sql");
  auto r = prepare();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->applied.empty());
  EXPECT_EQ(r->already, 1u);
}

TEST_F(SenseDbTest, TransactionControlInAFileIsRefused) {
  write("001_tx.sql", "BEGIN; CREATE TABLE a (x); COMMIT;");
  auto r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migration_failed");
  EXPECT_NE(r.status().message().find("must not contain BEGIN"), std::string::npos)
      << r.status().message();
  Conn c(db());
  EXPECT_FALSE(c.has_table("a"));
  EXPECT_EQ(c.one("SELECT count(*) FROM _migrations"), "0");
}

TEST_F(SenseDbTest, Limits) {
  write("001_big.sql", "-- " + std::string(kMigrationFileBytesMax, 'x') + "\n");
  auto r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migrations_too_large");
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  fs::remove(dir_ / "migrations" / "001_big.sql");
  for (std::size_t i = 0; i <= kMigrationFilesMax; ++i) {
    write("m" + std::to_string(i) + ".sql", "SELECT 1;");
  }
  r = prepare();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migrations_too_large");
  EXPECT_FALSE(fs::exists(db()));  // refused before the database was touched
}

TEST_F(SenseDbTest, MissingMigrationsDirectory) {
  auto r = prepare_sense_db(db(), (dir_ / "nope").string(), kNowMs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), "migrations_unreadable");
}

TEST_F(SenseDbTest, ReadOnlyPeerReadsButCannotWrite) {
  const std::string peer = (dir_ / "senses" / "disk.db").string();
  const std::string self = (dir_ / "senses" / "cleaner.db").string();
  write("001_schema.sql", "CREATE TABLE readings (x INTEGER NOT NULL);");
  write("002_seed.sql", "INSERT INTO readings (x) VALUES (1);");
  ASSERT_TRUE(prepare_sense_db(peer, migrations(), kNowMs).ok());
  ASSERT_TRUE(prepare_sense_db(self, "", kNowMs).ok());
  // A read-only connection needs the -wal and -shm files: they stay.
  EXPECT_TRUE(fs::exists(peer + "-wal"));
  EXPECT_TRUE(fs::exists(peer + "-shm"));

  // The owner (as the sense itself would) commits after the migrations and
  // keeps its connection open: the row is in the WAL, not yet checkpointed.
  Conn owner(peer);
  ASSERT_TRUE(owner.ok());
  ASSERT_EQ(owner.exec("INSERT INTO readings (x) VALUES (2)"), SQLITE_OK);

  const std::string peers =
      peer_dbs_value("cleaner", {{"disk", peer}, {"cleaner", self}, {"net", peer + ".other"}});
  ProcessSpec spec;
  spec.argv = {kScripts + "peer_access.py", "disk"};
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "CAIRN_SENSE_DB=" + self,
              "CAIRN_PEER_DBS=" + peers, "PYTHONDONTWRITEBYTECODE=1"};
  const ProcessResult run = run_process(spec);
  ASSERT_EQ(run.end, End::kExited) << run.error << run.err;
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto out = parse_json(run.out);
  ASSERT_TRUE(out.ok()) << run.out;
  EXPECT_EQ(to_json(*out->find("peers")), R"(["disk","net"])");  // never itself
  EXPECT_EQ(out->find("own")->as_string(), self);
  EXPECT_EQ(to_json(*out->find("rows")), "[1,2]");
  ASSERT_TRUE(out->find("insert_error")->is_string()) << run.out;
  EXPECT_EQ(out->find("insert_error")->as_string(), "attempt to write a readonly database");
  EXPECT_EQ(owner.rows("SELECT x FROM readings ORDER BY x"), (std::vector<std::string>{"1", "2"}));
}

TEST_F(SenseDbTest, ReadOnlyPeerOpensAfterEveryConnectionClosed) {
  write("001_schema.sql", "CREATE TABLE readings (x); INSERT INTO readings VALUES (7);");
  ASSERT_TRUE(prepare().ok());
  Conn ro(read_only_uri(db()), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(ro.one("SELECT x FROM readings"), "7");
  EXPECT_NE(ro.exec("INSERT INTO readings VALUES (8)"), SQLITE_OK);
  EXPECT_NE(ro.exec("PRAGMA journal_mode=DELETE"), SQLITE_OK);
}

TEST(ReadOnlyUri, PercentEncodesWhatUriFilenamesNeed) {
  EXPECT_EQ(read_only_uri("/data/senses/disk.db"), "file:/data/senses/disk.db?mode=ro");
  EXPECT_EQ(read_only_uri("/data/a b?c#d%e;f=g.db"),
            "file:/data/a%20b%3Fc%23d%25e%3Bf%3Dg.db?mode=ro");
  // Relative: made absolute.
  const std::string rel = read_only_uri("senses/x.db");
  EXPECT_EQ(rel, "file:" + (fs::current_path() / "senses/x.db").string() + "?mode=ro");
}

TEST(ReadOnlyUri, SqliteOpensTheEncodedName) {
  const fs::path dir = fs::temp_directory_path() / ("cairn uri ?#%; " + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "odd name#1.db").string();
  ASSERT_TRUE(prepare_sense_db(path, "", kNowMs).ok());
  {
    Conn ro(read_only_uri(path), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
    ASSERT_TRUE(ro.ok());
    EXPECT_EQ(ro.one("SELECT count(*) FROM _migrations"), "0");
  }
  fs::remove_all(dir);
}

TEST(PeerDbs, EveryOtherMemberSortedNeverSelf) {
  EXPECT_EQ(peer_dbs_value("b", {{"c", "/d/c.db"}, {"b", "/d/b.db"}, {"a", "/d/a.db"}}),
            "a=file:/d/a.db?mode=ro;c=file:/d/c.db?mode=ro");
  EXPECT_EQ(peer_dbs_value("a", {{"a", "/d/a.db"}}), "");
  EXPECT_EQ(peer_dbs_value("a", {}), "");
  const std::string v = peer_dbs_value("x", {{"y", "/d/semi;colon.db"}});
  EXPECT_EQ(v, "y=file:/d/semi%3Bcolon.db?mode=ro");
}

}  // namespace
}  // namespace cairn::senses
