// observe_config_test.cc — cairn.yaml's senses:, workflows:, reflexes: and
// logs: sections: a full file read into the exact structs (durations,
// defaults, the resolved migrations directory), every refusal with its file,
// line and field, the section limits, load_observe_file beside cairnd's own
// keys, and `cairnd --config` refusing a bad file at start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/observe_config.h"
#include "server/test_server.h"

namespace cairn::testing {
namespace {

using senses::LogsConfig;
using senses::ObserveConfig;
using senses::Overflow;

class ObserveFile : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<std::pair<ObserveConfig, LogsConfig>> load(const std::string& yaml) {
    path_ = dir_ + "/cairn.yaml";
    write_file(path_, yaml);
    return server::load_observe_file(path_);
  }
  // The error for `yaml`, which must be refused.
  Status refused(const std::string& yaml) {
    auto c = load(yaml);
    EXPECT_FALSE(c.ok()) << yaml;
    return c.ok() ? Status() : c.status();
  }
  // `yaml` is refused at `line`, naming `field`, with a message saying `says`.
  void expect_refused(const std::string& yaml, std::size_t line, const std::string& field,
                      const std::string& says) {
    SCOPED_TRACE(yaml);
    const Status s = refused(yaml);
    EXPECT_EQ(s.reason(), "invalid_config");
    const std::string where = path_ + ":" + std::to_string(line) + ": " + field + " ";
    EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message() << "\nwanted " << where;
    EXPECT_NE(s.message().find(says), std::string::npos) << s.message() << "\nwanted " << says;
    EXPECT_EQ(num(s.details(), "line"), static_cast<std::int64_t>(line));
    EXPECT_EQ(str(s.details(), "field"), field);
    EXPECT_EQ(str(s.details(), "file"), path_);
  }

  std::string dir_, path_;
};

constexpr char kFull[] = R"(senses:
  disk:
    command: [df, -P, /]
    interval: 30s
    on: [deploy.finished, "host.added"]
    throttle: 10s
    timeout: 2m
    grace_period: 500ms
    migrations: ./disk-migrations/
    group: hosts
  load:
    command: "uptime | awk '{print $10}'"
workflows:
  cleanup:
    kind: disk.cleanup
    lane: maintenance
    spec: {path: /var/tmp, keep: 3, dry: false, note: "5", tags: [a, b]}
    priority: -5
    concurrency: 2
    overflow: queue
    max_queue: 7
  page:
    kind: page.oncall
    overflow: drop
reflexes:
  - name: disk-full
    on: signal.disk
    match: [{path: "$.used_pct", op: gt, value: 90}]
    throttle: 1m
    start: cleanup
  - on: deploy.finished
    run: load
logs:
  retention_days: 7
  archive_interval: 15m
)";

