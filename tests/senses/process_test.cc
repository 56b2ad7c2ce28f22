// Sense processes (senses/process.h): real child processes that exit, fail,
// hang, ignore SIGTERM, flood their stdout, leave grandchildren behind, or
// cannot be spawned at all.
//
// Every test runs with the test process as a child subreaper
// (PR_SET_CHILD_SUBREAPER), so whatever a run leaves behind in its process
// group is re-parented to the test, which can then see how it died and reap
// it: expect_group_gone() checks that nothing of the group is alive (nor a
// zombie) after run_process returned. Timeouts are small; nothing asserts on
// durations.
#include "senses/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace cairn::senses {
namespace {

const std::string kScripts = std::string(CAIRN_SOURCE_DIR) + "/tests/senses/scripts/";
const std::string kPath = "PATH=/usr/local/bin:/usr/bin:/bin";

ProcessSpec script(const std::string& name) {
  ProcessSpec spec;
  spec.argv = {kScripts + name};
  spec.env = {kPath};
  return spec;
}

ProcessSpec shell(const std::string& text) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", text};
  spec.env = {kPath};
  return spec;
}

// True when every reaped member died of `sig` (0: of any signal).
bool all_killed(const std::map<pid_t, int>& reaped, int sig) {
  for (const auto& [pid, status] : reaped) {
    if (!WIFSIGNALED(status) || (sig != 0 && WTERMSIG(status) != sig)) return false;
  }
  return true;
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0); }
  void TearDown() override { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }

  // Reaps every member of process group `pgid` re-parented to this process
  // and checks that none is left anywhere, alive or zombie. A member still
  // alive after kGroupGoneWaitMs fails the test (the group kill did not reach
  // it). Returns the reaped members' pids and wait statuses (a member may
  // have exited by itself before the kill).
  static std::map<pid_t, int> expect_group_gone(pid_t pgid) {
    constexpr int kGroupGoneWaitMs = 10'000;
    std::map<pid_t, int> reaped;
    const auto give_up =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kGroupGoneWaitMs);
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(-pgid, &status, WNOHANG);
      if (r > 0) {
        reaped[r] = status;
        continue;
      }
      if (r < 0 && errno == ECHILD) break;
      if (std::chrono::steady_clock::now() > give_up) {
        ADD_FAILURE() << "a member of process group " << pgid << " is still alive";
        ::kill(-pgid, SIGKILL);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a SIGKILL is on its way
    }
    errno = 0;
    EXPECT_EQ(::kill(-pgid, 0), -1) << "process group " << pgid << " still has members";
    EXPECT_EQ(errno, ESRCH);
    return reaped;
  }
};

TEST_F(ProcessTest, ExitZeroWithOutput) {
  ProcessSpec spec = shell("printf '%s' '{\"signal\": 1}'; printf 'a note' >&2");
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(end_name(r.end), "exited");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.out, "{\"signal\": 1}");
  EXPECT_EQ(r.err, "a note");
  EXPECT_TRUE(r.error.empty());
  EXPECT_GT(r.pid, 0);
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, ExitThreeKeepsOutputAndStderr) {
  const ProcessResult r = run_process(script("exit3.sh"));
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out before failing\n");
  EXPECT_EQ(r.err, "something went wrong\n");
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, PrintsNothing) {
  const ProcessResult r = run_process(shell("exit 0"));
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, GarbageBytesAreKeptAsIs) {
  const ProcessResult r = run_process(script("garbage.sh"));
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, std::string("not json \0\xff\x80\r{\"x\":", 18));
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, TenMebibytesOfOutputKillTheGroup) {
  ProcessSpec spec = script("big_output.sh");
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kOutputTooLarge);
  EXPECT_EQ(end_name(r.end), "output_too_large");
  EXPECT_EQ(r.out.size(), spec.limits.stdout_bytes_max);
  EXPECT_EQ(r.out, std::string(spec.limits.stdout_bytes_max, '\0'));
  EXPECT_FALSE(r.killed_after_grace);
  // SIGKILL at once, not SIGTERM and a grace period; the head writing
  // 10 MiB (if the shell forked it) was killed too.
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(all_killed(expect_group_gone(r.pid), SIGKILL));
}

