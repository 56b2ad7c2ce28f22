// process.cc — see process.h.
//
// One run: fork; the child sets up its process group, signals, pipes, working
// directory and file descriptors with async-signal-safe calls only (the parent
// has other threads) and execs; an exec failure travels back over a
// close-on-exec pipe. The parent then polls stdout, stderr, stdin (while it
// writes) and a pidfd of the child against the deadline; when the pidfd says
// the child exited, it SIGKILLs the group, drains what the pipes hold and
// reaps the child.
#include "senses/process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <utility>

#include "model/assert.h"

namespace cairn::senses {
namespace {

using Clock = std::chrono::steady_clock;

// One read or write moves at most this much (the default pipe capacity).
constexpr std::size_t kIoChunkBytes = 64u << 10;
// After the child exited, each pipe is drained with at most this many reads:
// 64 × 64 KiB covers the largest pipe a child may ask for (1 MiB by default).
constexpr int kDrainReadsMax = 64;
// Where argv[0] is looked up when `env` has no PATH (glibc's default).
constexpr const char* kDefaultPath = "/bin:/usr/bin";

// What the child reports over the error pipe before it exits 127.
enum Stage : int { kStageSetpgid = 1, kStageDup2, kStageChdir, kStageExec };
struct ChildError {
  int stage;
  int err;
};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// strerror's text, thread-safe ("No such file or directory").
std::string errno_text(int err) {
  const char* d = strerrordesc_np(err);
  return d ? std::string(d) : "errno " + std::to_string(err);
}

// A close-on-exec pipe whose ends are both ≥ 3, so that dup2 onto 0..2 in the
// child never meets one of them. Returns 0 or an errno.
int make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno;
  for (int& fd : p) {
    if (fd < 3) {
      const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
      const int err = errno;
      ::close(fd);
      fd = moved;
      if (moved < 0) {
        if (p[0] >= 0) ::close(p[0]);
        if (p[1] >= 0) ::close(p[1]);
        return err;
      }
    }
  }
  read_end = Fd(p[0]);
  write_end = Fd(p[1]);
  return 0;
}

// glibc 2.36 declares pidfd_open without C linkage in <sys/pidfd.h>; the
// system call is used directly (Linux ≥ 5.3). The fd is close-on-exec.
int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  CAIRN_ASSERT(flags >= 0);
  CAIRN_ASSERT(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

// Everything the child needs, prepared by the parent: after fork only
// async-signal-safe calls run, so nothing there may allocate.
struct ChildPlan {
  std::vector<std::string> paths;  // exec candidates, in order
  std::vector<char*> argv;         // null-terminated
  std::vector<char*> envp;         // null-terminated
  const char* cwd = nullptr;       // null: inherit
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1, error_fd = -1;
  int fd_limit = 0;  // for the fallback when close_range is missing
  pid_t parent = 0;  // the forking process
};

// The exec candidates for argv0: itself when it names a path, else each
// directory of PATH (an empty entry is the working directory).
std::vector<std::string> exec_candidates(const std::string& argv0,
                                         const std::vector<std::string>& env) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  std::string_view path = kDefaultPath;
  for (const std::string& kv : env) {
    if (kv.starts_with("PATH=")) {
      path = std::string_view(kv).substr(5);
      break;
    }
  }
  std::vector<std::string> out;
  for (;;) {
    const std::size_t colon = path.find(':');
    const std::string_view dir = path.substr(0, colon);
    out.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + argv0);
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

[[noreturn]] void child_fail(const ChildPlan& p, int stage, int err) {
  const ChildError e{stage, err};
  [[maybe_unused]] const ssize_t n = ::write(p.error_fd, &e, sizeof e);
  ::_exit(127);
}

// Runs in the forked child: async-signal-safe calls only.
[[noreturn]] void child_main(const ChildPlan& p) {
  if (::setpgid(0, 0) != 0) child_fail(p, kStageSetpgid, errno);
  // Should cairnd die without ending the run (SIGKILL), the sense dies with
  // it; what it forked is swept at the next start (kill_leftovers).
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != p.parent) ::_exit(127);
  // Every signal at its default (an ignored one would survive the exec) and
  // none blocked (the calling thread blocks SIGPIPE, cairnd may block more).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);  // EINVAL: fine
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // dup2 clears close-on-exec on 0..2; the pipe ends themselves are ≥ 3.
  if (::dup2(p.stdin_fd, 0) < 0 || ::dup2(p.stdout_fd, 1) < 0 || ::dup2(p.stderr_fd, 2) < 0) {
    child_fail(p, kStageDup2, errno);
  }
  if (p.cwd != nullptr && ::chdir(p.cwd) != 0) child_fail(p, kStageChdir, errno);
  // Nothing else crosses the exec: whatever another thread opened without
  // O_CLOEXEC (sockets, database files) is marked close-on-exec here. The
  // error pipe stays usable until the exec succeeds.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < p.fd_limit; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  // execvpe's rules: ENOENT-like errors try the next directory, EACCES is
  // remembered, anything else stops.
  bool eacces = false;
  int err = ENOENT;
  for (const std::string& path : p.paths) {
    ::execve(path.c_str(), p.argv.data(), p.envp.data());
    err = errno;
    if (err == EACCES) {
      eacces = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
               err != ETIMEDOUT) {
      break;
    }
  }
  child_fail(p, kStageExec, eacces && (err == ENOENT || err == ENOTDIR) ? EACCES : err);
}

// Blocks SIGPIPE in the calling thread for its lifetime, so that a write to
// the stdin of an exited child fails with EPIPE instead of killing cairnd.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    CAIRN_ASSERT(::pthread_sigmask(SIG_BLOCK, &s, &old_) == 0);
  }
  ~SigpipeBlock() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  // Consumes the SIGPIPE an EPIPE write just raised (pending on this thread,
  // as it is blocked; none when the process ignores SIGPIPE).
  static void consume() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    const timespec zero{0, 0};
    while (::sigtimedwait(&s, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t old_;
};

int ms_until(Clock::time_point t) {
  const auto left = t - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 1'000'000));
}

