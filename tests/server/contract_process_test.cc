// contract_process_test.cc — the governance contract through the real cairnd
// binary: a rule turns a posted fact into a deny hint that blocks claims
// until it expires; the schema gate (403); result checks (422, then success);
// SIGHUP with a broken file keeps the old contract, with a valid one changes
// behaviour; an invalid contract refuses the start.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "crash/cairnd_process.h"
#include "model/sha256.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

constexpr char kWorkerToken[] = "worker-secret-token";
constexpr char kAdminToken[] = "admin-secret-token";

// Rules: a severe incident denies deploys for 1.5 s. Schema: agents post
// incidents, seeds and ci.* as JSON; admins anything. Results of score
// intents must be 0 < value < 100.
constexpr char kContractV1[] = R"(version: 1
rules:
  - name: incident-blocks-deploys
    when:
      kind: incident
      match:
        - {path: $.severity, op: ge, value: 3}
    emit: {effect: deny, ttl_ms: 1500, selector: {kind: deploy}, reason: an incident is open}
schema:
  agent: {kinds: [incident, outage, seed, score, "ci.*"], content_types: [application/json]}
  admin: {kinds: ["*"], content_types: ["*"]}
result_checks:
  - intent_kind: score
    checks:
      - {path: $.value, op: positive}
      - {path: $.value, op: lt, value: 100}
)";

// Broken at line 5 (an unknown effect).
constexpr char kContractBroken[] = R"(version: 1
rules:
  - name: incident-blocks-deploys
    when: {kind: incident}
    emit: {effect: explode, ttl_ms: 1500}
)";

// Outages (not incidents) defer releases; no schema gate, no result checks.
constexpr char kContractV2[] = R"(rules:
  - name: outage-defers-releases
    when: {kind: outage}
    emit: {effect: defer, defer_ms: 60000, ttl_ms: 60000, selector: {kind: release}}
)";

class ContractProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    contract_ = dir_ + "/contract.yaml";
    log_ = dir_ + "/cairnd.log";
    write_file(contract_, kContractV1);
    // A relative contract path resolves against the config file's directory.
    write_file(dir_ + "/cairn.yaml",
               "contract: contract.yaml\ntokens:\n  - {name: worker, sha256: " +
                   to_hex(sha256(kWorkerToken)) + ", scopes: [agent]}\n  - {name: boss, sha256: " +
                   to_hex(sha256(kAdminToken)) + ", scopes: [admin]}\n");
    proc_ = std::make_unique<CairndProcess>(
        CAIRND_PATH, dir_ + "/data", log_,
        std::vector<std::string>{"--config", dir_ + "/cairn.yaml", "--log-level", "info"});
    const std::string err = proc_->start();
    ASSERT_EQ(err, "") << err;
    port_ = proc_->port();
  }
  void TearDown() override {
    if (proc_ && proc_->running()) {
      EXPECT_EQ(proc_->terminate(20'000), "");
    }
    std::filesystem::remove_all(dir_);
  }

  HttpResult call(const std::string& method, const std::string& path, const std::string& body,
                  const char* token = kWorkerToken) {
    return http(
        port_, method, path, body,
        {{"Authorization", std::string("Bearer ") + token}, {"Content-Type", "application/json"}});
  }
  HttpResult post(const std::string& path, const std::string& body,
                  const char* token = kWorkerToken) {
    return call("POST", path, body, token);
  }
  HttpResult get(const std::string& path) { return call("GET", path, "", kAdminToken); }

  // The ids in a reply's "hints".
  static std::vector<std::string> hints_of(const HttpResult& r) {
    std::vector<std::string> out;
    const Json j = r.json();
    const Json* h = j.find("hints");
    if (h == nullptr || !h->is_array()) {
      ADD_FAILURE() << "no hints in " << r.body;
      return out;
    }
    for (const Json& id : h->as_array()) out.push_back(id.as_string());
    return out;
  }

  std::string intent(const std::string& kind, int n) {
    const HttpResult f =
        post("/v1/facts", R"({"kind":"seed","content":)" + std::to_string(n) + "}");
    EXPECT_EQ(f.status, 201) << f.body;
    const HttpResult i = post("/v1/intents", R"({"kind":")" + kind + R"(","from_facts":[")" +
                                                 str(f.json(), "id") + R"("]})");
    EXPECT_EQ(i.status, 201) << i.body;
    return str(i.json(), "id");
  }

  std::string state_sha() {
    const Json s = get("/v1/state").json();
    const Json* c = s.find("contract");
    return c == nullptr ? std::string() : str(*c, "sha256");
  }

  std::string metric(const std::string& sample) {
    const std::string m = get("/metrics").body;
    const auto line = m.find("\n" + sample + " ");
    if (line == std::string::npos) return "";
    const auto at = line + 1;
    const auto end = m.find('\n', at);
    return m.substr(at + sample.size() + 1, end - at - sample.size() - 1);
  }

  std::string dir_, contract_, log_;
  std::unique_ptr<CairndProcess> proc_;
  std::uint16_t port_ = 0;
};

