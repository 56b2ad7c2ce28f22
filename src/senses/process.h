// process.h — runs one child process, bounded in every way (shell).
//
// A sense run is a child process in its own process group with exactly the
// environment it is given, stdin/stdout/stderr pipes and no other inherited
// file descriptor. Its stdout and stderr are capped, its stdin is bounded, its
// run time is bounded (timeout → SIGTERM to the group → grace → SIGKILL to the
// group), and when the child has exited — for whatever reason, also exit 0 —
// the whole group is SIGKILLed before run_process returns, so nothing it
// forked into its group outlives the run.
//
// Callers: the observation runtime (senses/runtime.*), from any thread.
// docs/senses.md, "Sense processes", describes the behaviour for users.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::senses {

struct ProcessLimits {
  // More stdout than this: the group is killed, End::kOutputTooLarge, and
  // `out` holds the first stdout_bytes_max bytes.
  std::size_t stdout_bytes_max = 1u << 20;
  // Stderr is kept up to this many bytes (its head); the rest is read and
  // discarded, so a chatty child never blocks on a full pipe.
  std::size_t stderr_bytes_max = 16u << 10;
  // A larger stdin_data is refused before anything is spawned (kSpawnFailed).
  std::size_t stdin_bytes_max = 4u << 20;
};

struct ProcessSpec {
  // argv[0] without a '/' is looked up in the PATH of `env` (execvpe
  // semantics; no PATH in `env`: "/bin:/usr/bin"). For a string command the
  // caller passes {"/bin/sh", "-c", text}. Must not be empty.
  std::vector<std::string> argv;
  // The WHOLE environment ("K=V" each); nothing is inherited from cairnd.
  std::vector<std::string> env;
  // The child's working directory; empty: cairnd's.
  std::string cwd;
  // Written to the child's stdin, which is then closed. A child that does not
  // read it (or exits early) is fine: the rest is dropped (EPIPE).
  std::string stdin_data;
  std::int64_t timeout_ms = 30'000;  // from the spawn to SIGTERM
  std::int64_t grace_ms = 5'000;     // from SIGTERM to SIGKILL
  ProcessLimits limits;
};

// How a run ended.
enum class End : std::uint8_t {
  kExited,          // the child exited by itself (exit_code)
  kSignaled,        // a signal it did not get from us ended it (signal)
  kTimedOut,        // timeout_ms passed: SIGTERM, then maybe SIGKILL
  kOutputTooLarge,  // stdout exceeded stdout_bytes_max: SIGKILL
  kSpawnFailed,     // nothing ran (error says why)
  kCancelled,       // the cancel flag was set: SIGTERM, then maybe SIGKILL
};

struct ProcessResult {
  End end = End::kSpawnFailed;
  int exit_code = -1;  // the child's exit status when it exited (any End), else -1
  // kSignaled: the signal; kTimedOut/kCancelled/kOutputTooLarge: the signal
  // that finally ended the child (SIGTERM or SIGKILL; 0 if it exited by itself
  // after SIGTERM).
  int signal = 0;
  bool killed_after_grace = false;  // kTimedOut/kCancelled: SIGTERM was not enough
  std::string out;                  // stdout (≤ stdout_bytes_max bytes, as is)
  std::string err;                  // stderr's head (≤ stderr_bytes_max bytes)
  std::string error;                // kSpawnFailed: what failed ("exec foo: No such file ...")
  std::int64_t duration_ms = 0;     // spawn to reap (steady clock)
  pid_t pid = 0;                    // the child's pid (= its process group id); 0 if none
};

// "exited", "signaled", "timed_out", "output_too_large", "spawn_failed",
// "cancelled".
std::string_view end_name(End e);

// Runs `spec` to its end. Blocking; thread-safe (several threads may run
// processes at once). `cancel`, when given and set to true by another thread,
// ends the run like a timeout (SIGTERM to the group, grace, SIGKILL) with
// End::kCancelled; it is polled at least every kCancelPollMs.
//
// REQUIRES: nothing else in the process reaps children it did not start
// (no waitpid(-1), SIGCHLD not set to SIG_IGN): run_process reaps its own
// child by pid, and asserts it could.
//
// SIGPIPE: the calling thread blocks SIGPIPE while it runs and consumes the
// one a write to an exited child raises, so it never reaches the process; the
// child starts with every signal at its default and none blocked.
ProcessResult run_process(const ProcessSpec& spec, const std::atomic<bool>* cancel = nullptr);

// SIGKILLs every process (and its process group) whose environment holds
// exactly `env_entry` (e.g. "CAIRN_SENSE_DB=/data/senses/disk.db"): what a
// sense left running when its runtime died without ending the run (SIGKILL,
// power cut — the sense itself dies with the runtime, PR_SET_PDEATHSIG, but
// not what it forked). Only processes this user may read are seen. Returns
// how many matched.
std::size_t kill_leftovers(const std::string& env_entry);

inline constexpr int kCancelPollMs = 50;

}  // namespace cairn::senses