TEST_F(ProcessTest, OutputExactlyAtTheCapIsFine) {
  ProcessSpec spec = shell("head -c 4096 /dev/zero");
  spec.limits.stdout_bytes_max = 4096;
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out.size(), 4096u);
  spec = shell("head -c 4097 /dev/zero");
  spec.limits.stdout_bytes_max = 4096;
  const ProcessResult over = run_process(spec);
  EXPECT_EQ(over.end, End::kOutputTooLarge);
  EXPECT_EQ(over.out.size(), 4096u);
  expect_group_gone(over.pid);
}

TEST_F(ProcessTest, StderrKeepsItsHeadAndIsDrained) {
  // 200 KiB on stderr with a 1 KiB cap: the child is never blocked on a full
  // pipe, and the first KiB is kept.
  ProcessSpec spec = shell("head -c 204800 /dev/zero | tr '\\0' e >&2; echo done");
  spec.limits.stderr_bytes_max = 1024;
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "done\n");
  EXPECT_EQ(r.err, std::string(1024, 'e'));
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, HangIsTerminatedAfterTheTimeout) {
  ProcessSpec spec = script("hang.sh");
  spec.timeout_ms = 300;
  spec.grace_ms = 5'000;  // SIGTERM is enough: the grace period is not used up
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kTimedOut);
  EXPECT_EQ(end_name(r.end), "timed_out");
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_FALSE(r.killed_after_grace);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.out.find("never"), std::string::npos);
  // A sleep the shell forked was in the group: SIGTERM reached it too (or the
  // final SIGKILL did); it cannot have ended by itself.
  EXPECT_TRUE(all_killed(expect_group_gone(r.pid), 0));
}

TEST_F(ProcessTest, IgnoringSigtermEndsWithSigkillAfterTheGrace) {
  ProcessSpec spec = script("ignore_term.sh");
  // Long enough that the shell has installed its trap before SIGTERM comes
  // even on a loaded machine ("ready" below proves it did).
  spec.timeout_ms = 2'000;
  spec.grace_ms = 300;
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.out, "ready\n");
  EXPECT_EQ(r.end, End::kTimedOut);
  EXPECT_TRUE(r.killed_after_grace);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_TRUE(all_killed(expect_group_gone(r.pid), SIGKILL));
}

TEST_F(ProcessTest, GrandchildDoesNotOutliveTheRun) {
  // The grandchild keeps the stdout pipe open and sleeps 60 s; the run ends
  // when the child exits (not at the pipe's EOF), and the group kill takes
  // the grandchild with it.
  ProcessSpec spec = script("grandchild.sh");
  spec.timeout_ms = 60'000;  // a run held open by the grandchild would show as a timeout
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_FALSE(r.out.empty());
  const pid_t grandchild = static_cast<pid_t>(std::stol(r.out));
  ASSERT_GT(grandchild, 0);
  EXPECT_NE(grandchild, r.pid);
  const std::map<pid_t, int> reaped = expect_group_gone(r.pid);
  ASSERT_TRUE(reaped.contains(grandchild))
      << "the grandchild " << grandchild << " was not among the group's members";
  const int status = reaped.at(grandchild);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the grandchild was not killed by the group's SIGKILL";
  errno = 0;
  EXPECT_EQ(::kill(grandchild, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(ProcessTest, ChildThatDoesNotReadItsStdin) {
  ProcessSpec spec = shell("echo ok");
  spec.stdin_data = std::string(1u << 20, 'x');
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "ok\n");
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, WritingToAClosedStdinNeitherKillsNorLeavesSigpipe) {
  // The child closes its stdin at once, so our write fails with EPIPE while
  // it is still alive; this process must survive with no SIGPIPE pending and
  // its signal mask as it was.
  sigset_t before;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &before), 0);
  ASSERT_FALSE(sigismember(&before, SIGPIPE));
  ProcessSpec spec = script("closes_stdin.sh");
  spec.stdin_data = std::string(1u << 20, 'x');
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out, "ok\n");
  sigset_t pending, after;
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_FALSE(sigismember(&pending, SIGPIPE));
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &after), 0);
  EXPECT_FALSE(sigismember(&after, SIGPIPE));
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, StdinIsDeliveredWholeAndClosed) {
  // 1 MiB through cat: we write stdin while reading stdout (neither side
  // blocks the other), and cat ends because stdin is closed after the data.
  ProcessSpec spec = shell("cat");
  std::string data;
  for (int i = 0; data.size() < (1u << 20); ++i) data += std::to_string(i) + '\n';
  data.resize(1u << 20);
  spec.stdin_data = data;
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, data);
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, StdinOverTheCapIsRefused) {
  ProcessSpec spec = shell("cat");
  spec.limits.stdin_bytes_max = 10;
  spec.stdin_data = std::string(11, 'x');
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(r.pid, 0);
  EXPECT_NE(r.error.find("stdin_bytes_max"), std::string::npos) << r.error;
}