std::int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// The parent's side of one run.
class Run {
 public:
  Run(const ProcessSpec& spec, const std::atomic<bool>* cancel, pid_t pid, Fd in, Fd out, Fd err,
      Fd pidfd)
      : spec_(spec),
        cancel_(cancel),
        pid_(pid),
        in_(std::move(in)),
        out_(std::move(out)),
        err_(std::move(err)),
        pidfd_(std::move(pidfd)) {
    if (spec_.stdin_data.empty()) in_.reset();
    if (in_.valid()) set_nonblocking(in_.get());
    set_nonblocking(out_.get());
    set_nonblocking(err_.get());
  }

  // Until the child exited; then the group is killed, the pipes drained and
  // the child reaped.
  void wait(ProcessResult& r) {
    deadline_ =
        Clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(0, spec_.timeout_ms));
    bool exited = false;
    while (!exited) {
      pollfd fds[4];
      nfds_t n = 0;
      const auto add = [&](const Fd& fd, short events) -> int {
        if (!fd.valid()) return -1;
        fds[n] = pollfd{fd.get(), events, 0};
        return static_cast<int>(n++);
      };
      const int i_out = add(out_, POLLIN);
      const int i_err = add(err_, POLLIN);
      const int i_in = add(in_, POLLOUT);
      const int i_pid = add(pidfd_, POLLIN);
      int wait_ms = -1;
      if (phase_ == Phase::kRunning) {
        wait_ms = ms_until(deadline_);
        if (cancel_ != nullptr) wait_ms = std::min(wait_ms, kCancelPollMs);
      } else if (phase_ == Phase::kTerminating) {
        wait_ms = ms_until(grace_deadline_);
      }
      const int ready = ::poll(fds, n, wait_ms);
      if (ready < 0) {
        if (errno == EINTR) continue;
        // poll itself failed (ENOMEM): stop the child the hard way and reap.
        r.error = "poll: " + errno_text(errno);
        kill_group(SIGKILL);
        break;
      }
      const auto has = [&](int i) {
        return i >= 0 && (fds[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)) != 0;
      };
      if (has(i_out)) read_stdout(r);
      if (has(i_err)) read_stderr(r);
      if (has(i_in)) write_stdin();
      if (has(i_pid)) exited = true;
      if (exited) break;
      const auto now = Clock::now();
      if (phase_ == Phase::kRunning) {
        if (now >= deadline_) {
          begin_end(End::kTimedOut);
        } else if (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed)) {
          begin_end(End::kCancelled);
        }
      } else if (phase_ == Phase::kTerminating && now >= grace_deadline_) {
        kill_group(SIGKILL);
        r.killed_after_grace = true;
        phase_ = Phase::kKilling;
      }
    }
    // No orphan survives: whatever the child left in its group dies with it.
    // The child is not reaped yet, so its pid (the group's id) cannot have
    // been reused.
    kill_group(SIGKILL);
    for (int i = 0; i < kDrainReadsMax && out_.valid() && read_stdout(r); ++i) {
    }
    for (int i = 0; i < kDrainReadsMax && err_.valid() && read_stderr(r); ++i) {
    }
    in_.reset();
    out_.reset();
    err_.reset();

    int status = 0;
    pid_t w;
    do {
      w = ::waitpid(pid_, &status, 0);
    } while (w < 0 && errno == EINTR);
    CAIRN_ASSERT_MSG(w == pid_, "waitpid on a sense's child failed (reaped elsewhere?)");
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    if (ending_) {
      r.end = *ending_;
    } else {
      r.end = WIFSIGNALED(status) ? End::kSignaled : End::kExited;
    }
  }

 private:
  enum class Phase : std::uint8_t { kRunning, kTerminating, kKilling };

  void kill_group(int sig) { ::kill(-pid_, sig); }  // ESRCH: the group is gone already

  // Timeout or cancel: SIGTERM now, SIGKILL after the grace period.
  void begin_end(End why) {
    ending_ = why;
    kill_group(SIGTERM);
    grace_deadline_ =
        Clock::now() + std::chrono::milliseconds(std::max<std::int64_t>(0, spec_.grace_ms));
    phase_ = Phase::kTerminating;
  }

  // One read (non-blocking); EOF or an error closes our end. True when bytes
  // came.
  bool read_stdout(ProcessResult& r) {
    char buf[kIoChunkBytes];
    const ssize_t n = ::read(out_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (n <= 0) {
      out_.reset();
      return false;
    }
    r.out.append(buf, static_cast<std::size_t>(n));
    if (r.out.size() > spec_.limits.stdout_bytes_max) {
      r.out.resize(spec_.limits.stdout_bytes_max);
      if (!ending_) ending_ = End::kOutputTooLarge;
      kill_group(SIGKILL);
      phase_ = Phase::kKilling;
      out_.reset();  // nothing more is read; further writes fail
    }
    return true;
  }

  // Keeps the head, reads and drops the rest.
  bool read_stderr(ProcessResult& r) {
    char buf[kIoChunkBytes];
    const ssize_t n = ::read(err_.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
    if (n <= 0) {
      err_.reset();
      return false;
    }
    const std::size_t room = spec_.limits.stderr_bytes_max - r.err.size();
    r.err.append(buf, std::min(room, static_cast<std::size_t>(n)));
    return true;
  }

  void write_stdin() {
    const std::string& data = spec_.stdin_data;
    const std::size_t len = std::min(kIoChunkBytes, data.size() - in_off_);
    const ssize_t n = ::write(in_.get(), data.data() + in_off_, len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == EPIPE) SigpipeBlock::consume();
      in_.reset();  // the child closed its stdin or exited: the rest is dropped
      return;
    }
    in_off_ += static_cast<std::size_t>(n);
    if (in_off_ == data.size()) in_.reset();  // EOF for the child
  }

  const ProcessSpec& spec_;
  const std::atomic<bool>* cancel_;
  const pid_t pid_;
  Fd in_, out_, err_, pidfd_;
  std::size_t in_off_ = 0;
  Phase phase_ = Phase::kRunning;
  std::optional<End> ending_;
  Clock::time_point deadline_{}, grace_deadline_{};
};

