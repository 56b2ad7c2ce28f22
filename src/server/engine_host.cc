// engine_host.cc — the engine thread (see engine_host.h).
#include "server/engine_host.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "server/log.h"

namespace cairn::server {

namespace {

std::uint64_t os_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// The longest sleep without a deadline (a safety net; submit() wakes it).
constexpr std::int64_t kIdleWaitMs = 1'000;
// The store down state (engine_host.h): the wait between two probes.
constexpr std::int64_t kStoreRetryFirstMs = 100;
constexpr std::int64_t kStoreRetryMaxMs = 1'000;

// True when `s` says the database cannot be reached (as opposed to a
// refused or conflicting commit, or a busy database).
bool store_unreachable(const Status& s) {
  return s.code() == Code::kOutcomeUnknown ||
         (s.code() == Code::kUnavailable && s.reason() == "storage_unreachable");
}

}  // namespace

EngineHost::EngineHost(engine::EngineConfig config, std::unique_ptr<store::Store> store,
                       std::size_t queue_max, Metrics& metrics, std::optional<Shared> shared)
    : store_(std::move(store)),
      config_(std::move(config)),
      queue_max_(queue_max),
      metrics_(metrics),
      shared_(std::move(shared)) {}

EngineHost::~EngineHost() {
  stop();
}

std::int64_t EngineHost::wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t EngineHost::steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t EngineHost::now_ms() const {
  return shared_ ? steady_ms() + clock_offset_ms_ : wall_ms();
}

Status EngineHost::sync_clock() {
  const std::int64_t t0 = steady_ms();
  Result<std::int64_t> db = shared_->server_time_ms();
  const std::int64_t t1 = steady_ms();
  clock_synced_at_ = t1;  // also after a failure: no retry storm while the database is down
  if (!db.ok()) return db.take_status();
  clock_offset_ms_ = *db - (t0 + t1) / 2;
  return Status();
}

Status EngineHost::start(ReplyFn on_reply, PublishFn on_publish) {
  on_reply_ = std::move(on_reply);
  on_publish_ = std::move(on_publish);
  if (shared_) {
    CAIRN_ASSERT(!config_.node.empty() && shared_->server_time_ms);
    CAIRN_RETURN_IF_ERROR(sync_clock());
    // Listening before loading: a commit made while we load is announced.
    listener_ = std::make_unique<backend::PgListener>(
        shared_->listen_url, shared_->channel,
        [this](std::uint64_t v) {
          {
            std::lock_guard lock(mu_);
            notified_version_ = std::max(notified_version_, v);
          }
          cv_.notify_one();
        },
        [this] {
          {
            std::lock_guard lock(mu_);
            notify_gap_ = true;
          }
          cv_.notify_one();
        });
    listener_->start();
  }
  last_now_ = now_ms();
  engine_ = std::make_unique<engine::Engine>(config_, os_seed(), last_now_);
  Status loaded = engine_->load(*store_);
  if (!loaded.ok()) {
    if (listener_) listener_->stop();
    return loaded;
  }
  thread_ = std::thread([this] { run(); });
  return Status();
}

void EngineHost::catch_up() {
  std::uint64_t target = 0;
  {
    std::lock_guard lock(mu_);
    target = notified_version_;
    notify_gap_ = false;
  }
  // On failure (the database is down) nothing is retried here: the
  // listener announces a gap when it reconnects, and a commit that meets a
  // changed sequence asks for another catch-up.
  Status s = engine_->catch_up(*store_);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    caught_up_version_ = std::max(caught_up_version_, target);
  } else {
    note_store_error(s);
  }
}

void EngineHost::note_store_error(const Status& s) {
  if (s.ok() || !(store_unreachable(s) || engine_->resync_pending())) return;
  store_error_ = s;
  if (store_down_) return;
  store_down_ = true;
  store_down_at_ = steady_ms();
  probe_wait_ms_ = kStoreRetryFirstMs;
  next_probe_at_ = store_down_at_ + probe_wait_ms_;
  log(LogLevel::kWarn, "the store cannot be reached; answering 503 until it is back",
      Json(JsonObject{{"error", Json(s.message())}}));
}

Status EngineHost::down_status() const {
  std::string msg = "the database cannot be reached; retry later";
  if (!store_error_.message().empty()) msg += " (" + store_error_.message() + ")";
  const std::string_view reason =
      store_error_.code() == Code::kUnavailable ? store_error_.reason() : "storage_unreachable";
  return unavailable(std::move(msg), std::string(reason));
}

