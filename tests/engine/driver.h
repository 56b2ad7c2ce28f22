// driver.h — drives a sans-IO Engine in tests: performs its effects against
// a memory store behind a FaultStore and collects replies and events.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "store/fault_store.h"
#include "store/memory_store.h"

namespace cairn::engine::testing {

inline constexpr std::int64_t kT0 = 1'700'000'000'000;

// Performs the engine's effects against a memory store behind a FaultStore.
// With `auto_commit` off, commits wait until commit_pending() is called.
struct Driver {
  explicit Driver(EngineConfig cfg = {}, std::uint64_t seed = 7)
      : faulty(&store), engine(std::move(cfg), seed, kT0) {}

  RequestId send(std::string caller, Command c, std::string key = {}) {
    const RequestId id = next_id++;
    Status st = engine.submit(Request{id, std::move(caller), std::move(key), std::move(c)});
    if (!st.ok()) replies[id] = ReplyEffect{id, st, Json()};
    return id;
  }

  // One poll; performs the effects; returns how many there were.
  std::size_t step() {
    PollResult r = engine.poll(now);
    deadline = r.next_deadline;
    for (Effect& e : r.effects) handle(e);
    return r.effects.size();
  }

  void handle(Effect& e) {
    trace.push_back(describe(e));
    if (auto* c = std::get_if<CommitEffect>(&e)) {
      ++commits;
      batch_sizes.push_back(c->batch.mutations.size());
      if (auto_commit) {
        engine.complete_commit(c->commit_id, faulty.commit(c->batch));
      } else {
        held.push_back(std::move(*c));
      }
    } else if (auto* r = std::get_if<ReplyEffect>(&e)) {
      replies[r->request] = std::move(*r);
    } else if (auto* p = std::get_if<PublishEffect>(&e)) {
      for (auto& ev : p->events) events.push_back(ev);
      published.push_back(std::move(p->events));
    } else if (std::get_if<ResyncEffect>(&e) != nullptr) {
      ++resyncs;
      CAIRN_ASSERT(engine.resync(faulty).ok());
    }
  }

  void commit_pending() {
    for (auto& c : held) engine.complete_commit(c.commit_id, faulty.commit(c.batch));
    held.clear();
  }

  // Polls until the engine goes quiet.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      if (step() == 0 && held.empty()) return;
    }
    ADD_FAILURE() << "engine did not settle";
  }

  // Sends one command, settles, returns its reply.
  const ReplyEffect& run(std::string caller, Command c) {
    const RequestId id = send(std::move(caller), std::move(c));
    settle();
    return reply(id);
  }

  const ReplyEffect& reply(RequestId id) {
    auto it = replies.find(id);
    CAIRN_ASSERT_MSG(it != replies.end(), "no reply yet");
    return it->second;
  }
  bool replied(RequestId id) const { return replies.count(id) != 0; }

  // Posts a fact and an intent grounded in it; returns the intent id.
  std::string make_intent(const std::string& kind = "work") {
    FactBody f;
    f.kind = "seed";
    f.content = Json(static_cast<std::int64_t>(++facts));
    const RequestId fr = send("producer", PostFact{f});
    settle();
    IntentDraft d;
    d.kind = kind;
    d.from_facts = {reply(fr).body.find("id")->as_string()};
    d.lease_ttl_ms = 5'000;
    const RequestId ir = send("producer", CreateIntent{d});
    settle();
    return reply(ir).body.find("id")->as_string();
  }

  store::MemoryStore store;
  store::FaultStore faulty;
  Engine engine;
  std::int64_t now = kT0;
  std::optional<std::int64_t> deadline;
  RequestId next_id = 1;
  bool auto_commit = true;
  std::vector<CommitEffect> held;
  std::map<RequestId, ReplyEffect> replies;
  std::vector<Event> events;
  std::vector<std::vector<Event>> published;  // one entry per PublishEffect
  std::vector<std::string> trace;
  std::vector<std::size_t> batch_sizes;
  int commits = 0;
  int resyncs = 0;
  int facts = 0;
};

}  // namespace cairn::engine::testing
