// cairn — the command-line client for cairnd (docs/cli.md).
//
//   cairn [--url URL] [--token TOKEN] [--json] [--wide] [--timeout-ms MS] COMMAND ...
//
// This file only declares the command line (CLI11, a heavy header, is
// included here and nowhere else) and calls commands.cc.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <string>

#include "commands.h"
#include "senses_cmd.h"

namespace {

using cairn::cli::Globals;

// Options every mutating command takes.
void add_key_option(CLI::App* c, std::string& key) {
  c->add_option("--idempotency-key", key,
                "Idempotency-Key header (default: a fresh random key, reused by the "
                "CLI's own retries; pass your own to retry across invocations)");
}

void add_list_options(CLI::App* c, cairn::cli::ListArgs& a, const char* after_what) {
  c->add_option("--after", a.after, after_what);
  c->add_option("--limit", a.limit, "page size (default: the server's, 100; at most 1000)")
      ->check(CLI::PositiveNumber);
  c->add_flag("--all", a.all, "follow `next` to the end (at most 100,000 items)");
}

CLI::Option* add_repeated(CLI::App* c, const std::string& name, std::vector<std::string>& v,
                          const std::string& help) {
  return c->add_option(name, v, help)->allow_extra_args(false)->take_all();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairn: command-line client for the cairnd coordination server"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  app.footer(
      "Exit codes: 0 ok, 1 refused by the server (4xx), 2 usage, 3 unreachable / timeout / 429 "
      "/ 5xx, 4 verify failed, 5 conflict (409), 6 not found (404). See docs/cli.md.");

  Globals g;
  app.add_option("--url", g.url, "server URL (env CAIRN_URL)")
      ->envname("CAIRN_URL")
      ->capture_default_str();
  app.add_option("--token", g.token, "bearer token (env CAIRN_TOKEN)")->envname("CAIRN_TOKEN");
  app.add_flag("--json", g.json, "print the server's JSON (one line) instead of tables");
  app.add_flag("--wide", g.wide, "do not shorten referenced ids and content in tables");
  app.add_option("--timeout-ms", g.timeout_ms, "per-request timeout in ms")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  app.add_option("--retries", g.retries,
                 "retries after a dropped connection, 429 or 503 (same Idempotency-Key)")
      ->check(CLI::Range(0, 10))
      ->capture_default_str();

  std::function<int()> run;

  // ---- fact ----
  CLI::App* fact = app.add_subcommand("fact", "post, read and list facts");
  fact->require_subcommand(1);
  cairn::cli::FactAddArgs fa;
  {
    CLI::App* c = fact->add_subcommand("add", "post a fact; prints its id");
    c->add_option("kind", fa.kind, "fact kind")->required();
    c->add_option("content", fa.content.text, "content: a JSON literal, @FILE, or - for stdin")
        ->required();
    c->add_flag("--string", fa.content.as_string, "the content is a plain string, not JSON");
    c->add_option("--content-type", fa.content_type, "default application/json");
    add_repeated(c, "--derived-from", fa.derived_from, "id of a fact this one derives from");
    c->add_option("--creator", fa.creator, "creator name (env CAIRN_CREATOR)")
        ->envname("CAIRN_CREATOR");
    add_key_option(c, fa.idempotency_key);
    c->callback([&] { run = [&] { return cairn::cli::fact_add(g, fa); }; });
  }
  std::string get_id;
  {
    CLI::App* c = fact->add_subcommand("get", "show one fact");
    c->add_option("id", get_id, "fact id")->required();
    c->callback([&] { run = [&] { return cairn::cli::fact_get(g, get_id); }; });
  }
  cairn::cli::ListArgs fl;
  {
    CLI::App* c = fact->add_subcommand("ls", "list facts in record order");
    c->add_option("--kind", fl.kind, "only facts of this kind");
    add_list_options(c, fl, "start after this seq (a page's `next`)");
    c->callback([&] { run = [&] { return cairn::cli::fact_ls(g, fl); }; });
  }