void EngineHost::refuse_while_down(std::deque<engine::Request>& batch) {
  // While a commit's outcome is unknown the engine runs nothing, reads
  // included; otherwise reads are answered from the node's view.
  const bool all = engine_->resync_pending();
  std::deque<engine::Request> kept;
  for (engine::Request& r : batch) {
    if (all || engine::is_mutation(r.command)) {
      on_reply_(r.id, down_status(), Json());
    } else {
      kept.push_back(std::move(r));
    }
  }
  batch.swap(kept);
  for (engine::Request& r : engine_->take_ingress(!all)) on_reply_(r.id, down_status(), Json());
}

void EngineHost::probe_store() {
  if (steady_ms() < next_probe_at_) return;
  Status s;
  if (shared_) {
    s = sync_clock();  // the clock wants measuring again anyway
  } else if (!engine_->resync_pending()) {
    s = store_->last_version().status();
  }
  if (s.ok() && engine_->resync_pending()) s = engine_->resync(*store_);
  if (!s.ok()) {
    store_error_ = s;
    probe_wait_ms_ = std::min(probe_wait_ms_ * 2, kStoreRetryMaxMs);
    next_probe_at_ = steady_ms() + probe_wait_ms_;
    return;
  }
  store_down_ = false;
  log(LogLevel::kWarn, "the store is reachable again",
      Json(JsonObject{{"down_ms", Json(steady_ms() - store_down_at_)}}));
  if (shared_) {
    // Other nodes may have committed meanwhile; the listener may not know yet.
    std::lock_guard lock(mu_);
    notify_gap_ = true;
  }
}

Status EngineHost::submit(engine::Request r) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return unavailable("the server is shutting down", "shutting_down");
    if (queue_.size() >= queue_max_) {
      return unavailable(
          "the server's ingress queue is full; retry later", "overloaded",
          Json(JsonObject{{"ingress_depth_max", Json(static_cast<std::uint64_t>(queue_max_))}}));
    }
    queue_.push_back(std::move(r));
    metrics_.queue_depth.store(queue_.size());
  }
  cv_.notify_one();
  return Status();
}

void EngineHost::abandon(engine::RequestId id) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    abandoned_.push_back(id);
  }
  cv_.notify_one();
}

void EngineHost::set_governance(std::shared_ptr<const engine::Governance> g) {
  {
    std::lock_guard lock(mu_);
    governance_ = std::move(g);
  }
  cv_.notify_one();
}

void EngineHost::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (listener_) listener_->stop();
  engine_.reset();
  store_.reset();  // closes the database
}