TEST_F(ProcessTest, EnvironmentIsExactlyWhatWasPassed) {
  // HOME, PATH, USER... of this process do not leak; PATH is not needed when
  // argv[0] is a path.
  ASSERT_NE(std::getenv("PATH"), nullptr);
  ProcessSpec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {"CAIRN_SENSE_DB=/data/senses/a.db", "X=two words", "EMPTY="};
  const ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out, "CAIRN_SENSE_DB=/data/senses/a.db\nX=two words\nEMPTY=\n");
  spec.env = {};
  EXPECT_EQ(run_process(spec).out, "");
}

TEST_F(ProcessTest, Argv0IsLookedUpInThePathOfTheGivenEnvironment) {
  ProcessSpec spec;
  spec.argv = {"env"};
  spec.env = {"PATH=/nonexistent:/usr/bin:/bin"};
  ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out, "PATH=/nonexistent:/usr/bin:/bin\n");
  // A PATH that does not hold it: not found, whatever this process's PATH.
  spec.env = {"PATH=/nonexistent"};
  r = run_process(spec);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(r.error, "exec env: No such file or directory");
}

TEST_F(ProcessTest, MissingProgramIsASpawnFailureWithErrnoText) {
  ProcessSpec spec;
  spec.argv = {"cairn-no-such-program", "--flag"};
  spec.env = {kPath};
  ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(end_name(r.end), "spawn_failed");
  EXPECT_EQ(r.error, "exec cairn-no-such-program: No such file or directory");
  EXPECT_EQ(r.exit_code, -1);  // not a 127 from a shell
  EXPECT_EQ(r.out, "");

  spec.argv = {"/nonexistent/dir/prog"};
  r = run_process(spec);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(r.error, "exec /nonexistent/dir/prog: No such file or directory");
}

TEST_F(ProcessTest, NonExecutableFileIsASpawnFailure) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("cairn-noexec-" + std::to_string(::getpid())))
          .string();
  { std::ofstream(path) << "#!/bin/sh\necho hi\n"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ProcessSpec spec;
  spec.argv = {path};
  const ProcessResult r = run_process(spec);
  std::filesystem::remove(path);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(r.error, "exec " + path + ": Permission denied");
}

TEST_F(ProcessTest, WorkingDirectory) {
  ProcessSpec spec = shell("pwd");
  spec.cwd = "/usr";
  ProcessResult r = run_process(spec);
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out, "/usr\n");
  spec.cwd = "/nonexistent-cairn-dir";
  r = run_process(spec);
  EXPECT_EQ(r.end, End::kSpawnFailed);
  EXPECT_EQ(r.error, "chdir /nonexistent-cairn-dir: No such file or directory");
}

TEST_F(ProcessTest, NoOtherFileDescriptorIsInherited) {
  // An fd this process opened without O_CLOEXEC (as a library might) does not
  // reach the child.
  const int fd = ::open("/dev/null", O_RDONLY);  // NOLINT: no O_CLOEXEC on purpose
  ASSERT_GE(fd, 3);
  const std::string probe = "/proc/self/fd/" + std::to_string(fd);
  ProcessSpec spec = shell("if [ -e " + probe + " ]; then echo leaked; else echo closed; fi");
  const ProcessResult r = run_process(spec);
  ::close(fd);
  EXPECT_EQ(r.out, "closed\n");
}

