// json_suite_http_test.cc — the JSONTestSuite parsing corpus
// (tests/data/JSONTestSuite/test_parsing, 318 files) through POST /v1/facts
// over a real socket, each file sent two ways:
//   whole:    the file is the request body;
//   embedded: the body is the bytes {"kind":"t","content": + file + }, so
//             invalid bytes stay invalid.
// y_ files parse (embedded: the fact is created and reads back equal to the
// file's value; whole: at most a schema error), n_ files are 400 invalid_json,
// and the 35 i_ files do exactly what the table in docs/json.md ("JSONTestSuite
// over HTTP") says — the test reads that table, so the docs cannot drift from
// the server. Every refused request leaves the state and the event sequence
// unchanged. One server and one keep-alive connection serve the whole suite;
// the client gives up on a reply after 10 s (a hang fails the test).
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "model/json_parse.h"
#include "server/refusal.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

const std::string kSuiteDir = std::string(CAIRN_TEST_DATA_DIR) + "/JSONTestSuite/test_parsing";
const std::string kJsonDoc = std::string(CAIRN_SOURCE_DIR) + "/docs/json.md";
constexpr int kReplyTimeoutMs = 10'000;

// Valid JSON that cairn refuses on purpose: a repeated key would make the
// hashed canonical form ambiguous (docs/json.md). Refused with duplicate_key.
const std::set<std::string> kDuplicateKeyFiles = {"y_object_duplicated_key.json",
                                                  "y_object_duplicated_key_and_value.json"};
// Invalid JSON whose nesting reaches depth_max (64) before the syntax error
// at its end: refused with json_too_deep (still 400; docs/json.md).
const std::set<std::string> kTooDeepFiles = {"n_structure_100000_opening_arrays.json",
                                             "n_structure_open_array_object.json"};

struct SuiteFile {
  std::string name;
  std::string bytes;
};

std::vector<SuiteFile> suite_files(char prefix) {
  std::vector<SuiteFile> out;
  DIR* dir = opendir(kSuiteDir.c_str());
  EXPECT_NE(dir, nullptr) << kSuiteDir;
  if (dir == nullptr) return out;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() > 5 && name[0] == prefix && name[1] == '_' &&
        name.compare(name.size() - 5, 5, ".json") == 0) {
      std::ifstream in(kSuiteDir + "/" + name, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      out.push_back({name, ss.str()});
    }
  }
  closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const SuiteFile& a, const SuiteFile& b) { return a.name < b.name; });
  return out;
}

std::string embedded(const std::string& bytes) {
  return R"({"kind":"t","content":)" + bytes + "}";
}

// "accepted" for 201/200, else "<status> `<code>`" — the cells of the table.
std::string cell(const HttpResult& r) {
  if (r.status == 201 || r.status == 200) return "accepted";
  return std::to_string(r.status) + " `" + r.code() + "`";
}

class JsonSuiteOverHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    srv_ = new TestServer();
    srv_->config.limits.caller_rate_per_s = 0;  // ~1,500 requests in a burst
    srv_->start();
  }
  static void TearDownTestSuite() {
    srv_->stop();
    srv_->remove_data();
    delete srv_;
    srv_ = nullptr;
  }
  void SetUp() override { conn_ = std::make_unique<HttpConn>(srv_->port, kReplyTimeoutMs); }

  HttpResult post(const std::string& body) {
    HttpResult r = conn_->request("POST", "/v1/facts", body);
    if (r.status == 0) conn_ = std::make_unique<HttpConn>(srv_->port, kReplyTimeoutMs);
    return r;
  }

  // The fact `r` created reads back with the value of `file` as its content.
  void expect_stored(const HttpResult& r, const SuiteFile& f) {
    const std::string id = str(r.json(), "id");
    ASSERT_EQ(id.size(), 64u) << r.body;
    const HttpResult g = conn_->request("GET", "/v1/facts/" + id);
    ASSERT_EQ(g.status, 200) << g.body;
    auto want = parse_json(f.bytes);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    const Json got = g.json();
    ASSERT_NE(got.find("content"), nullptr) << g.body;
    EXPECT_TRUE(*got.find("content") == *want) << f.name << ": " << g.body;
    EXPECT_EQ(str(got, "kind"), "t");
  }

  static TestServer* srv_;
  std::unique_ptr<HttpConn> conn_;
};

TestServer* JsonSuiteOverHttp::srv_ = nullptr;

TEST_F(JsonSuiteOverHttp, CorpusIsComplete) {
  EXPECT_EQ(suite_files('y').size(), 95u);
  EXPECT_EQ(suite_files('n').size(), 188u);
  EXPECT_EQ(suite_files('i').size(), 35u);
}