TEST_F(ObserveFile, AFullFileIsReadIntoTheStructs) {
  std::filesystem::create_directory(dir_ + "/disk-migrations");
  auto c = load(kFull);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const ObserveConfig& o = c->first;

  ASSERT_EQ(o.senses.size(), 2u);
  const senses::SenseConfig& disk = o.senses[0];
  EXPECT_EQ(disk.name, "disk");
  EXPECT_EQ(disk.argv, (std::vector<std::string>{"df", "-P", "/"}));
  EXPECT_EQ(disk.shell, "");
  EXPECT_EQ(disk.interval_ms, 30'000);
  EXPECT_EQ(disk.on, (std::vector<std::string>{"deploy.finished", "host.added"}));
  EXPECT_EQ(disk.throttle_ms, 10'000);
  EXPECT_EQ(disk.timeout_ms, 120'000);
  EXPECT_EQ(disk.grace_ms, 500);
  // Relative to the file's directory, absolute, without the trailing slash.
  EXPECT_EQ(disk.migrations_dir, dir_ + "/disk-migrations");
  EXPECT_EQ(disk.group, "hosts");
  EXPECT_EQ(disk.line, 2u);
  const senses::SenseConfig& load = o.senses[1];
  EXPECT_EQ(load.name, "load");
  EXPECT_TRUE(load.argv.empty());
  EXPECT_EQ(load.shell, "uptime | awk '{print $10}'");
  // Defaults.
  EXPECT_EQ(load.interval_ms, 0);
  EXPECT_TRUE(load.on.empty());
  EXPECT_EQ(load.throttle_ms, 0);
  EXPECT_EQ(load.timeout_ms, 30'000);
  EXPECT_EQ(load.grace_ms, 5'000);
  EXPECT_EQ(load.migrations_dir, "");
  EXPECT_EQ(load.group, "default");
  EXPECT_EQ(load.line, 11u);

  ASSERT_EQ(o.workflows.size(), 2u);
  const senses::WorkflowConfig& cleanup = o.workflows[0];
  EXPECT_EQ(cleanup.name, "cleanup");
  EXPECT_EQ(cleanup.kind, "disk.cleanup");
  EXPECT_EQ(cleanup.lane, "maintenance");
  // The contract's YAML→JSON rules: plain numbers and booleans are typed,
  // quoted scalars are strings.
  EXPECT_EQ(to_jcs(cleanup.spec),
            R"({"dry":false,"keep":3,"note":"5","path":"/var/tmp","tags":["a","b"]})");
  EXPECT_EQ(cleanup.priority, -5);
  EXPECT_EQ(cleanup.concurrency, 2);
  EXPECT_EQ(cleanup.overflow, Overflow::kQueue);
  EXPECT_EQ(cleanup.max_queue, 7);
  EXPECT_EQ(cleanup.line, 14u);
  const senses::WorkflowConfig& page = o.workflows[1];
  EXPECT_EQ(page.kind, "page.oncall");
  EXPECT_EQ(page.lane, "default");
  EXPECT_EQ(to_jcs(page.spec), "{}");
  EXPECT_EQ(page.priority, 0);
  EXPECT_EQ(page.concurrency, 1);
  EXPECT_EQ(page.overflow, Overflow::kDrop);

  ASSERT_EQ(o.reflexes.size(), 2u);
  const senses::ReflexConfig& full = o.reflexes[0];
  EXPECT_EQ(full.name, "disk-full");
  EXPECT_EQ(full.on, "signal.disk");
  ASSERT_EQ(full.match.size(), 1u);
  EXPECT_TRUE(evaluate_all(full.match, *parse_json(R"({"used_pct":95})")));
  EXPECT_FALSE(evaluate_all(full.match, *parse_json(R"({"used_pct":90})")));
  EXPECT_EQ(full.throttle_ms, 60'000);
  EXPECT_EQ(full.start_workflow, "cleanup");
  EXPECT_EQ(full.run_sense, "");
  EXPECT_EQ(full.line, 26u);
  const senses::ReflexConfig& second = o.reflexes[1];
  EXPECT_EQ(second.name, "reflex-2");  // its position, from 1
  EXPECT_EQ(second.on, "deploy.finished");
  EXPECT_TRUE(second.match.empty());
  EXPECT_EQ(second.throttle_ms, 0);
  EXPECT_EQ(second.run_sense, "load");
  EXPECT_EQ(second.start_workflow, "");

  EXPECT_EQ(c->second.retention_days, 7);
  EXPECT_EQ(c->second.archive_interval_ms, 900'000);
}

TEST_F(ObserveFile, WithoutTheSectionsNothingRunsAndLogsKeepTheirDefaults) {
  auto c = load("listen: 127.0.0.1:7400\nsenses:\nworkflows: {}\nreflexes: []\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->first.empty());
  EXPECT_EQ(c->second.retention_days, 30);
  EXPECT_EQ(c->second.archive_interval_ms, 3'600'000);
}

// cairn.yaml is shared with cairnd: load_observe_file reads its four
// sections and nothing else, not even keys cairnd itself would refuse.
TEST_F(ObserveFile, TheFileIgnoresCairndsOwnKeys) {
  auto c = load(
      "listen: not-an-address\n"
      "tokens: [{name: x, sha256: short, scopes: [nonsense]}]\n"
      "lanes: {gpu: {max_concurrency: 0}}\n"
      "something_new: {a: 1}\n"
      "senses:\n"
      "  tick: {command: [date], interval: 1h}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->first.senses.size(), 1u);
  EXPECT_EQ(c->first.senses[0].interval_ms, 3'600'000);
}

TEST_F(ObserveFile, CairndsLoaderReadsTheSameSections) {
  std::filesystem::create_directory(dir_ + "/disk-migrations");
  path_ = dir_ + "/cairn.yaml";
  write_file(path_, std::string("listen: 127.0.0.1:7411\n") + kFull);
  auto c = server::load_config_file(path_, server::ServerConfig{});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->listen_port, 7411);
  EXPECT_EQ(c->observe.senses.size(), 2u);
  EXPECT_EQ(c->observe.workflows.size(), 2u);
  EXPECT_EQ(c->observe.reflexes.size(), 2u);
  EXPECT_EQ(c->logs.retention_days, 7);
  // And refuses what load_observe_file refuses, with the same message.
  write_file(path_, "listen: 127.0.0.1:7411\nsenses:\n  disk: {command: [df], interval: 5x}\n");
  auto bad = server::load_config_file(path_, server::ServerConfig{});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().reason(), "invalid_config");
  EXPECT_EQ(bad.status().message().rfind(path_ + ":3: senses.disk.interval ", 0), 0u)
      << bad.status().message();
  EXPECT_EQ(bad.status().message(), server::load_observe_file(path_).status().message());
}

TEST_F(ObserveFile, AnUnreadableOrBrokenFileIsAnError) {
  auto missing = server::load_observe_file(dir_ + "/nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), "invalid_config");
  EXPECT_NE(missing.status().message().find("nope.yaml: cannot be read"), std::string::npos);
  const Status syntax = refused("senses:\n  disk: {command: [df, interval: 1s}\n");
  EXPECT_EQ(syntax.reason(), "invalid_config");
  EXPECT_EQ(syntax.message().rfind(path_ + ":", 0), 0u) << syntax.message();
  EXPECT_NE(syntax.message().find("is not valid YAML"), std::string::npos) << syntax.message();
  EXPECT_GE(num(syntax.details(), "line"), 2);
  const Status top = refused("- senses\n");
  EXPECT_EQ(top.message(), path_ + ":1: the top level must be a map");
  EXPECT_EQ(num(top.details(), "line"), 1);
}

TEST_F(ObserveFile, BadDurationsAreRefused) {
  const std::string dur = "must be a positive integer with a unit";
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: 5x\n", 4,
                 "senses.disk.interval", dur);
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: 30\n", 4,
                 "senses.disk.interval", dur);
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: 1.5s\n", 4,
                 "senses.disk.interval", dur);
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: [1s]\n", 4,
                 "senses.disk.interval", "must be a duration such as 30s");
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: 400d\n", 4,
                 "senses.disk.interval", "longer than 366d");
  expect_refused("senses:\n  disk: {command: [df], interval: 1s, throttle: -1s}\n", 2,
                 "senses.disk.throttle", dur);
  expect_refused("senses:\n  disk: {command: [df], interval: 1s, timeout: 61m}\n", 2,
                 "senses.disk.timeout", "must be at most 1h");
  expect_refused("senses:\n  disk: {command: [df], interval: 1s, grace_period: 601s}\n", 2,
                 "senses.disk.grace_period", "must be at most 10m");
  expect_refused(
      "senses:\n  disk: {command: [df], interval: 1s}\n"
      "reflexes:\n  - {on: x, run: disk, throttle: soon}\n",
      4, "reflexes[0].throttle", dur);
  expect_refused("logs:\n  archive_interval: 1d1h\n", 2, "logs.archive_interval", dur);
  expect_refused("logs:\n  archive_interval: 500ms\n", 2, "logs.archive_interval",
                 "must be at least 1s");
  expect_refused("logs:\n  archive_interval: 2d\n", 2, "logs.archive_interval",
                 "must be at most 1d");
}

TEST_F(ObserveFile, BoundsAreRefused) {
  expect_refused("logs:\n  retention_days: 0\n", 2, "logs.retention_days", "1..3650");
  expect_refused("logs: {retention_days: 3651}\n", 1, "logs.retention_days", "1..3650");
  expect_refused("workflows:\n  w:\n    kind: k\n    concurrency: 0\n", 4,
                 "workflows.w.concurrency", "1..1000");
  expect_refused("workflows:\n  w:\n    kind: k\n    concurrency: 1001\n", 4,
                 "workflows.w.concurrency", "1..1000");
  expect_refused("workflows:\n  w:\n    kind: k\n    max_queue: 100001\n", 4,
                 "workflows.w.max_queue", "1..100000");
  expect_refused("workflows:\n  w:\n    kind: k\n    max_queue: 0\n", 4, "workflows.w.max_queue",
                 "1..100000");
  expect_refused("workflows:\n  w:\n    kind: k\n    priority: high\n", 4, "workflows.w.priority",
                 "must be an integer");
}

TEST_F(ObserveFile, UnknownFieldsAreRefused) {
  expect_refused("senses:\n  disk:\n    command: [df]\n    intervall: 5s\n", 4,
                 "senses.disk.intervall", "is not a known field (command, interval, on,");
  expect_refused("workflows:\n  w:\n    kind: k\n    lanes: x\n", 4, "workflows.w.lanes",
                 "is not a known field");
  expect_refused("reflexes:\n  - on: x\n    when: y\n", 3, "reflexes[0].when",
                 "is not a known field (name, on, match, throttle, start, run)");
  expect_refused("logs:\n  retention: 3\n", 2, "logs.retention", "is not a known field");
}

TEST_F(ObserveFile, UnknownSensesAndWorkflowsAreRefused) {
  expect_refused(
      "senses:\n  disk: {command: [df], interval: 1m}\n  load: {command: [uptime], interval: 1m}\n"
      "reflexes:\n  - on: deploy\n    run: dsk\n",
      6, "reflexes[0].run",
      "names \"dsk\", which is not a sense under senses: (configured: disk, load)");
  expect_refused("reflexes:\n  - on: deploy\n    run: disk\n", 3, "reflexes[0].run",
                 "(none is configured)");
  expect_refused(
      "workflows:\n  cleanup: {kind: disk.cleanup}\n"
      "reflexes:\n  - {on: deploy, start: cleanup}\n  - {on: deploy, start: clean}\n",
      5, "reflexes[1].start", "names \"clean\", which is not a workflow under workflows:");
}

TEST_F(ObserveFile, AReflexRunsOneSenseOrStartsOneWorkflow) {
  expect_refused(
      "senses:\n  disk: {command: [df], interval: 1m}\nworkflows:\n  w: {kind: k}\n"
      "reflexes:\n  - on: deploy\n    run: disk\n    start: w\n",
      6, "reflexes[0]", "has both run: and start:");
  expect_refused("reflexes:\n  - name: idle\n    on: deploy\n", 2, "reflexes[0]",
                 "needs run: <sense> or start: <workflow>");
  expect_refused("workflows:\n  w: {kind: k}\nreflexes:\n  - {start: w}\n", 4, "reflexes[0].on",
                 "is required");
}

TEST_F(ObserveFile, DuplicateNamesAreRefused) {
  // YAML keeps both keys of a map; the second definition is an error, not a
  // silent override.
  expect_refused(
      "senses:\n  disk:\n    command: [df]\n    interval: 1m\n"
      "  disk:\n    command: [du]\n    interval: 1m\n",
      5, "senses.disk", "is defined twice (first at line 2)");
  expect_refused("workflows:\n  w: {kind: a}\n  x: {kind: b}\n  w: {kind: c}\n", 4, "workflows.w",
                 "is defined twice (first at line 2)");
  expect_refused(
      "senses:\n  disk: {command: [df], interval: 1m}\nlisten: 127.0.0.1:7400\n"
      "senses:\n  load: {command: [uptime], interval: 1m}\n",
      4, "senses", "is repeated (first at line 1)");
  expect_refused("senses:\n  disk:\n    command: [df]\n    interval: 1m\n    interval: 2m\n", 5,
                 "senses.disk.interval", "is repeated (first at line 4)");
  expect_refused(
      "workflows:\n  w: {kind: k}\nreflexes:\n"
      "  - {name: go, on: a, start: w}\n  - {name: go, on: b, start: w}\n",
      5, "reflexes[1].name", "repeats the name of the reflex at line 4");
  // A name that collides with another reflex's default one.
  expect_refused(
      "workflows:\n  w: {kind: k}\nreflexes:\n"
      "  - {name: reflex-2, on: a, start: w}\n  - {on: b, start: w}\n",
      5, "reflexes[1]", "its default, reflex-2, is the name of the reflex at line 4");
}

TEST_F(ObserveFile, MaxQueueGoesWithQueueOnly) {
  expect_refused("workflows:\n  w:\n    kind: k\n    overflow: drop\n    max_queue: 10\n", 5,
                 "workflows.w.max_queue", "applies only to overflow: queue");
  expect_refused("workflows:\n  w: {kind: k, overflow: spill}\n", 2, "workflows.w.overflow",
                 "must be drop or queue");
  // Explicitly queue with a bound is fine.
  auto c = load("workflows:\n  w: {kind: k, overflow: queue, max_queue: 10}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->first.workflows[0].max_queue, 10);
}

TEST_F(ObserveFile, ASenseThatNeverRunsIsRefused) {
  expect_refused("senses:\n  disk:\n    command: [df]\n    timeout: 5s\n", 2, "senses.disk",
                 "never runs: give it an interval:, an on: list of fact kinds, or a reflex with "
                 "run: disk");
  // Run only by a reflex: allowed.
  auto c = load("senses:\n  disk: {command: [df]}\nreflexes:\n  - {on: deploy, run: disk}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->first.senses[0].interval_ms, 0);
  EXPECT_TRUE(c->first.senses[0].on.empty());
}

TEST_F(ObserveFile, CommandsMustBeRunnable) {
  expect_refused("senses:\n  disk:\n    interval: 1m\n", 2, "senses.disk.command",
                 "is required: a list of strings such as [df, -P, /] or a string");
  expect_refused("senses:\n  disk:\n    command: \"  \"\n    interval: 1m\n", 3,
                 "senses.disk.command", "is empty");
  expect_refused("senses:\n  disk:\n    command: []\n    interval: 1m\n", 3, "senses.disk.command",
                 "is empty");
  expect_refused(
      "senses:\n  disk:\n    command:\n      - df\n      - {all: true}\n    interval: 1m\n", 5,
      "senses.disk.command[1]", "must be a string");
  expect_refused("senses:\n  disk:\n    command: [df, [-P]]\n    interval: 1m\n", 3,
                 "senses.disk.command[1]", "must be a string");
  expect_refused("senses:\n  disk:\n    command: [\"\", -P]\n    interval: 1m\n", 3,
                 "senses.disk.command[0]", "is an empty program name");
  expect_refused("senses:\n  disk:\n    command: {run: df}\n    interval: 1m\n", 3,
                 "senses.disk.command", "must be a list of strings");
  expect_refused("senses:\n  disk:\n    command: [\"d\\0f\"]\n    interval: 1m\n", 3,
                 "senses.disk.command[0]", "contains a NUL byte");
}

TEST_F(ObserveFile, LogRecordsNeverTriggerAnything) {
  const std::string says =
      "log records are not facts and never trigger senses or reflexes (the fact kinds log and "
      "log.* are reserved)";
  expect_refused("senses:\n  disk:\n    command: [df]\n    on: [deploy, log]\n", 4,
                 "senses.disk.on[1]", says);
  expect_refused("senses:\n  disk:\n    command: [df]\n    on: log.sense_failed\n", 4,
                 "senses.disk.on", says);
  expect_refused(
      "workflows:\n  w: {kind: k}\nreflexes:\n  - on: log.workflow.dropped\n    start: w\n", 4,
      "reflexes[0].on", says);
  // Only the namespace itself: kinds that merely start with "log" are facts.
  auto c = load(
      "senses:\n  disk: {command: [df], on: [login, logs.rotated, catalog.x]}\n"
      "workflows:\n  w: {kind: log.cleanup}\nreflexes:\n  - {on: logger, start: w}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->first.senses[0].on,
            (std::vector<std::string>{"login", "logs.rotated", "catalog.x"}));
}

TEST_F(ObserveFile, LoopsAreRefused) {
  expect_refused("senses:\n  disk:\n    command: [df]\n    on: [deploy, signal.disk]\n", 4,
                 "senses.disk.on[1]", "is the sense's own signal (signal.disk)");
  expect_refused(
      "senses:\n  disk: {command: [df], interval: 1m}\n"
      "reflexes:\n  - on: signal.disk\n    run: disk\n",
      5, "reflexes[0].run", "runs disk on its own signal (signal.disk)");
  // a -> b through on:, b -> c through a reflex, c -> a through on:.
  expect_refused(
      "senses:\n  a: {command: [x], on: [signal.c]}\n  b: {command: [x], on: [signal.a]}\n"
      "  c: {command: [x]}\n"
      "reflexes:\n  - {on: signal.b, run: c, match: [{path: $.x, op: exists}]}\n",
      2, "senses.a", "is in a loop: a -> b -> c -> a");
  // A chain that does not come back is fine, and so is a signal of a sense
  // nobody configured (a remote runtime may post it).
  auto c = load(
      "senses:\n  a: {command: [x], interval: 1m}\n  b: {command: [x], on: [signal.a]}\n"
      "  c: {command: [x], on: [signal.remote]}\n"
      "reflexes:\n  - {on: signal.b, run: c}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
}

TEST_F(ObserveFile, NamesKindsAndPathsAreChecked) {
  expect_refused("senses:\n  Disk:\n    command: [df]\n    interval: 1m\n", 2, "senses.Disk",
                 "is not a valid name (\"Disk\"): use 1..64 characters of a-z, 0-9, _ and -");
  expect_refused("senses:\n  " + std::string(65, 'a') + ": {command: [df], interval: 1m}\n", 2,
                 "senses." + std::string(65, 'a'), "is not a valid name");
  expect_refused("senses:\n  disk: {command: [df], interval: 1m, group: \"a b\"}\n", 2,
                 "senses.disk.group", "is not a valid name");
  expect_refused("workflows:\n  clean.up: {kind: k}\n", 2, "workflows.clean.up",
                 "is not a valid name");
  expect_refused("workflows:\n  w: {kind: k}\nreflexes:\n  - {name: Big, on: a, start: w}\n", 4,
                 "reflexes[0].name", "is not a valid name");
  expect_refused("senses:\n  disk:\n    command: [df]\n    on: [\"deploy finished\"]\n", 4,
                 "senses.disk.on[0]", "[A-Za-z0-9._:-]");
  expect_refused("workflows:\n  w:\n    lane: x\n", 2, "workflows.w.kind", "is required");
  expect_refused("workflows:\n  w:\n    kind: \"a kind\"\n", 3, "workflows.w.kind",
                 "[A-Za-z0-9._:-]");
  expect_refused("workflows:\n  w:\n    kind: k\n    lane: \"a lane\"\n", 4, "workflows.w.lane",
                 "workflows.w.lane");
  expect_refused("workflows:\n  w:\n    kind: k\n    spec: [1, 2]\n", 4, "workflows.w.spec",
                 "must be a map");
  expect_refused("workflows:\n  w:\n    kind: k\n    spec: {a: 1, a: 2}\n", 4, "workflows.w.spec.a",
                 "is repeated");
  expect_refused(
      "workflows:\n  w: {kind: k}\nreflexes:\n  - on: a\n    match:\n"
      "      - {path: $.x, op: bigger, value: 1}\n    start: w\n",
      6, "reflexes[0].match[0].op", "");
  expect_refused(
      "senses:\n  disk:\n    command: [df]\n    interval: 1m\n    migrations: ./nope\n", 5,
      "senses.disk.migrations",
      "must be an existing directory of .sql files; " + dir_ + "/nope is not a directory");
  expect_refused("senses: [disk]\n", 1, "senses", "must be a map of sense names to senses");
  expect_refused("workflows: cleanup\n", 1, "workflows", "must be a map");
  expect_refused("reflexes: {a: 1}\n", 1, "reflexes", "must be a list of reflexes");
  expect_refused("logs: 30\n", 1, "logs", "must be a map");
}

TEST_F(ObserveFile, AbsoluteMigrationsDirectoriesStayAsWritten) {
  const std::string sql = dir_ + "/sql";
  std::filesystem::create_directory(sql);
  auto c = load("senses:\n  disk: {command: [df], interval: 1m, migrations: " + sql + "}\n");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->first.senses[0].migrations_dir, sql);
  // A file is not a directory.
  write_file(dir_ + "/file.sql", "select 1;");
  expect_refused("senses:\n  disk: {command: [df], interval: 1m, migrations: file.sql}\n", 2,
                 "senses.disk.migrations", "is not a directory");
}

TEST_F(ObserveFile, SectionSizesAreBounded) {
  const auto senses_yaml = [](std::size_t n) {
    std::string y = "senses:\n";
    for (std::size_t i = 0; i < n; ++i) {
      y += "  s" + std::to_string(i) + ": {command: [x], interval: 1m}\n";
    }
    return y;
  };
  ASSERT_TRUE(load(senses_yaml(senses::kSensesMax)).ok());
  expect_refused(senses_yaml(senses::kSensesMax + 1), 2, "senses", "has more than 64 senses");

  const auto workflows_yaml = [](std::size_t n) {
    std::string y = "workflows:\n";
    for (std::size_t i = 0; i < n; ++i) y += "  w" + std::to_string(i) + ": {kind: k}\n";
    return y;
  };
  ASSERT_TRUE(load(workflows_yaml(senses::kWorkflowsMax)).ok());
  expect_refused(workflows_yaml(senses::kWorkflowsMax + 1), 2, "workflows",
                 "has more than 64 workflows");

  const auto reflexes_yaml = [](std::size_t n) {
    std::string y = "workflows:\n  w: {kind: k}\nreflexes:\n";
    for (std::size_t i = 0; i < n; ++i) y += "  - {on: a, start: w}\n";
    return y;
  };
  auto ok = load(reflexes_yaml(senses::kReflexesMax));
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->first.reflexes.back().name, "reflex-256");
  expect_refused(reflexes_yaml(senses::kReflexesMax + 1), 4, "reflexes",
                 "has more than 256 reflexes");

  std::string many_args = "senses:\n  s: {interval: 1m, command: [x";
  for (std::size_t i = 0; i < senses::kCommandArgsMax; ++i) many_args += ", a";
  expect_refused(many_args + "]}\n", 2, "senses.s.command", "has more than 256 items");
  expect_refused("senses:\n  s: {interval: 1m, command: \"" +
                     std::string(senses::kCommandBytesMax + 1, 'x') + "\"}\n",
                 2, "senses.s.command", "is longer than 65536 bytes");
}

// `cairnd --config bad.yaml` refuses to start: exit 2, the error on stderr
// with the file and line.
TEST(ObserveProcess, CairndRefusesABadConfigAtStart) {
  const std::string dir = make_temp_dir();
  const std::string config = dir + "/bad.yaml";
  write_file(config,
             "listen: 127.0.0.1:0\n"
             "senses:\n"
             "  disk:\n"
             "    command: [df, -P, /]\n"
             "    interval: 30s\n"
             "reflexes:\n"
             "  - on: signal.disk\n"
             "    run: dsik\n");
  const std::string log = dir + "/stderr";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    const std::string data = dir + "/data";
    ::execl(CAIRND_PATH, "cairnd", "--config", config.c_str(), "--data", data.c_str(),
            "--log-level", "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string err = read_all(log);
  EXPECT_NE(err.find(config + ":8: reflexes[0].run names \"dsik\", which is not a sense"),
            std::string::npos)
      << err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/data/cairn.db"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::testing