  // ---- intent ----
  CLI::App* intent = app.add_subcommand("intent", "create, read, list and work on intents");
  intent->require_subcommand(1);
  cairn::cli::IntentAddArgs ia;
  {
    CLI::App* c = intent->add_subcommand("add", "create an intent; prints its id");
    c->add_option("kind", ia.kind, "intent kind")->required();
    add_repeated(c, "--from-fact", ia.from_facts, "a fact it is grounded in (at least one)")
        ->required();
    c->add_option("--id", ia.id, "client-chosen id (default: server-generated)");
    c->add_option("--spec", ia.spec, "spec: a JSON literal, @FILE, or -");
    c->add_option("--lane", ia.lane, "lane");
    c->add_option("--priority", ia.priority, "priority (higher first)");
    c->add_option("--identity", ia.identity,
                  "coalescing key: a newer intent with the same lane and identity replaces it");
    c->add_option("--provider", ia.provider,
                  "provider: charged to the budget lanes.LANE/PROVIDER when configured");
    c->add_option("--cost-units", ia.cost_units, "cost against the lane budget (default 1)");
    c->add_option("--stale-after-ms", ia.stale_after_ms,
                  "not claimed within this long after creation: it becomes stale (0: never)");
    add_repeated(c, "--requires", ia.requires_,
                 "a dependency key: a fact id, kind:K or kind:K@TTL (e.g. kind:review@60s)");
    c->add_option("--lease-ttl-ms", ia.lease_ttl_ms, "lease length for claims");
    c->add_option("--max-attempts", ia.max_attempts, "attempts before it is dead");
    c->add_option("--creator", ia.creator, "creator name (env CAIRN_CREATOR)")
        ->envname("CAIRN_CREATOR");
    add_key_option(c, ia.idempotency_key);
    c->callback([&] { run = [&] { return cairn::cli::intent_add(g, ia); }; });
  }
  {
    CLI::App* c = intent->add_subcommand("get", "show one intent");
    c->add_option("id", get_id, "intent id")->required();
    c->callback([&] { run = [&] { return cairn::cli::intent_get(g, get_id); }; });
  }
  cairn::cli::ListArgs il;
  {
    CLI::App* c = intent->add_subcommand("ls", "list intents in id order");
    c->add_option("--state", il.state,
                  "open|deferred|claimed|concluded|dead|cancelled|stale|coalesced");
    c->add_option("--kind", il.kind, "only intents of this kind");
    c->add_option("--lane", il.lane, "only intents in this lane");
    add_list_options(c, il, "start after this intent id (a page's `next`)");
    c->callback([&] { run = [&] { return cairn::cli::intent_ls(g, il); }; });
  }
  cairn::cli::ClaimArgs ca;
  {
    CLI::App* c = intent->add_subcommand(
        "claim", "claim an intent by id, or without an id the next work (POST /v1/claims)");
    c->add_option("id", ca.id, "intent id (omit to claim the next work)");
    c->add_option("--agent", ca.agent, "agent name (env CAIRN_AGENT; with a token: its name)")
        ->envname("CAIRN_AGENT");
    c->add_option("--lease-ttl-ms", ca.lease_ttl_ms, "lease length");
    add_repeated(c, "--kind", ca.kinds, "next work: only these kinds");
    add_repeated(c, "--lane", ca.lanes, "next work: only these lanes");
    c->add_option("--max", ca.max, "next work: claim up to this many (1..256)")
        ->check(CLI::Range(1, 256));
    c->add_option("--wait-ms", ca.wait_ms, "next work: long-poll up to this long (0..30000)")
        ->check(CLI::Range(0, 30'000));
    add_key_option(c, ca.idempotency_key);
    c->callback([&] { run = [&] { return cairn::cli::intent_claim(g, ca); }; });
  }
  cairn::cli::LifecycleArgs la;
  std::string verb;
  auto lifecycle = [&](const char* name, const char* help) {
    CLI::App* c = intent->add_subcommand(name, help);
    c->add_option("id", la.id, "intent id")->required();
    if (std::string(name) != "cancel") {
      c->add_option("--agent", la.agent, "agent name (env CAIRN_AGENT; with a token: its name)")
          ->envname("CAIRN_AGENT");
      c->add_option("--epoch", la.epoch, "the epoch the claim returned")->required();
    } else {
      c->add_option("--creator", la.creator, "creator name (env CAIRN_CREATOR)")
          ->envname("CAIRN_CREATOR");
    }
    add_key_option(c, la.idempotency_key);
    c->callback([&, name] {
      verb = name;
      run = [&] { return cairn::cli::intent_lifecycle(g, verb, la); };
    });
    return c;
  };
  lifecycle("heartbeat", "extend the lease")
      ->add_option("--lease-ttl-ms", la.lease_ttl_ms, "new lease length");
  {
    CLI::App* c = lifecycle("conclude", "conclude with a result fact; prints the result's id");
    c->add_option("--kind", la.result_kind, "the result fact's kind")->required();
    c->add_option("content", la.result.text, "result content: a JSON literal, @FILE, or -")
        ->required();
    c->add_flag("--string", la.result.as_string, "the content is a plain string, not JSON");
    c->add_option("--content-type", la.content_type, "default application/json");
    add_repeated(c, "--derived-from", la.derived_from,
                 "more facts the result derives from (after the intent's from_facts)");
  }
  {
    CLI::App* c = lifecycle("fail", "report a failure (retried after backoff unless --no-retry)");
    c->add_option("--error", la.error, "what went wrong");
    c->add_flag("--no-retry", la.no_retry, "the failure is final: the intent becomes dead");
  }
  lifecycle("release", "give the claim back (the intent is open again)");
  lifecycle("cancel", "cancel an intent you created");

  // ---- hint ----
  CLI::App* hint = app.add_subcommand("hint", "create, list and revoke hints");
  hint->require_subcommand(1);
  cairn::cli::HintAddArgs ha;
  {
    CLI::App* c = hint->add_subcommand("add", "create a hint; prints its id");
    c->add_option("kind", ha.kind, "hint kind")->required();
    c->add_option("--effect", ha.effect, "deny|cap|defer|priority|require")
        ->required()
        ->check(CLI::IsMember({"deny", "cap", "defer", "priority", "require"}));
    c->add_option("--n", ha.n, "cap: at most n claimed at once");
    c->add_option("--delta", ha.delta, "priority: added to the priority");
    c->add_option("--until", ha.until, "defer: until this wall time (ms since the epoch)");
    c->add_option("--fact-kind", ha.fact_kind, "require: a fact of this kind must exist");
    c->add_option("--select-kind", ha.select_kind, "selector: intent kind");
    c->add_option("--select-lane", ha.select_lane, "selector: lane");
    c->add_option("--select-identity", ha.select_identity, "selector: identity");
    c->add_option("--select-creator", ha.select_creator, "selector: intent creator");
    c->add_option("--expires-at", ha.expires_at, "wall time (ms since the epoch) it ends");
    c->add_option("--reason", ha.reason, "why");
    add_repeated(c, "--derived-from", ha.derived_from, "a fact it derives from");
    c->add_option("--id", ha.id, "client-chosen id");
    c->add_option("--creator", ha.creator, "creator name (env CAIRN_CREATOR)")
        ->envname("CAIRN_CREATOR");
    add_key_option(c, ha.idempotency_key);
    c->callback([&] { run = [&] { return cairn::cli::hint_add(g, ha); }; });
  }
  {
    CLI::App* c = hint->add_subcommand("get", "show one hint");
    c->add_option("id", get_id, "hint id")->required();
    c->callback([&] { run = [&] { return cairn::cli::hint_get(g, get_id); }; });
  }
  cairn::cli::HintRmArgs hr;
  {
    CLI::App* c = hint->add_subcommand("rm", "revoke a hint");
    c->add_option("id", hr.id, "hint id")->required();
    c->add_option("--creator", hr.creator, "creator name (env CAIRN_CREATOR)")
        ->envname("CAIRN_CREATOR");
    add_key_option(c, hr.idempotency_key);
    c->callback([&] { run = [&] { return cairn::cli::hint_rm(g, hr); }; });
  }
  cairn::cli::ListArgs hl;
  {
    CLI::App* c = hint->add_subcommand("ls", "list hints in id order");
    c->add_flag("--live", hl.live, "only hints in force now");
    add_list_options(c, hl, "start after this hint id (a page's `next`)");
    c->callback([&] { run = [&] { return cairn::cli::hint_ls(g, hl); }; });
  }

  // ---- logs ----
  cairn::cli::ListArgs ll;
  {
    CLI::App* c = app.add_subcommand("logs", "list log records in id order");
    c->add_option("--source", ll.source, "only records of this source");
    add_list_options(c, ll, "start after this log record id (a page's `next`)");
    c->callback([&] { run = [&] { return cairn::cli::logs(g, ll); }; });
  }
  {
    CLI::App* archive = app.add_subcommand("archive", "archive old records now");
    archive->require_subcommand(1);
    archive
        ->add_subcommand("logs",
                         "export whole days of log records older than the retention to "
                         "archive/logs/ and delete them; prints the days archived (admin)")
        ->callback([&] { run = [&] { return cairn::cli::archive_logs(g); }; });
  }

  // ---- state, watch, verify ----
  app.add_subcommand("state", "intent counts by state, fact count, last event seq")->callback([&] {
    run = [&] { return cairn::cli::state(g); };
  });
  std::int64_t plan_at = 0;
  {
    CLI::App* c = app.add_subcommand(
        "plan",
        "the admission plan: admitted and waiting intents with reasons, waves, lane "
        "usage, estimates against budgets (--json: the server's bytes)");
    c->add_option("--at", plan_at,
                  "plan the current state as of this wall time in ms (default: now); the same "
                  "state and --at give the same bytes")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{253'402'300'799'999}));
    c->callback([&] { run = [&] { return cairn::cli::plan(g, plan_at); }; });
  }
  cairn::cli::WatchArgs wa;
  {
    CLI::App* c = app.add_subcommand("watch", "stream events (one line each) until interrupted");
    c->add_option("--after", wa.after, "start after this event seq (default: from now)");
    c->add_option("--count", wa.count, "exit after this many events");
    c->callback([&] { run = [&] { return cairn::cli::watch(g, wa); }; });
  }
  cairn::cli::VerifyArgs va;
  {
    CLI::App* c = app.add_subcommand(
        "verify",
        "re-hash a fact and every ancestor in its derived_from (or, with --evidence, recompute "
        "the evidence chain); exit 4 on a mismatch");
    c->add_option("id", va.id, "fact id (not with --evidence)");
    c->add_flag("--evidence", va.evidence,
                "recompute the evidence chain of every accepted mutation instead");
    c->add_option("--from", va.from, "with --evidence: the first link's seq")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 53))
        ->capture_default_str();
    c->add_option("--max-links", va.max_links, "with --evidence: links to check at most")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000'000}))
        ->capture_default_str();
    c->add_option("--max-depth", va.max_depth, "derived_from hops to follow")
        ->check(CLI::Range(0, 1'000'000))
        ->capture_default_str();
    c->add_option("--max-facts", va.max_facts, "facts to check at most")
        ->check(CLI::Range(1, 10'000'000))
        ->capture_default_str();
    c->callback([&] { run = [&] { return cairn::cli::verify(g, va); }; });
  }

  // ---- the observation runtime (docs/senses.md) ----
  CLI::App* senses = app.add_subcommand("senses", "the observation runtime: status, or run it");
  senses->require_subcommand(1);
  std::string senses_data;
  {
    CLI::App* c = senses->add_subcommand(
        "status", "each sense's health, runs, failures, last and next run, last error");
    c->add_option("--data", senses_data,
                  "read a runtime's own data directory (one started with `cairn senses run`) "
                  "instead of asking the server");
    c->callback([&] { run = [&] { return cairn::cli::senses_status(g, senses_data); }; });
  }
  cairn::cli::SensesRunArgs sr;
  {
    CLI::App* c = senses->add_subcommand(
        "run",
        "run the senses, reflexes and workflows of a config file against --url "
        "until SIGINT/SIGTERM (SIGHUP reloads the file)");
    c->add_option("--config", sr.config, "cairn.yaml with senses:, workflows:, reflexes:")
        ->required();
    c->add_option("--data", sr.data, "directory for runtime.db and the senses' databases")
        ->capture_default_str();
    c->callback([&] { run = [&] { return cairn::cli::senses_run(g, sr); }; });
  }
  CLI::App* workflows = app.add_subcommand("workflows", "workflow runs started by reflexes");
  workflows->require_subcommand(1);
  std::string wf_name;
  int wf_limit = 0;
  {
    CLI::App* c = workflows->add_subcommand(
        "runs",
        "runs newest first: queued, started, completed, failed, crashed, interrupted, "
        "dropped");
    c->add_option("--workflow", wf_name, "only this workflow's runs");
    c->add_option("--limit", wf_limit, "at most this many (default 100)")
        ->check(CLI::Range(1, 1'000));
    c->add_option("--data", senses_data, "read a runtime's own data directory instead");
    c->callback([&] {
      run = [&] { return cairn::cli::workflow_runs(g, senses_data, wf_name, wf_limit); };
    });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help (rc 0) or the error
    return rc == 0 ? cairn::cli::kExitOk : cairn::cli::kExitUsage;
  }
  if (!run) return cairn::cli::kExitUsage;
  return run();
}
