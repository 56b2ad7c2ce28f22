// Log records on a real SQLite file (server/log_records.h): order, filters,
// paging, refusals, and daily archival with an injected clock.
#include "server/log_records.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "model/json_parse.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using server::day_name;
using server::kDayMs;
using server::LogRecords;

class LogRecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    open();
  }
  void TearDown() override {
    logs_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    logs_.reset();
    auto l = LogRecords::open(dir_ + "/logs.db", [this] { return now_; });
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    logs_ = std::move(l).value();
  }
  std::vector<server::LogRecord> all(std::string_view source = {}) {
    auto p = logs_->list(0, source, 1'000);
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    return p.ok() ? p->records : std::vector<server::LogRecord>{};
  }
  std::string archive_dir() const { return dir_ + "/archive/logs"; }

  std::string dir_;
  std::int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<LogRecords> logs_;
};

TEST_F(LogRecordsTest, AppendsAreOrderedAndTheClockNeverRunsBackwards) {
  std::vector<std::int64_t> ids;
  const std::int64_t clock[] = {100, 200, 150, 150, 300};  // the wall clock steps back once
  for (int i = 0; i < 5; ++i) {
    now_ = 1'700'000'000'000 + clock[i];
    auto a = logs_->append(i % 2 == 0 ? "sense:disk" : "workflow:clean", "run.failed",
                           "ref-" + std::to_string(i), Json(JsonObject{{"n", Json(i)}}));
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ids.push_back(a->id);
  }
  const auto recs = all();
  ASSERT_EQ(recs.size(), 5u);
  const std::int64_t want_ts[] = {100, 200, 200, 200, 300};  // max(now, last ts)
  for (std::size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].id, ids[i]);
    EXPECT_EQ(recs[i].ts, 1'700'000'000'000 + want_ts[i]);
    if (i > 0) {
      EXPECT_GT(recs[i].id, recs[i - 1].id);
    }
    EXPECT_EQ(recs[i].ref, "ref-" + std::to_string(i));
    EXPECT_EQ(recs[i].payload, "{\"n\":" + std::to_string(i) + "}");
  }
  // Source filter (exact).
  const auto disk = all("sense:disk");
  ASSERT_EQ(disk.size(), 3u);
  for (const auto& r : disk) EXPECT_EQ(r.source, "sense:disk");
  EXPECT_TRUE(all("sense").empty());
  // Paging: full pages name their last id; the last page has no next.
  auto p1 = logs_->list(0, "", 2);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->records.size(), 2u);
  ASSERT_TRUE(p1->next.has_value());
  EXPECT_EQ(*p1->next, ids[1]);
  auto p2 = logs_->list(*p1->next, "", 2);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->records.size(), 2u);
  EXPECT_EQ(p2->records[0].id, ids[2]);
  auto p3 = logs_->list(*p2->next, "", 2);
  ASSERT_TRUE(p3.ok());
  ASSERT_EQ(p3->records.size(), 1u);
  EXPECT_EQ(p3->records[0].id, ids[4]);
  EXPECT_FALSE(p3->next.has_value());
  // Reopened, the order and the clock floor survive.
  open();
  now_ = 1'700'000'000'000;
  auto a = logs_->append("sense:disk", "x", "", Json());
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->id, ids[4]);
  EXPECT_EQ(a->ts, 1'700'000'000'300);
}