TEST_F(ContractProcess, ARuleTurnsAFactIntoADenyHintUntilItExpires) {
  // The loaded contract is visible: file, digest of its bytes, counts.
  const Json state = get("/v1/state").json();
  const Json* c = state.find("contract");
  ASSERT_NE(c, nullptr) << to_json(state);
  EXPECT_EQ(str(*c, "sha256"), to_hex(sha256(kContractV1)));
  EXPECT_EQ(num(*c, "rules"), 1);
  EXPECT_EQ(num(*c, "result_checks"), 1);
  EXPECT_EQ(std::filesystem::path(str(*c, "file")), std::filesystem::path(contract_));

  const std::string deploy = intent("deploy", 1);
  const HttpResult mild = post("/v1/facts", R"({"kind":"incident","content":{"severity":2}})");
  ASSERT_EQ(mild.status, 201);
  EXPECT_TRUE(hints_of(mild).empty());

  const HttpResult f = post("/v1/facts", R"({"kind":"incident","content":{"severity":5}})");
  ASSERT_EQ(f.status, 201) << f.body;
  const std::vector<std::string> ids = hints_of(f);
  ASSERT_EQ(ids.size(), 1u);
  const HttpResult h = get("/v1/hints/" + ids[0]);
  ASSERT_EQ(h.status, 200) << h.body;
  const Json hint = h.json();
  EXPECT_EQ(to_json(*hint.find("derived_from")), "[\"" + str(f.json(), "id") + "\"]");
  EXPECT_EQ(str(hint, "creator"), "contract");
  EXPECT_EQ(num(hint, "expires_at"), num(f.json(), "recorded_at") + 1'500);

  // Posting the same fact again records nothing and emits nothing.
  const HttpResult again = post("/v1/facts", R"({"kind":"incident","content":{"severity":5}})");
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(hints_of(again).empty());

  const HttpResult denied = post("/v1/intents/" + deploy + "/claim", "{}");
  EXPECT_EQ(denied.status, 409) << denied.body;
  EXPECT_EQ(denied.code(), "denied_by_hint");
  EXPECT_EQ(str(*denied.json().find("error")->find("details"), "hint"), ids[0]);

  // Once the hint expires the claim goes through.
  std::this_thread::sleep_for(std::chrono::milliseconds(1'600));
  const HttpResult ok = post("/v1/intents/" + deploy + "/claim", "{}");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(ContractProcess, TheSchemaGateRefusesWhatAScopeMayNotPost) {
  const std::uint64_t seq = static_cast<std::uint64_t>(num(get("/v1/state").json(), "last_seq"));
  const HttpResult kind = post("/v1/facts", R"({"kind":"deploy.log","content":{}})");
  EXPECT_EQ(kind.status, 403) << kind.body;
  EXPECT_EQ(kind.code(), "schema_denied");
  const Json d = *kind.json().find("error")->find("details");
  EXPECT_EQ(str(d, "kind"), "deploy.log");
  EXPECT_EQ(str(d, "content_type"), "application/json");
  EXPECT_EQ(str(d, "scope"), "agent");
  const HttpResult type =
      post("/v1/facts", R"({"kind":"ci.lint","content":"ok","content_type":"text/plain"})");
  EXPECT_EQ(type.status, 403) << type.body;
  EXPECT_EQ(type.code(), "schema_denied");
  EXPECT_EQ(static_cast<std::uint64_t>(num(get("/v1/state").json(), "last_seq")), seq);
  // Allowed patterns, and the admin scope's "*".
  EXPECT_EQ(post("/v1/facts", R"({"kind":"ci.lint","content":"ok"})").status, 201);
  EXPECT_EQ(post("/v1/facts", R"({"kind":"deploy.log","content":{}})", kAdminToken).status, 201);

  // A conclude result is a fact the caller posts: gated the same way, and the
  // intent stays claimed.
  const std::string job = intent("build", 2);
  const HttpResult c = post("/v1/intents/" + job + "/claim", "{}");
  ASSERT_EQ(c.status, 200);
  const HttpResult r = post("/v1/intents/" + job + "/conclude",
                            R"({"epoch":1,"result":{"kind":"binary","content":{}}})");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.code(), "schema_denied");
  EXPECT_EQ(str(get("/v1/intents/" + job).json(), "state"), "claimed");
}

TEST_F(ContractProcess, AFailingResultIs422AndTheIntentStaysClaimed) {
  const std::string job = intent("score", 3);
  const HttpResult c = post("/v1/intents/" + job + "/claim", "{}");
  ASSERT_EQ(c.status, 200);
  const std::int64_t epoch = num(c.json(), "epoch");
  const std::string conclude = "/v1/intents/" + job + "/conclude";
  const HttpResult bad =
      post(conclude, R"({"epoch":)" + std::to_string(epoch) +
                         R"(,"result":{"kind":"score","content":{"value":250}}})");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(bad.code(), "result_check_failed");
  const Json d = *bad.json().find("error")->find("details");
  EXPECT_EQ(str(d, "path"), "$.value");
  EXPECT_EQ(str(d, "op"), "lt");
  EXPECT_EQ(num(d, "line"), 13);
  const Json in = get("/v1/intents/" + job).json();
  EXPECT_EQ(str(in, "state"), "claimed");
  EXPECT_EQ(str(in, "holder"), "worker");
  EXPECT_EQ(num(in, "epoch"), epoch);

  const HttpResult good =
      post(conclude, R"({"epoch":)" + std::to_string(epoch) +
                         R"(,"result":{"kind":"score","content":{"value":42}}})");
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(str(get("/v1/intents/" + job).json(), "state"), "concluded");
}

TEST_F(ContractProcess, SighupKeepsTheOldContractOnABrokenFileAndTakesAValidOne) {
  const std::string v1 = to_hex(sha256(kContractV1));
  ASSERT_EQ(state_sha(), v1);

  write_file(contract_, kContractBroken);
  ASSERT_EQ(::kill(proc_->pid(), SIGHUP), 0);
  ASSERT_TRUE(
      eventually([&] { return metric("cairn_contract_reloads_total{result=\"error\"}") == "1"; }));
  const std::string log = read_all(log_);
  EXPECT_NE(log.find("contract reload failed"), std::string::npos) << log;
  EXPECT_NE(log.find("contract.yaml:5: rules[0].emit.effect"), std::string::npos) << log;
  EXPECT_EQ(state_sha(), v1);
  // The old rule still fires, and the old gate still holds.
  EXPECT_EQ(hints_of(post("/v1/facts", R"({"kind":"incident","content":{"severity":9}})")).size(),
            1u);
  EXPECT_EQ(post("/v1/facts", R"({"kind":"deploy.log","content":1})").status, 403);

  write_file(contract_, kContractV2);
  ASSERT_EQ(::kill(proc_->pid(), SIGHUP), 0);
  const std::string v2 = to_hex(sha256(kContractV2));
  ASSERT_TRUE(eventually([&] { return state_sha() == v2; }));
  EXPECT_EQ(metric("cairn_contract_reloads_total{result=\"ok\"}"), "1");
  EXPECT_EQ(metric("cairn_contract_rules"), "1");
  EXPECT_NE(read_all(log_).find("contract reloaded"), std::string::npos);
  // The new rules: incidents emit nothing, outages defer releases.
  EXPECT_TRUE(
      hints_of(post("/v1/facts", R"({"kind":"incident","content":{"severity":10}})")).empty());
  const std::string release = intent("release", 4);
  ASSERT_EQ(post("/v1/intents/" + release + "/claim", "{}").status, 200);
  ASSERT_EQ(post("/v1/intents/" + release + "/release", R"({"epoch":1})").status, 200);
  const HttpResult outage = post("/v1/facts", R"({"kind":"outage","content":{}})");
  ASSERT_EQ(hints_of(outage).size(), 1u);
  const HttpResult deferred = post("/v1/intents/" + release + "/claim", "{}");
  EXPECT_EQ(deferred.code(), "deferred_by_hint") << deferred.body;
  // No schema section now: nothing is gated; no result checks either.
  EXPECT_EQ(post("/v1/facts", R"({"kind":"deploy.log","content":2})").status, 201);
  const std::string job = intent("score", 5);
  ASSERT_EQ(post("/v1/intents/" + job + "/claim", "{}").status, 200);
  EXPECT_EQ(post("/v1/intents/" + job + "/conclude",
                 R"({"epoch":1,"result":{"kind":"score","content":{"value":250}}})")
                .status,
            200);
}

TEST(ContractProcessStart, AnInvalidContractRefusesTheStart) {
  const std::string dir = make_temp_dir();
  const std::string contract = dir + "/bad-contract.yaml";
  write_file(contract, kContractBroken);
  const std::string log = dir + "/stderr";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    const std::string data = dir + "/data";
    ::execl(CAIRND_PATH, "cairnd", "--data", data.c_str(), "--listen", "127.0.0.1:0", "--contract",
            contract.c_str(), "--log-level", "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(WEXITSTATUS(status), 127);
  const std::string err = read_all(log);
  EXPECT_NE(err.find("bad-contract.yaml:5: rules[0].emit.effect"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::testing
