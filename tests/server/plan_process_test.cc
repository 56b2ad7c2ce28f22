// plan_process_test.cc — the admission planner through the real cairnd binary
// (lanes configured in cairn.yaml, SQLite in a temp directory, real sockets):
// two providers of one lane family keep separate caps; a `kind:K` dependency
// defers an intent and the fact wakes a long-polling agent (wake-up latency
// measured and printed, not asserted); an unconfigured lane is loud (plan
// reason, metric, log line); stale and coalesced intents over HTTP (states,
// events, plan); GET /v1/plan is canonical JSON and `cairn plan --json`
// prints the server's bytes unchanged.
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <vector>

#include "crash/cairnd_process.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The plan's bytes with its one `"now_ms":N` member cut out: the rest of a
// plan of an unchanged state (nothing claimed, nothing turning stale) does
// not depend on the time it is computed at.
std::string without_now(const std::string& plan) {
  const std::string key = "\"now_ms\":";
  const auto at = plan.find(key);
  EXPECT_NE(at, std::string::npos) << plan;
  if (at == std::string::npos) return plan;
  EXPECT_EQ(plan.find(key, at + 1), std::string::npos) << "two now_ms members: " << plan;
  auto end = at + key.size();
  while (end < plan.size() && plan[end] >= '0' && plan[end] <= '9') ++end;
  if (end < plan.size() && plan[end] == ',') ++end;
  return plan.substr(0, at) + plan.substr(end);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

class PlanProcess : public ::testing::Test {
 protected:
  void start(const std::string& yaml) {
    dir_ = make_temp_dir();
    log_ = dir_ + "/cairnd.log";
    write_file(dir_ + "/cairn.yaml", yaml);
    proc_ =
        std::make_unique<CairndProcess>(CAIRND_PATH, dir_ + "/data", log_,
                                        std::vector<std::string>{"--config", dir_ + "/cairn.yaml"});
    const std::string err = proc_->start();
    ASSERT_EQ(err, "") << err;
    port_ = proc_->port();
    seed_ = fact("seed", "1");
  }
  void TearDown() override {
    if (proc_ && proc_->running()) {
      EXPECT_EQ(proc_->terminate(20'000), "");
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  HttpResult post(const std::string& path, const std::string& body) {
    return http(port_, "POST", path, body, {{"Content-Type", "application/json"}});
  }
  HttpResult get(const std::string& path) { return http(port_, "GET", path); }

  std::string fact(const std::string& kind, const std::string& content) {
    const HttpResult f = post("/v1/facts", R"({"kind":")" + kind + R"(","content":)" + content +
                                               R"(,"creator":"tester"})");
    EXPECT_TRUE(f.status == 201 || f.status == 200) << f.body;
    return str(f.json(), "id");
  }
  // Creates intent `id` of kind job from the seed fact; `extra` adds members.
  HttpResult create(const std::string& id, const std::string& extra = "") {
    const HttpResult r =
        post("/v1/intents",
             R"({"id":")" + id + R"(","kind":"job","from_facts":[")" + seed_ + "\"]" + extra + "}");
    EXPECT_TRUE(r.status == 201 || r.status == 200) << id << ": " << r.body;
    return r;
  }
  std::string state_of(const std::string& id) {
    return str(get("/v1/intents/" + id).json(), "state");
  }

  // POST /v1/claims for `agent`; the claimed intents' JSON.
  std::vector<Json> claim(const std::string& agent, int wait_ms = 0) {
    const HttpResult r =
        post("/v1/claims", R"({"agent":")" + agent + R"(","wait_ms":)" + std::to_string(wait_ms) +
                               R"(,"lease_ttl_ms":60000})");
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<Json> out;
    const Json j = r.json();
    if (const Json* c = j.find("claims"); c != nullptr && c->is_array()) {
      for (const Json& e : c->as_array()) out.push_back(e);
    }
    return out;
  }

  Json plan() {
    const HttpResult r = get("/v1/plan");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json();
  }
  // id → reason text of every open/deferred intent in the plan.
  std::map<std::string, std::string> reasons() {
    std::map<std::string, std::string> out;
    const Json p = plan();
    if (const Json* in = p.find("intents"); in != nullptr && in->is_array()) {
      for (const Json& d : in->as_array()) out[str(d, "id")] = str(d, "text");
    }
    return out;
  }
  Json plan_lane(const std::string& key) {
    const Json p = plan();
    if (const Json* ls = p.find("lanes"); ls != nullptr && ls->is_array()) {
      for (const Json& l : ls->as_array()) {
        if (str(l, "lane") == key) return l;
      }
    }
    ADD_FAILURE() << "no lane " << key << " in the plan";
    return Json::object();
  }

  // The value of one sample of GET /metrics ("" when absent).
  std::string metric(const std::string& sample) {
    const std::string m = get("/metrics").body;
    const auto line = m.find("\n" + sample + " ");
    if (line == std::string::npos) return "";
    const auto at = line + 1 + sample.size() + 1;
    return m.substr(at, m.find('\n', at) - at);
  }

  // Events of `type` about `subject`, from the whole log.
  std::vector<Json> events(const std::string& type, const std::string& subject) {
    std::vector<Json> out;
    const Json page = get("/v1/events?limit=1000").json();
    if (const Json* es = page.find("events"); es != nullptr && es->is_array()) {
      for (const Json& e : es->as_array()) {
        if (str(e, "type") == type && str(e, "subject") == subject) out.push_back(e);
      }
    }
    return out;
  }

  std::string dir_, log_, seed_;
  std::unique_ptr<CairndProcess> proc_;
  std::uint16_t port_ = 0;
};

std::string provider_of(const Json& claim) {
  const Json* in = claim.find("intent");
  return in == nullptr ? std::string() : str(*in, "provider");
}

TEST_F(PlanProcess, TwoProvidersOfOneLaneFamilyKeepSeparateCaps) {
  start(
      "lanes:\n"
      "  llm/openai: {max_concurrency: 2}\n"
      "  llm/anthropic: {max_concurrency: 2, duration_ms: 6000}\n");
  for (int i = 1; i <= 5; ++i) {
    create("o" + std::to_string(i), R"(,"lane":"llm","provider":"openai")");
    create("a" + std::to_string(i), R"(,"lane":"llm","provider":"anthropic")");
  }
  // Before any claim: two admitted per provider, three queued in wave 1 each.
  {
    const Json p = plan();
    EXPECT_EQ(p.find("admitted")->size(), 4u) << to_json(p);
    const Json openai = plan_lane("llm/openai");
    EXPECT_EQ(num(openai, "admitted"), 2);
    EXPECT_EQ(num(openai, "queued"), 3);
    EXPECT_EQ(num(openai, "max_concurrency"), 2);
    EXPECT_EQ(num(plan_lane("llm/anthropic"), "waves"), 3);  // 5 intents, 2 at a time
  }

  // Four agents claim one each: exactly two of each provider.
  std::map<std::string, int> got;
  std::map<std::string, std::pair<std::string, std::int64_t>> held;  // intent → (agent, epoch)
  for (int i = 0; i < 4; ++i) {
    const std::string agent = "w" + std::to_string(i);
    const std::vector<Json> c = claim(agent);
    ASSERT_EQ(c.size(), 1u) << "claim " << i;
    ++got[provider_of(c[0])];
    held[str(*c[0].find("intent"), "id")] = {agent, num(c[0], "epoch")};
  }
  EXPECT_EQ(got["openai"], 2);
  EXPECT_EQ(got["anthropic"], 2);
  // A fifth agent gets nothing: both budgets are full.
  EXPECT_TRUE(claim("w4").empty());

  std::map<std::string, std::string> r = reasons();
  EXPECT_EQ(r.size(), 6u);
  for (const auto& [id, text] : r) {
    EXPECT_EQ(text, id[0] == 'o' ? "lane_full(llm/openai)" : "lane_full(llm/anthropic)") << id;
  }
  EXPECT_EQ(num(plan_lane("llm/openai"), "running"), 2);
  EXPECT_EQ(metric("cairn_lane_running{lane=\"llm/openai\"}"), "2");
  EXPECT_EQ(metric("cairn_lane_running{lane=\"llm/anthropic\"}"), "2");
  EXPECT_EQ(metric("cairn_lane_open{lane=\"llm/openai\"}"), "3");
  EXPECT_EQ(metric("cairn_lane_max_concurrency{lane=\"llm/anthropic\"}"), "2");

  // Concluding one openai intent frees exactly one openai slot.
  std::string done;
  for (const auto& [id, h] : held) {
    if (id[0] == 'o') done = id;
  }
  ASSERT_FALSE(done.empty());
  const HttpResult c =
      post("/v1/intents/" + done + "/conclude",
           R"({"agent":")" + held[done].first + R"(","epoch":)" +
               std::to_string(held[done].second) + R"(,"result":{"kind":"answer","content":1}})");
  ASSERT_EQ(c.status, 200) << c.body;
  r = reasons();
  int admitted_openai = 0;
  for (const auto& [id, text] : r) {
    if (text == "admitted") {
      EXPECT_EQ(id[0], 'o') << id;
      ++admitted_openai;
    }
  }
  EXPECT_EQ(admitted_openai, 1);
  const std::vector<Json> next = claim("w5");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(provider_of(next[0]), "openai");
  EXPECT_TRUE(claim("w6").empty());
}

TEST_F(PlanProcess, AKindDependencyDefersAndTheFactWakesALongPollingAgent) {
  start("lanes:\n  default: {max_concurrency: 4}\n");
  const HttpResult created = create("needs-approval", R"(,"requires":["kind:approval"])");
  EXPECT_EQ(str(created.json(), "state"), "deferred") << created.body;
  EXPECT_EQ(state_of("needs-approval"), "deferred");
  EXPECT_EQ(reasons()["needs-approval"], "missing_dependency(kind:approval)");
  EXPECT_EQ(metric("cairn_dependency_waits"), "1");
  EXPECT_EQ(events("intent.deferred", "needs-approval").size(), 1u);
  // Independent work is not held back.
  create("independent");
  const std::vector<Json> first = claim("busy");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(str(*first[0].find("intent"), "id"), "independent");
  EXPECT_TRUE(claim("idle").empty());

  // One round: an agent long-polls; once it is parked, the fact is posted;
  // the long-poll must return `id`, which the agent then concludes (so the
  // lane, max_concurrency 4, never fills). Returns (fact reply → claim
  // reply, fact sent → claim reply) in ms.
  int rounds = 0;
  auto round = [&](const std::string& id, const std::string& kind) -> std::pair<double, double> {
    const std::string agent = "waiter-" + std::to_string(rounds++);
    SteadyClock::time_point claimed_at;
    std::string claimed;
    std::int64_t epoch = 0;
    std::thread waiter([&] {
      HttpConn conn(port_);
      const HttpResult r =
          conn.request("POST", "/v1/claims", R"({"agent":")" + agent + R"(","wait_ms":20000})",
                       {{"Content-Type", "application/json"}});
      claimed_at = SteadyClock::now();
      EXPECT_EQ(r.status, 200) << r.body;
      const Json j = r.json();
      const Json* c = j.find("claims");
      if (c != nullptr && c->size() == 1) {
        claimed = str(*c->as_array()[0].find("intent"), "id");
        epoch = num(c->as_array()[0], "epoch");
      }
    });
    EXPECT_TRUE(eventually([&] { return metric("cairn_parked_long_polls") == "1"; }));
    HttpConn conn(port_);
    const auto sent = SteadyClock::now();
    const HttpResult f =
        conn.request("POST", "/v1/facts", R"({"kind":")" + kind + R"(","content":{"ok":true}})",
                     {{"Content-Type", "application/json"}});
    const auto replied = SteadyClock::now();
    EXPECT_EQ(f.status, 201) << f.body;
    waiter.join();
    EXPECT_EQ(claimed, id);
    EXPECT_EQ(state_of(id), "claimed");
    const HttpResult done = post("/v1/intents/" + id + "/conclude",
                                 R"({"agent":")" + agent + R"(","epoch":)" + std::to_string(epoch) +
                                     R"(,"result":{"kind":"done","content":1}})");
    EXPECT_EQ(done.status, 200) << done.body;
    using Ms = std::chrono::duration<double, std::milli>;
    return {Ms(claimed_at - replied).count(), Ms(claimed_at - sent).count()};
  };
  round("needs-approval", "approval");
  EXPECT_EQ(events("intent.ready", "needs-approval").size(), 1u);
  EXPECT_EQ(metric("cairn_dependency_waits"), "0");

  // Wake-up latency over 20 rounds (each on its own fact kind). Printed, not asserted.
  std::vector<double> after_reply, after_send;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "wake-" + std::to_string(i);
    const std::string kind = "approval." + std::to_string(i);
    create(id, R"(,"requires":["kind:)" + kind + "\"]");
    ASSERT_EQ(state_of(id), "deferred");
    const auto [a, b] = round(id, kind);
    after_reply.push_back(a);
    after_send.push_back(b);
  }
  std::printf(
      "wake-up latency over %zu rounds (ms): fact reply -> claim reply median %.2f p95 %.2f; "
      "fact sent -> claim reply median %.2f p95 %.2f\n",
      after_reply.size(), percentile(after_reply, 0.5), percentile(after_reply, 0.95),
      percentile(after_send, 0.5), percentile(after_send, 0.95));
}

TEST_F(PlanProcess, AnIntentInALaneWithoutABudgetIsLoud) {
  start("lanes:\n  work: {max_concurrency: 1}\ndefault_lane: false\n");
  create("orphan", R"(,"lane":"gpu")");
  create("mine", R"(,"lane":"work")");
  EXPECT_EQ(state_of("orphan"), "open");
  const std::map<std::string, std::string> r = reasons();
  EXPECT_EQ(r.at("orphan"), "no_budget(gpu)");
  EXPECT_EQ(r.at("mine"), "admitted");
  const Json gpu = plan_lane("gpu");
  EXPECT_EQ(gpu.find("configured")->as_bool(), false);
  EXPECT_EQ(gpu.find("max_concurrency"), nullptr);
  EXPECT_EQ(metric("cairn_intents_no_budget"), "1");
  EXPECT_EQ(metric("cairn_lane_max_concurrency{lane=\"gpu\"}"), "0");
  // Only the budgeted intent can be claimed.
  const std::vector<Json> c = claim("w1");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(str(*c[0].find("intent"), "id"), "mine");
  EXPECT_TRUE(claim("w2").empty());
  // The log has a warning line naming the intent and the lane.
  ASSERT_TRUE(eventually([&] { return read_all(log_).find("\"orphan\"") != std::string::npos; }));
  bool found = false;
  const std::string log = read_all(log_);
  std::size_t at = 0;
  while (at < log.size()) {
    const auto end = log.find('\n', at);
    const std::string line = log.substr(at, end - at);
    at = end == std::string::npos ? log.size() : end + 1;
    if (line.find("\"orphan\"") == std::string::npos) continue;
    auto j = parse_json(line);
    ASSERT_TRUE(j.ok()) << line;
    EXPECT_EQ(str(*j, "level"), "warn");
    EXPECT_EQ(str(*j, "code"), "no_budget");
    EXPECT_EQ(str(*j, "lane"), "gpu");
    EXPECT_NE(str(*j, "msg").find("lanes.gpu"), std::string::npos) << line;
    found = true;
  }
  EXPECT_TRUE(found) << log;
}

TEST_F(PlanProcess, StaleAndCoalescedIntentsOverHttp) {
  start("plan: {default_duration_ms: 2000}\n");
  // Coalescing: the newer intent with the same (lane, identity) wins...
  create("report-1", R"(,"identity":"weekly-report")");
  const HttpResult second = create("report-2", R"(,"identity":"weekly-report")");
  EXPECT_EQ(str(second.json(), "state"), "open");
  const Json old = get("/v1/intents/report-1").json();
  EXPECT_EQ(str(old, "state"), "coalesced");
  EXPECT_EQ(str(old, "coalesced_into"), "report-2");
  const std::vector<Json> ev = events("intent.coalesced", "report-1");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(str(*ev[0].find("data"), "into"), "report-2");
  // ...unless the older one has the higher priority: then the newcomer is
  // coalesced at creation.
  create("digest-1", R"(,"identity":"digest","priority":5)");
  const HttpResult late = create("digest-2", R"(,"identity":"digest")");
  EXPECT_EQ(str(late.json(), "state"), "coalesced") << late.body;
  EXPECT_EQ(str(late.json(), "coalesced_into"), "digest-1");
  EXPECT_EQ(state_of("digest-1"), "open");
  // The same identity in another lane is a different group.
  create("report-3", R"(,"identity":"weekly-report","lane":"other")");
  EXPECT_EQ(state_of("report-3"), "open");

  // Staleness: not claimed within stale_after_ms → stale, by the engine's timer.
  create("fresh-for-a-moment", R"(,"stale_after_ms":1000)");
  EXPECT_EQ(reasons().count("fresh-for-a-moment"), 1u);
  ASSERT_TRUE(eventually([&] { return state_of("fresh-for-a-moment") == "stale"; }));
  EXPECT_EQ(events("intent.stale", "fresh-for-a-moment").size(), 1u);
  const HttpResult refused = post("/v1/intents/fresh-for-a-moment/claim", R"({"agent":"late"})");
  EXPECT_EQ(refused.status, 409) << refused.body;

  // The plan lists only the live ones, each admitted with its estimate.
  const std::map<std::string, std::string> r = reasons();
  EXPECT_EQ(r, (std::map<std::string, std::string>{
                   {"digest-1", "admitted"}, {"report-2", "admitted"}, {"report-3", "admitted"}}));
  const Json p = plan();
  for (const Json& d : p.find("intents")->as_array()) {
    EXPECT_EQ(num(d, "duration_ms"), 2000) << to_json(d);
  }
  const Json counts = *get("/v1/state").json().find("intents");
  EXPECT_EQ(num(counts, "coalesced"), 2);
  EXPECT_EQ(num(counts, "stale"), 1);
}

// Runs the cairn CLI; its stdout (the exit code in `rc`).
std::string run_cli(const std::string& args, int& rc) {
  const std::string cmd = std::string(CAIRN_CLI_PATH) + " " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    rc = -1;
    return "";
  }
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST_F(PlanProcess, ThePlanIsCanonicalJsonAndTheCliPrintsItsBytes) {
  start(
      "lanes:\n  llm/openai: {max_concurrency: 1}\n"
      "plan: {first_response_budget_ms: 500, all_responses_budget_ms: 1500, "
      "default_duration_ms: 1000}\n");
  const std::string url = "--url http://127.0.0.1:" + std::to_string(port_);
  int rc = 0;
  // Intents made with the CLI's planner options.
  for (int i = 1; i <= 3; ++i) {
    run_cli(url + " intent add job --from-fact " + seed_ + " --id q" + std::to_string(i) +
                " --lane llm --provider openai --cost-units 1 --stale-after-ms 3600000",
            rc);
    ASSERT_EQ(rc, 0);
  }
  run_cli(url + " intent add job --from-fact " + seed_ +
              " --id gated --identity g --requires kind:go --requires kind:review@60s",
          rc);
  ASSERT_EQ(rc, 0);
  const Json q1 = get("/v1/intents/q1").json();
  EXPECT_EQ(str(q1, "provider"), "openai");
  EXPECT_EQ(num(q1, "cost_units"), 1);
  EXPECT_EQ(num(q1, "stale_after_ms"), 3'600'000);
  const Json gated = get("/v1/intents/gated").json();
  EXPECT_EQ(str(gated, "identity"), "g");
  EXPECT_EQ(to_json(*gated.find("requires")), R"(["kind:go","kind:review@60s"])");

  // The same state gives the same bytes, which are the canonical form.
  const HttpResult a = get("/v1/plan");
  const HttpResult b = get("/v1/plan");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(without_now(a.body), without_now(b.body));
  // Planned as of one time, byte for byte, however often it is asked.
  const std::string at = std::to_string(num(*parse_json(a.body), "now_ms") + 250);
  const HttpResult at1 = get("/v1/plan?at=" + at);
  const HttpResult at2 = get("/v1/plan?at=" + at);
  ASSERT_EQ(at1.status, 200);
  EXPECT_EQ(at1.body, at2.body);
  EXPECT_NE(at1.body.find("\"now_ms\":" + at), std::string::npos);
  EXPECT_EQ(get("/v1/plan?at=x").status, 400);
  auto parsed = parse_json(a.body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(to_jcs(*parsed), a.body);
  // Three openai intents at concurrency 1: waves 0, 1, 2 of 1 s each, so the
  // last is done in 3 s, over the 1.5 s budget; the first in 1 s, over 0.5 s.
  const Json& e = *parsed->find("estimates");
  EXPECT_EQ(num(e, "first_done_in_ms"), 1000);
  EXPECT_EQ(num(e, "all_done_in_ms"), 3000);
  EXPECT_FALSE(e.find("meets_first_response_budget")->as_bool());
  EXPECT_FALSE(e.find("meets_all_responses_budget")->as_bool());

  // `cairn plan --json` prints those bytes unchanged (no newline into a pipe).
  const std::string cli = run_cli(url + " plan --json", rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(without_now(cli), without_now(a.body));
  EXPECT_EQ(run_cli(url + " plan --json --at " + at, rc), at1.body);
  EXPECT_EQ(rc, 0);
  // The table names every reason and the missed budgets.
  const std::string table = run_cli(url + " plan --wide", rc);
  EXPECT_EQ(rc, 0);
  for (const char* text : {"admitted", "lane_full(llm/openai)", "missing_dependency(kind:go)",
                           "MISSED", "llm/openai"}) {
    EXPECT_NE(table.find(text), std::string::npos) << text << " not in:\n" << table;
  }
}

}  // namespace
}  // namespace cairn::testing
