// cairnd_process.h — the real cairnd binary as a child process for the crash
// test: fork/exec on a data directory and a free loopback port, read the
// printed URL, then SIGKILL or SIGTERM it. Shell code (tests only).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace cairn::testing {

class CairndProcess {
 public:
  // `log_path` receives the server's stderr (JSON log lines), appended.
  // `extra_args` follow the data directory and listen address (e.g. --store;
  // a --log-level there replaces the default `warn`, a --listen the default
  // 127.0.0.1:0, which picks a free port each start). `extra_env` entries
  // (KEY=VALUE) are added to the inherited environment.
  CairndProcess(std::string binary, std::string data_dir, std::string log_path,
                std::vector<std::string> extra_args = {}, std::vector<std::string> extra_env = {})
      : binary_(std::move(binary)),
        data_dir_(std::move(data_dir)),
        log_path_(std::move(log_path)),
        extra_args_(std::move(extra_args)),
        extra_env_(std::move(extra_env)) {}
  ~CairndProcess() {
    if (running()) kill9();
  }
  CairndProcess(const CairndProcess&) = delete;
  CairndProcess& operator=(const CairndProcess&) = delete;

  bool running() const { return pid_ > 0; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Starts cairnd and waits (up to start_timeout_ms) for its URL line.
  // Returns "" on success, otherwise what went wrong.
  std::string start(int start_timeout_ms = 60'000) {
    int out[2];
    if (::pipe(out) != 0) return "pipe failed";
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return "cannot open " + log_path_;
    // Everything the child needs is prepared before fork (only async-signal-safe
    // calls happen between fork and exec).
    std::vector<const char*> argv = {"cairnd", "--data", data_dir_.c_str()};
    if (std::find(extra_args_.begin(), extra_args_.end(), "--listen") == extra_args_.end()) {
      argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
    }
    if (std::find(extra_args_.begin(), extra_args_.end(), "--log-level") == extra_args_.end()) {
      argv.insert(argv.end(), {"--log-level", "warn"});
    }
    for (const std::string& a : extra_args_) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::vector<const char*> envp;
    for (const std::string& e : extra_env_) envp.push_back(e.c_str());  // first: getenv's pick
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::dup2(log_fd, 2);
      ::close(out[0]);
      ::execve(binary_.c_str(), const_cast<char* const*>(argv.data()),
               const_cast<char* const*>(envp.data()));
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(log_fd);
    pid_ = pid;
    std::string line;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(start_timeout_ms);
    bool got_line = false;
    while (!got_line) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      pollfd p{out[0], POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char ch;
      const ssize_t n = ::read(out[0], &ch, 1);
      if (n != 1) break;
      if (ch == '\n') {
        got_line = true;
      } else {
        line += ch;
      }
    }
    ::close(out[0]);
    const std::string prefix = "cairnd listening on http://127.0.0.1:";
    if (!got_line || line.rfind(prefix, 0) != 0) {
      kill9();
      return "cairnd did not print its URL (got \"" + line + "\"); the end of " + log_path_ +
             ":\n" + log_tail();
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
    return "";
  }

  // SIGKILL and reap. Returns "" when the process died of that SIGKILL, else
  // how it ended before (a crash of its own is a finding).
  std::string kill9() {
    if (pid_ <= 0) return "";
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return "";
    return "cairnd had already ended by itself: " + describe(status);
  }

  // SIGTERM and wait up to timeout_ms. Returns "" on exit code 0.
  std::string terminate(int timeout_ms) {
    if (pid_ <= 0) return "not running";
    ::kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) return "waitpid failed";
      if (std::chrono::steady_clock::now() >= deadline) {
        kill9();
        return "cairnd did not exit within " + std::to_string(timeout_ms) + " ms of SIGTERM";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    return "cairnd did not exit 0 after SIGTERM: " + describe(status);
  }

 private:
  static std::string describe(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
  }

  // The last lines of the server's log (its reason for not starting).
  std::string log_tail(std::size_t bytes_max = 2'000) const {
    std::ifstream in(log_path_, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > bytes_max ? all.substr(all.size() - bytes_max) : all;
  }

  std::string binary_;
  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> extra_env_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace cairn::testing
