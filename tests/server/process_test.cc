// process_test.cc — the cairnd binary: prints its URL, serves, and exits 0
// on SIGTERM after finishing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "server/test_server.h"

namespace cairn::testing {
namespace {

TEST(Process, PrintsUrlServesAndExitsZeroOnSigterm) {
  const std::string dir = make_temp_dir();
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::execl(CAIRND_PATH, "cairnd", "--data", dir.c_str(), "--listen", "127.0.0.1:0", "--log-level",
            "warn", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char ch;
  while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ::close(out[0]);
  const std::string prefix = "cairnd listening on http://127.0.0.1:";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  const auto port = static_cast<std::uint16_t>(std::stoi(line.substr(prefix.size())));
  auto r = http(port, "POST", "/v1/facts", R"({"kind":"obs","content":1})");
  EXPECT_EQ(r.status, 201);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::testing