TEST_F(LogRecordsTest, BadInputIsATypedErrorAndWritesNothing) {
  struct Case {
    std::string source, type, ref;
    Json payload;
    Code code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"", "t", "", Json(), Code::kInvalid, "source"},
      {"has space", "t", "", Json(), Code::kInvalid, "source"},
      {"sense:é", "t", "", Json(), Code::kInvalid, "source"},
      {std::string(129, 'a'), "t", "", Json(), Code::kTooLarge, "source"},
      {"s", "", "", Json(), Code::kInvalid, "type"},
      {"s", "a\nb", "", Json(), Code::kInvalid, "type"},
      {"s", std::string(129, 't'), "", Json(), Code::kTooLarge, "type"},
      {"s", "t", std::string(257, 'r'), Json(), Code::kTooLarge, "ref"},
      {"s", "t", "\xff", Json(), Code::kInvalid, "ref"},
      {"s", "t", "", Json(std::string(64 * 1024, 'p')), Code::kTooLarge, "payload"},
  };
  for (const Case& c : cases) {
    auto a = logs_->append(c.source, c.type, c.ref, c.payload);
    ASSERT_FALSE(a.ok()) << c.field;
    EXPECT_EQ(a.status().code(), c.code) << c.field << ": " << a.status().to_string();
    EXPECT_EQ(a.status().reason(), c.code == Code::kTooLarge ? "too_large" : "invalid_field");
    const Json* f = a.status().details().find("field");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->as_string(), c.field);
  }
  EXPECT_TRUE(all().empty());
  // The limits are inclusive.
  EXPECT_TRUE(logs_
                  ->append(std::string(128, 'a'), std::string(128, 'b'), std::string(256, 'c'),
                           Json(std::string(64 * 1024 - 2, 'p')))
                  .ok());
  EXPECT_EQ(all().size(), 1u);
}

TEST_F(LogRecordsTest, ArchivesWholeDueDaysToFilesThenDeletesThem) {
  const std::int64_t today = 20'000;  // 2024-10-04
  now_ = today * kDayMs + 12 * 3'600'000;
  // Three old days (one with two records), an empty day between them, a day
  // inside the retention, and today.
  struct Old {
    std::int64_t day, offset_ms;
    std::string source;
  };
  const std::vector<Old> old = {{today - 10, 5, "a"},
                                {today - 10, kDayMs - 1, "b"},
                                {today - 9, 0, "a"},
                                {today - 7, 3'600'000, "c"}};
  std::vector<server::LogRecord> expect;
  int i = 0;
  for (const Old& o : old) {
    const Json payload(JsonObject{{"i", Json(i)}, {"s", Json("x\"y")}});
    auto a = logs_->append_at_for_test(o.day * kDayMs + o.offset_ms, o.source, "t.old",
                                       "r" + std::to_string(i), payload);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    expect.push_back({a->id, a->ts, o.source, "t.old", "r" + std::to_string(i), to_json(payload)});
    ++i;
  }
  ASSERT_TRUE(logs_->append_at_for_test((today - 1) * kDayMs, "a", "t.recent", "", Json()).ok());
  ASSERT_TRUE(logs_->append("a", "t.today", "", Json()).ok());

  // Retention 2 days: the cutoff is today-2 12:00, so days up to today-3 are due.
  auto r = logs_->archive(now_, 2, archive_dir());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->days, (std::vector<std::string>{day_name(today - 10), day_name(today - 9),
                                               day_name(today - 7)}));
  EXPECT_EQ(r->records, 4u);
  ASSERT_TRUE(r->watermark.has_value());
  EXPECT_EQ(*r->watermark, day_name(today - 3));
  EXPECT_EQ(day_name(today - 3), "2024-10-01");
  auto w = logs_->watermark();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->value_or(""), "2024-10-01");

  // The files, byte for byte: one compact object per line, in id order.
  auto line = [](const server::LogRecord& rec) {
    return to_json(server::log_record_to_json(rec)) + "\n";
  };
  EXPECT_EQ(read_all(archive_dir() + "/" + day_name(today - 10) + ".jsonl"),
            line(expect[0]) + line(expect[1]));
  EXPECT_EQ(read_all(archive_dir() + "/" + day_name(today - 9) + ".jsonl"), line(expect[2]));
  EXPECT_EQ(read_all(archive_dir() + "/" + day_name(today - 7) + ".jsonl"), line(expect[3]));
  EXPECT_EQ(line(expect[0]), "{\"id\":" + std::to_string(expect[0].id) +
                                 ",\"ts\":" + std::to_string(expect[0].ts) +
                                 ",\"source\":\"a\",\"type\":\"t.old\",\"ref\":\"r0\","
                                 "\"payload\":{\"i\":0,\"s\":\"x\\\"y\"}}\n");
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(archive_dir())) {
    files.insert(e.path().filename().string());
  }
  EXPECT_EQ(files,
            (std::set<std::string>{"2024-09-24.jsonl", "2024-09-25.jsonl", "2024-09-27.jsonl"}));
  // The archived records are gone; the recent ones stay.
  const auto left = all();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].type, "t.recent");
  EXPECT_EQ(left[1].type, "t.today");

  // Again: nothing is due, nothing changes.
  auto again = logs_->archive(now_, 2, archive_dir());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->days.empty());
  EXPECT_EQ(again->records, 0u);
  EXPECT_EQ(again->watermark.value_or(""), "2024-10-01");
  EXPECT_EQ(all().size(), 2u);
  EXPECT_EQ(read_all(archive_dir() + "/" + day_name(today - 9) + ".jsonl"), line(expect[2]));

  // A row inside an archived day (append never makes one) goes with the
  // next archived day instead of being lost.
  auto late = logs_->append_at_for_test((today - 8) * kDayMs, "late", "t", "", Json());
  ASSERT_TRUE(late.ok());
  now_ += 2 * kDayMs;  // today-2 and today-1 become due
  auto next = logs_->archive(now_, 2, archive_dir());
  ASSERT_TRUE(next.ok()) << next.status().to_string();
  EXPECT_EQ(next->days, (std::vector<std::string>{day_name(today - 2), day_name(today - 1)}));
  EXPECT_EQ(next->records, 2u);
  const std::string f = read_all(archive_dir() + "/" + day_name(today - 2) + ".jsonl");
  EXPECT_NE(f.find("\"source\":\"late\""), std::string::npos) << f;
  const std::string g = read_all(archive_dir() + "/" + day_name(today - 1) + ".jsonl");
  EXPECT_NE(g.find("\"type\":\"t.recent\""), std::string::npos) << g;
  EXPECT_EQ(all().size(), 1u);

  // An append after archival never lands inside an archived day, even with
  // the clock set back.
  now_ = (today - 5) * kDayMs;
  auto after = logs_->append("a", "t", "", Json());
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->ts, today * kDayMs);
}