TEST_F(ProcessTest, ChildStartsWithDefaultSignalsNoneBlocked) {
  // This process ignores SIGPIPE for the test (as a server might); the child
  // must not inherit that, nor the blocked SIGPIPE of the running thread.
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old), 0);
  ProcessSpec spec;
  spec.argv = {"/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"};
  const ProcessResult r = run_process(spec);
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_EQ(r.end, End::kExited);
  // Signals 32 and 33 are the C library's own (thread cancellation, setxid):
  // its sigaction refuses to touch them, so an ignore inherited from whatever
  // started the tests stays — harmless, the program's C library installs its
  // own handlers. Every other signal is default and none is blocked.
  const std::string blk = "SigBlk:\t";
  const std::string ign_field = "SigIgn:\t";
  const auto blk_at = r.out.find(blk);
  const auto ign_at = r.out.find(ign_field);
  ASSERT_NE(blk_at, std::string::npos) << r.out;
  ASSERT_NE(ign_at, std::string::npos) << r.out;
  const unsigned long long blocked =
      std::stoull(r.out.substr(blk_at + blk.size(), 16), nullptr, 16);
  const unsigned long long ignored =
      std::stoull(r.out.substr(ign_at + ign_field.size(), 16), nullptr, 16);
  const unsigned long long libc_own = (1ull << 31) | (1ull << 32);  // signals 32, 33
  EXPECT_EQ(blocked, 0u) << r.out;
  EXPECT_EQ(ignored & ~libc_own, 0u) << r.out;
}

TEST_F(ProcessTest, RunsInItsOwnProcessGroup) {
  // Field 5 of /proc/<pid>/stat is the process group ("(sh)" has no space).
  const ProcessResult r = run_process(shell("cut -d' ' -f5 /proc/$$/stat; echo $$"));
  EXPECT_EQ(r.end, End::kExited);
  EXPECT_EQ(r.out, std::to_string(r.pid) + "\n" + std::to_string(r.pid) + "\n");
  EXPECT_NE(r.pid, ::getpgrp());
}

TEST_F(ProcessTest, KilledBySignalIsSignaled) {
  const ProcessResult r = run_process(shell("kill -USR1 $$; sleep 5"));
  EXPECT_EQ(r.end, End::kSignaled);
  EXPECT_EQ(end_name(r.end), "signaled");
  EXPECT_EQ(r.signal, SIGUSR1);
  EXPECT_EQ(r.exit_code, -1);
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, CancelEndsTheRunLikeATimeout) {
  std::atomic<bool> cancel{false};
  ProcessSpec spec = script("hang.sh");
  spec.timeout_ms = 60'000;
  spec.grace_ms = 5'000;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.store(true);
  });
  const ProcessResult r = run_process(spec, &cancel);
  canceller.join();
  EXPECT_EQ(r.end, End::kCancelled);
  EXPECT_EQ(end_name(r.end), "cancelled");
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_FALSE(r.killed_after_grace);
  expect_group_gone(r.pid);
}

TEST_F(ProcessTest, SeveralThreadsRunAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kRunsEach = 5;
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &good] {
      for (int i = 0; i < kRunsEach; ++i) {
        ProcessSpec spec = shell("cat; echo \"$N\"");
        spec.env.push_back("N=" + std::to_string(t * 100 + i));
        spec.stdin_data = std::string(100'000, static_cast<char>('a' + t));
        const ProcessResult r = run_process(spec);
        if (r.end == End::kExited && r.exit_code == 0 &&
            r.out == spec.stdin_data + std::to_string(t * 100 + i) + "\n") {
          ++good;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(good.load(), kThreads * kRunsEach);
}

TEST(ProcessEndName, EveryEndHasAName) {
  EXPECT_EQ(end_name(End::kExited), "exited");
  EXPECT_EQ(end_name(End::kSignaled), "signaled");
  EXPECT_EQ(end_name(End::kTimedOut), "timed_out");
  EXPECT_EQ(end_name(End::kOutputTooLarge), "output_too_large");
  EXPECT_EQ(end_name(End::kSpawnFailed), "spawn_failed");
  EXPECT_EQ(end_name(End::kCancelled), "cancelled");
}

}  // namespace
}  // namespace cairn::senses