void EngineHost::perform(std::vector<engine::Effect>& effects) {
  for (engine::Effect& e : effects) {
    if (auto* c = std::get_if<engine::CommitEffect>(&e)) {
      if (store_down_) {
        // Nothing is sent: the batch fails as unapplied, the engine rolls
        // it back and cools down; the probe finds out when to go on.
        engine_->complete_commit(c->commit_id, down_status());
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      Result<store::CommitInfo> r = store_->commit(c->batch);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      metrics_.record_commit(c->batch.op_count(), secs, r.ok());
      if (!r.ok()) note_store_error(r.status());
      if (shared_ && r.ok()) {
        // Our own commit's notification needs no catch-up.
        std::lock_guard lock(mu_);
        caught_up_version_ = std::max(caught_up_version_, r->version);
      }
      engine_->complete_commit(c->commit_id, std::move(r));
    } else if (auto* rep = std::get_if<engine::ReplyEffect>(&e)) {
      on_reply_(rep->request, std::move(rep->status), std::move(rep->body));
    } else if (auto* p = std::get_if<engine::PublishEffect>(&e)) {
      on_publish_(std::move(p->events));
    } else if (std::get_if<engine::ResyncEffect>(&e) != nullptr) {
      // One attempt; while it fails the store is down and probe_store()
      // tries again (requests are answered 503 meanwhile).
      if (!store_down_) note_store_error(engine_->resync(*store_));
    } else if (std::get_if<engine::CatchUpEffect>(&e) != nullptr) {
      catch_up();
    }
  }
}

void EngineHost::run() {
  std::optional<std::int64_t> deadline;
  std::deque<engine::Request> batch;
  std::vector<engine::RequestId> abandoned;
  std::optional<std::shared_ptr<const engine::Governance>> governance;
  auto drain = [&] {
    if (shared_ && !store_down_ &&
        steady_ms() - clock_synced_at_ >= shared_->clock_sync_interval_ms) {
      note_store_error(sync_clock());  // on failure the last offset stays
    }
    for (;;) {
      last_now_ = std::max(last_now_, now_ms());
      engine::PollResult pr = engine_->poll(last_now_);
      deadline = pr.next_deadline;
      if (pr.effects.empty()) break;
      perform(pr.effects);
    }
  };
  for (;;) {
    bool stopping = false;
    bool catching_up = false;
    {
      std::unique_lock lock(mu_);
      const std::int64_t now = now_ms();
      // While a commit's outcome is unknown, or the engine cools down after
      // a failed commit, a due timer cannot run: it is no reason to wake.
      if (engine_->busy()) deadline.reset();
      if (deadline && engine_->commit_retry_at() > now) {
        deadline = std::max(*deadline, engine_->commit_retry_at());
      }
      std::int64_t wait_ms = kIdleWaitMs;
      if (deadline) wait_ms = std::clamp<std::int64_t>(*deadline - now, 0, kIdleWaitMs);
      if (store_down_) wait_ms = std::clamp<std::int64_t>(next_probe_at_ - steady_ms(), 0, wait_ms);
      // While the store is down, catching up waits for the probe, and so
      // does the shutdown while a commit's outcome is unknown (it settles
      // the batch first).
      auto others_committed = [&] {
        return !store_down_ && (notify_gap_ || notified_version_ > caught_up_version_);
      };
      auto may_stop = [&] { return stopping_ && !(store_down_ && engine_->resync_pending()); };
      if (queue_.empty() && !may_stop() && wait_ms > 0 && !others_committed() && !governance_) {
        cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] {
          return !queue_.empty() || !abandoned_.empty() || may_stop() || others_committed() ||
                 governance_.has_value();
        });
      }
      governance.swap(governance_);
      governance_.reset();
      catching_up = shared_ && others_committed();
      batch.swap(queue_);
      abandoned.swap(abandoned_);
      metrics_.queue_depth.store(0);
      stopping = stopping_;
    }
    if (store_down_) {
      refuse_while_down(batch);
      probe_store();
      if (!store_down_ && shared_) catching_up = true;
    }
    // Shared mode: work that may commit runs inside the writer turn (see
    // engine_host.h), after a catch-up that the turn makes exact.
    bool turn = false;
    if (shared_ && !store_down_ && shared_->turn_wait_ms > 0 && !engine_->busy()) {
      const bool timers_due = deadline && *deadline <= now_ms();
      if (!batch.empty() || engine_->ingress_depth() > 0 || timers_due) {
        turn = shared_->begin_turn(static_cast<int>(shared_->turn_wait_ms));
        metrics_.record_writer_turn(turn);
        // What arrived while we waited for the turn joins this round's batch.
        std::lock_guard lock(mu_);
        for (engine::Request& r : queue_) batch.push_back(std::move(r));
        queue_.clear();
        metrics_.queue_depth.store(0);
      }
    }
    // A reloaded contract: between two cycles, before this round's requests.
    if (governance) engine_->set_governance(std::move(*governance));
    governance.reset();
    if ((turn || catching_up) && !engine_->busy() && !store_down_) catch_up();
    for (engine::Request& r : batch) {
      const engine::RequestId id = r.id;
      Status s = engine_->submit(std::move(r));
      if (!s.ok()) on_reply_(id, std::move(s), Json());
    }
    batch.clear();
    drain();
    // What a commit that failed in this round left queued in the engine
    // (`batch` is empty here).
    if (store_down_) refuse_while_down(batch);
    // After the drain, so that a long-poll submitted in this same round is
    // parked by now.
    bool any = false;
    for (engine::RequestId id : abandoned) any = engine_->abandon(id) || any;
    abandoned.clear();
    if (any) drain();
    if (turn) shared_->end_turn();
    // What the operator must hear about (an intent in a lane without a
    // budget, ...): one warning line each.
    for (engine::Notice& n : engine_->take_notices()) {
      Json fields(JsonObject{{"code", Json(n.code)}});
      if (const JsonObject* d = n.details.object_if()) {
        for (const auto& [k, v] : *d) fields.set(k, v);
      }
      log(LogLevel::kWarn, n.message, fields);
    }
    std::array<std::uint64_t, kIntentStateCount> counts{};
    const Blackboard& bb = engine_->blackboard();
    for (int i = 0; i < kIntentStateCount; ++i) counts[i] = bb.count(static_cast<IntentState>(i));
    metrics_.set_intent_counts(counts, bb.fact_count(), bb.last_seq());
    metrics_.set_engine_depths(engine_->ingress_depth(), engine_->parked());
    metrics_.set_admission(bb.lane_usage(), config_.plan.limits.lanes_max, bb.no_budget_open(),
                           bb.dependency_waits());
    if (stopping && engine_->ingress_depth() == 0 && !engine_->busy()) {
      std::lock_guard lock(mu_);
      if (queue_.empty()) break;
    }
  }
}

}  // namespace cairn::server