TEST_F(LogRecordsTest, EmptyDaysMoveTheWatermarkWithoutFiles) {
  now_ = 20'000 * kDayMs;
  auto none = logs_->archive(now_, 30, archive_dir());
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->watermark.has_value());  // nothing was ever archived
  EXPECT_FALSE(std::filesystem::exists(archive_dir()));
  ASSERT_TRUE(logs_->append_at_for_test((20'000 - 40) * kDayMs, "a", "t", "", Json()).ok());
  auto r = logs_->archive(now_, 30, archive_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->days, std::vector<std::string>{day_name(20'000 - 40)});
  EXPECT_EQ(r->watermark.value_or(""), day_name(20'000 - 31));
  now_ += 3 * kDayMs;
  r = logs_->archive(now_, 30, archive_dir());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->days.empty());
  EXPECT_EQ(r->watermark.value_or(""), day_name(20'000 - 28));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(archive_dir()),
                          std::filesystem::directory_iterator()),
            1);
  auto bad = logs_->archive(now_, -1, archive_dir());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
}

TEST(LogDays, NamesAreUtcDates) {
  EXPECT_EQ(day_name(0), "1970-01-01");
  EXPECT_EQ(day_name(19'782), "2024-02-29");
  EXPECT_EQ(server::parse_day_name("2024-02-29").value_or(-1), 19'782);
  EXPECT_FALSE(server::parse_day_name("2023-02-29").has_value());
  EXPECT_FALSE(server::parse_day_name("2024-2-29").has_value());
  EXPECT_EQ(server::day_of(-1), -1);
  EXPECT_EQ(server::day_of(kDayMs - 1), 0);
  EXPECT_EQ(server::day_of(kDayMs), 1);
}

}  // namespace
}  // namespace cairn::testing