TEST_F(JsonSuiteOverHttp, EveryYFileParses) {
  const auto files = suite_files('y');
  ASSERT_FALSE(files.empty());
  for (const SuiteFile& f : files) {
    SCOPED_TRACE(f.name);
    const Snapshot before = snapshot(*conn_);
    const HttpResult whole = post(f.bytes);
    if (kDuplicateKeyFiles.count(f.name) != 0) {
      expect_error(whole, 400, "duplicate_key", "whole " + f.name);
      expect_error(post(embedded(f.bytes)), 400, "duplicate_key", "embedded " + f.name);
      expect_unchanged(*conn_, before, f.name);
      continue;
    }
    // A valid JSON text that is not a fact: a schema error, never a syntax error.
    ASSERT_EQ(whole.status, 400) << whole.body;
    EXPECT_TRUE(whole.code() == "invalid_field" || whole.code() == "unknown_field") << whole.body;
    expect_error(whole, 400, whole.code(), "whole " + f.name);
    expect_unchanged(*conn_, before, "whole " + f.name);

    const HttpResult emb = post(embedded(f.bytes));
    ASSERT_TRUE(emb.status == 201 || emb.status == 200) << emb.body;
    expect_stored(emb, f);
  }
}

TEST_F(JsonSuiteOverHttp, EveryNFileIsInvalidJson) {
  const auto files = suite_files('n');
  ASSERT_FALSE(files.empty());
  const Snapshot group_before = snapshot(*conn_);
  for (const SuiteFile& f : files) {
    const std::string code = kTooDeepFiles.count(f.name) != 0 ? "json_too_deep" : "invalid_json";
    const Snapshot before = snapshot(*conn_);
    expect_error(post(f.bytes), 400, code, "whole " + f.name);
    // Embedding cannot make an n_ file valid: the file is a complete value
    // position, and no n_ file is "<value>, <more members>".
    expect_error(post(embedded(f.bytes)), 400, code, "embedded " + f.name);
    expect_unchanged(*conn_, before, f.name);
  }
  expect_unchanged(*conn_, group_before, "all n_ files");
}

// The rows of the "JSONTestSuite over HTTP" table in docs/json.md:
// file (without .json) → {whole, embedded}.
std::map<std::string, std::pair<std::string, std::string>> documented_i_table() {
  std::ifstream in(kJsonDoc);
  EXPECT_TRUE(in.good()) << kJsonDoc;
  std::map<std::string, std::pair<std::string, std::string>> rows;
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## JSONTestSuite over HTTP";
    if (!in_section || line.rfind("| `i_", 0) != 0) continue;
    std::vector<std::string> cells;
    std::size_t pos = 1;
    while (pos < line.size()) {
      const std::size_t bar = line.find(" |", pos);
      if (bar == std::string::npos) break;
      std::string c = line.substr(pos, bar - pos);
      while (!c.empty() && c.front() == ' ') c.erase(0, 1);
      cells.push_back(c);
      pos = bar + 2;
    }
    if (cells.size() != 3) {
      ADD_FAILURE() << "malformed row: " << line;
      continue;
    }
    const std::string file = cells[0].substr(1, cells[0].size() - 2);  // strip the backticks
    rows[file] = {cells[1], cells[2]};
  }
  return rows;
}

TEST_F(JsonSuiteOverHttp, IFilesDoWhatDocsJsonMdSays) {
  const auto files = suite_files('i');
  ASSERT_FALSE(files.empty());
  const auto doc = documented_i_table();
  std::string table;  // what the server does, as table rows (printed on a mismatch)
  bool match = doc.size() == files.size();
  for (const SuiteFile& f : files) {
    SCOPED_TRACE(f.name);
    const std::string stem = f.name.substr(0, f.name.size() - 5);
    const Snapshot before = snapshot(*conn_);
    const HttpResult whole = post(f.bytes);
    ASSERT_NE(whole.status, 0) << "no reply (crash or hang)";
    if (whole.status >= 400) {
      expect_error(whole, whole.status, whole.code(), "whole " + f.name);
      EXPECT_LT(whole.status, 500) << whole.body;
      expect_unchanged(*conn_, before, "whole " + f.name);
    }
    const Snapshot mid = snapshot(*conn_);
    const HttpResult emb = post(embedded(f.bytes));
    ASSERT_NE(emb.status, 0) << "no reply (crash or hang)";
    if (emb.status >= 400) {
      expect_error(emb, emb.status, emb.code(), "embedded " + f.name);
      EXPECT_LT(emb.status, 500) << emb.body;
      expect_unchanged(*conn_, mid, "embedded " + f.name);
    } else {
      expect_stored(emb, f);
    }
    const std::string w = cell(whole);
    const std::string e = cell(emb);
    table += "| `" + stem + "` | " + w + " | " + e + " |\n";
    auto it = doc.find(stem);
    if (it == doc.end()) {
      ADD_FAILURE() << stem << " is missing from the table in docs/json.md";
      match = false;
      continue;
    }
    EXPECT_EQ(it->second.first, w) << stem << " sent whole";
    EXPECT_EQ(it->second.second, e) << stem << " embedded";
    match = match && it->second.first == w && it->second.second == e;
  }
  EXPECT_EQ(doc.size(), files.size()) << "the table lists files that are not in the corpus";
  if (!match) {
    ADD_FAILURE() << "docs/json.md disagrees with the server; the server's table is:\n"
                  << "| file | whole body | embedded as content |\n|---|---|---|\n"
                  << table;
  }
}

}  // namespace
}  // namespace cairn::testing