ProcessResult spawn_failed(std::string error, Clock::time_point start) {
  ProcessResult r;
  r.end = End::kSpawnFailed;
  r.error = std::move(error);
  r.duration_ms = elapsed_ms(start);
  return r;
}

}  // namespace

std::string_view end_name(End e) {
  switch (e) {
    case End::kExited:
      return "exited";
    case End::kSignaled:
      return "signaled";
    case End::kTimedOut:
      return "timed_out";
    case End::kOutputTooLarge:
      return "output_too_large";
    case End::kSpawnFailed:
      return "spawn_failed";
    case End::kCancelled:
      return "cancelled";
  }
  CAIRN_UNREACHABLE();
}

ProcessResult run_process(const ProcessSpec& spec, const std::atomic<bool>* cancel) {
  const auto start = Clock::now();
  if (spec.argv.empty() || spec.argv[0].empty()) return spawn_failed("argv is empty", start);
  if (spec.stdin_data.size() > spec.limits.stdin_bytes_max) {
    return spawn_failed("stdin is " + std::to_string(spec.stdin_data.size()) +
                            " bytes, more than stdin_bytes_max (" +
                            std::to_string(spec.limits.stdin_bytes_max) + ")",
                        start);
  }
  const SigpipeBlock sigpipe_block;

  ChildPlan plan;
  plan.paths = exec_candidates(spec.argv[0], spec.env);
  for (const std::string& a : spec.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const std::string& e : spec.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  plan.parent = ::getpid();
  rlimit nofile{};
  plan.fd_limit = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
                      ? static_cast<int>(nofile.rlim_cur)
                      : (1 << 20);

  Fd in_r, in_w, out_r, out_w, err_r, err_w, error_r, error_w;
  for (auto [r, w] : {std::pair{&in_r, &in_w}, std::pair{&out_r, &out_w}, std::pair{&err_r, &err_w},
                      std::pair{&error_r, &error_w}}) {
    if (const int e = make_pipe(*r, *w); e != 0)
      return spawn_failed("pipe: " + errno_text(e), start);
  }
  plan.stdin_fd = in_r.get();
  plan.stdout_fd = out_w.get();
  plan.stderr_fd = err_w.get();
  plan.error_fd = error_w.get();

  const pid_t pid = ::fork();
  if (pid < 0) return spawn_failed("fork: " + errno_text(errno), start);
  if (pid == 0) child_main(plan);

  in_r.reset();
  out_w.reset();
  err_w.reset();
  error_w.reset();
  // EOF: the exec succeeded (the pipe closed with it); a ChildError: it did not.
  ChildError ce{};
  std::size_t got = 0;
  while (got < sizeof ce) {
    const ssize_t n = ::read(error_r.get(), reinterpret_cast<char*>(&ce) + got, sizeof ce - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  error_r.reset();

  const auto reap = [pid] {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  };
  if (got != 0) {
    reap();
    std::string what;
    switch (ce.stage) {
      case kStageSetpgid:
        what = "setpgid";
        break;
      case kStageDup2:
        what = "dup2";
        break;
      case kStageChdir:
        what = "chdir " + spec.cwd;
        break;
      default:
        what = "exec " + spec.argv[0];
        break;
    }
    ProcessResult r = spawn_failed(what + ": " + errno_text(ce.err), start);
    r.pid = pid;
    return r;
  }

  Fd pidfd(pidfd_open(pid));
  if (!pidfd.valid()) {
    const int e = errno;
    ::kill(-pid, SIGKILL);
    reap();
    ProcessResult r = spawn_failed("pidfd_open: " + errno_text(e), start);
    r.pid = pid;
    return r;
  }

  ProcessResult r;
  r.pid = pid;
  Run run(spec, cancel, pid, std::move(in_w), std::move(out_r), std::move(err_r), std::move(pidfd));
  run.wait(r);
  r.duration_ms = elapsed_ms(start);
  return r;
}

std::size_t kill_leftovers(const std::string& env_entry) {
  std::size_t killed = 0;
  std::error_code ec;
  const pid_t self = ::getpid();
  for (const auto& d : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = d.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == self) continue;
    std::ifstream in(d.path() / "environ", std::ios::binary);
    if (!in) continue;  // gone, or not ours to read
    const std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    bool match = false;
    for (std::size_t at = 0; at < env.size() && !match;) {
      const std::size_t end = std::min(env.find('\0', at), env.size());
      match = std::string_view(env).substr(at, end - at) == env_entry;
      at = end + 1;
    }
    if (!match) continue;
    const pid_t pgid = ::getpgid(pid);
    if (pgid > 1 && pgid != ::getpgid(0)) ::kill(-pgid, SIGKILL);
    ::kill(pid, SIGKILL);
    ++killed;
  }
  return killed;
}

}  // namespace cairn::senses
