// purity_test.cc — checks, as a test, the first principle of ARCHITECTURE.md:
// the pure layers (model, store, core, plan, query, engine, sim) do no I/O,
// start no threads, read no clock or randomness except through the injected
// Clock/Rng, throw no exceptions, and never include a header of the shell
// (src/backend, src/server, src/senses, apps/).
//
// The scanner strips comments and string/char literals, then matches
// #include lines against a list of forbidden headers and the remaining code
// against a list of forbidden calls and identifiers. Every violation is
// reported as file:line. Native-only (it reads the source tree).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The pure layers, relative to the repository root.
constexpr std::string_view kPureDirs[] = {"src/model", "src/query",  "src/store", "src/core",
                                          "src/plan",  "src/engine", "src/sim"};

// Shell directories: a pure module may not include anything from these.
constexpr std::string_view kShellDirs[] = {"src/backend/", "src/server/", "src/senses/", "apps/"};

// The last words of a failed CAIRN_ASSERT go to stderr; nothing else may.
constexpr std::string_view kStdioAllowList[] = {"src/model/assert.cc"};

struct HeaderRule {
  const char* pattern;  // ECMAScript regex, matched against the whole header name
  const char* why;
};

// Why each header is out: threads and atomics (the core is single-threaded:
// one engine thread owns the state), clocks (time is injected), randomness
// (<random> engines and distributions differ between libstdc++ and libc++,
// which would break native/wasm32 trace equality; the Rng is injected), files,
// streams, sockets, processes, signals, and every shell dependency.
const HeaderRule kForbiddenHeaders[] = {
    {"thread|mutex|shared_mutex|condition_variable|future|semaphore|latch|barrier|stop_token",
     "threads and locks belong to the shell"},
    {"atomic", "the core is single-threaded; atomics belong to the shell"},
    {"execution", "parallel algorithms start threads"},
    {"chrono|ctime|time\\.h", "clocks are injected (model/clock.h)"},
    {"random", "randomness is injected (model/rng.h)"},
    {"fstream|filesystem|iostream|cstdio|stdio\\.h", "file and stream I/O belongs to the shell"},
    {"unistd\\.h|fcntl\\.h|dirent\\.h|dlfcn\\.h|poll\\.h|netdb\\.h|pthread\\.h",
     "OS interfaces belong to the shell"},
    {"signal\\.h|csignal|setjmp\\.h|csetjmp", "signals and non-local jumps belong to the shell"},
    {"(sys|netinet|arpa|linux)/.*", "OS interfaces belong to the shell"},
    {"sqlite3\\.h|libpq-fe\\.h|(postgresql|curl)/.*", "storage and network clients are backends"},
    {"(boost|spdlog|yaml-cpp|CLI)/.*", "shell dependencies"},
};

struct TokenRule {
  const char* pattern;  // ECMAScript regex over code with comments and literals blanked
  const char* why;
  bool free_function;  // match only unqualified, `::`- or `std::`-qualified calls
};

const TokenRule kForbiddenTokens[] = {
    {"\\b(system_clock|steady_clock|high_resolution_clock|file_clock|utc_clock)\\b",
     "read time through the injected Clock", false},
    {"\\b(random_device|mt19937|mt19937_64|default_random_engine)\\b",
     "draw randomness from the injected Rng", false},
    {"\\bstd::(thread|jthread|async|mutex|recursive_mutex|shared_mutex|condition_variable)\\b",
     "threads and locks belong to the shell", false},
    {"\\brand\\s*\\(", "draw randomness from the injected Rng", true},
    {"\\bsrand\\s*\\(", "draw randomness from the injected Rng", true},
    {"\\btime\\s*\\(\\s*(nullptr|NULL|0)?\\s*\\)", "read time through the injected Clock", true},
    {"\\b(getenv|secure_getenv|setenv|putenv)\\s*\\(", "configuration is passed in, not read",
     true},
    {"\\bsystem\\s*\\(", "processes belong to the shell", true},
    {"\\bthrow\\b", "errors are values (Status/Result), never exceptions", false},
    {"\\btry\\s*\\{", "errors are values (Status/Result), never exceptions", false},
    {"\\bcatch\\s*\\(", "errors are values (Status/Result), never exceptions", false},
};

const std::vector<std::regex>& CompiledHeaderRules() {
  static const std::vector<std::regex> compiled = [] {
    std::vector<std::regex> out;
    for (const HeaderRule& rule : kForbiddenHeaders) out.emplace_back(rule.pattern);
    return out;
  }();
  return compiled;
}

const std::vector<std::regex>& CompiledTokenRules() {
  static const std::vector<std::regex> compiled = [] {
    std::vector<std::regex> out;
    for (const TokenRule& rule : kForbiddenTokens) out.emplace_back(rule.pattern);
    return out;
  }();
  return compiled;
}

struct Violation {
  std::string file;
  int line = 0;
  std::string what;
};

std::string ToString(const Violation& v) {
  return v.file + ":" + std::to_string(v.line) + ": " + v.what;
}

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Returns `text` with comments removed and, when `blank_literals`, the
// contents of string and character literals replaced by spaces. Newlines are
// kept everywhere so line numbers stay valid.
std::string StripSource(std::string_view text, bool blank_literals) {
  std::string out;
  out.reserve(text.size());
  const std::size_t n = text.size();
  std::size_t i = 0;
  auto blank = [&](char c) { out.push_back(c == '\n' ? '\n' : ' '); };
  while (i < n) {
    const char c = text[i];
    const char next = i + 1 < n ? text[i + 1] : '\0';
    if (c == '/' && next == '/') {  // line comment (a trailing backslash continues it)
      while (i < n && text[i] != '\n') {
        if (text[i] == '\\' && i + 1 < n && text[i + 1] == '\n') {
          out.push_back('\n');
          i += 2;
          continue;
        }
        ++i;
      }
      continue;
    }
    if (c == '/' && next == '*') {  // block comment
      out.append("  ");
      i += 2;
      while (i < n && !(text[i] == '*' && i + 1 < n && text[i + 1] == '/')) blank(text[i++]);
      if (i < n) {
        out.append("  ");
        i += 2;
      }
      continue;
    }
    // Raw string literal: R"delim( ... )delim", with an optional prefix.
    if (c == 'R' && next == '"' &&
        (i == 0 || !IsIdentChar(text[i - 1]) || text[i - 1] == 'u' || text[i - 1] == 'U' ||
         text[i - 1] == 'L' || text[i - 1] == '8')) {
      const std::size_t open = text.find('(', i + 2);
      if (open != std::string_view::npos) {
        const std::string close = ")" + std::string(text.substr(i + 2, open - i - 2)) + "\"";
        const std::size_t body_end = std::min(text.find(close, open + 1), n);
        for (std::size_t k = i; k < body_end; ++k) {
          if (blank_literals && k > open) {
            blank(text[k]);
          } else {
            out.push_back(text[k]);
          }
        }
        if (body_end < n) out.append(close);
        i = std::min(body_end + close.size(), n);
        continue;
      }
    }
    // A quote after an identifier character that is a digit separator (1'000).
    if (c == '\'' && i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9' && i + 1 < n &&
        IsIdentChar(text[i + 1])) {
      std::size_t k = i;
      while (k > 0 && IsIdentChar(text[k - 1])) --k;
      if (text[k] >= '0' && text[k] <= '9') {
        out.push_back(c);
        ++i;
        continue;
      }
    }
    if (c == '"' || c == '\'') {
      out.push_back(c);
      ++i;
      while (i < n && text[i] != c && text[i] != '\n') {
        if (text[i] == '\\' && i + 1 < n) {
          if (blank_literals) {
            blank(text[i]);
            blank(text[i + 1]);
          } else {
            out.push_back(text[i]);
            out.push_back(text[i + 1]);
          }
          i += 2;
          continue;
        }
        if (blank_literals) {
          blank(text[i]);
        } else {
          out.push_back(text[i]);
        }
        ++i;
      }
      if (i < n && text[i] == c) {
        out.push_back(c);
        ++i;
      }
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Lexically normalises "a/b/../c" to "a/c"; a path escaping its root keeps "..".
std::string NormalizePath(const std::string& path) {
  return fs::path(path).lexically_normal().generic_string();
}

// Where an #include "..." resolves, relative to the repository root. Cairn
// includes are rooted at src/ ("model/json.h"); "./x.h" and "../x.h" are
// relative to the including file; a bare "x.h" is a sibling.
std::string ResolveQuotedInclude(std::string_view file, const std::string& header) {
  const std::string dir = fs::path(std::string(file)).parent_path().generic_string();
  if (header.starts_with("./") || header.starts_with("../") ||
      header.find('/') == std::string::npos) {
    return NormalizePath(dir + "/" + header);
  }
  if (header.starts_with("src/") || header.starts_with("apps/")) return NormalizePath(header);
  return NormalizePath("src/" + header);
}

// True when a free-function match at `pos` in `line` is a call of the C/C++
// library function: unqualified, `::name` or `std::name`, not `obj.name` /
// `ptr->name` / `Type::name`, and not a declaration `Type name(`.
bool IsLibraryCall(const std::string& line, std::size_t pos) {
  std::size_t k = pos;
  while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) --k;
  if (k == 0) return true;
  const char before = line[k - 1];
  if (before == '.') return false;
  if (before == '>' && k >= 2 && line[k - 2] == '-') return false;
  if (before == ':' && k >= 2 && line[k - 2] == ':') {
    std::size_t q = k - 2;
    while (q > 0 && (line[q - 1] == ' ' || line[q - 1] == '\t')) --q;
    std::size_t start = q;
    while (start > 0 && IsIdentChar(line[start - 1])) --start;
    const std::string qualifier = line.substr(start, q - start);
    return qualifier.empty() || qualifier == "std";
  }
  if (IsIdentChar(before)) {
    // `return rand()` is a call; `int rand()` or `Status system(` declares a name.
    std::size_t start = k;
    while (start > 0 && IsIdentChar(line[start - 1])) --start;
    const std::string word = line.substr(start, k - start);
    return word == "return" || word == "co_return" || word == "co_await" || word == "co_yield";
  }
  return true;
}

// Scans one source file of a pure module. `file` is the path relative to the
// repository root (used for messages, the allow-list and include resolution).
std::vector<Violation> ScanSource(std::string_view file, std::string_view text) {
  static const std::regex include_re(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::vector<Violation> out;
  const bool stdio_allowed = std::find(std::begin(kStdioAllowList), std::end(kStdioAllowList),
                                       file) != std::end(kStdioAllowList);

  const std::vector<std::string> with_literals = SplitLines(StripSource(text, false));
  const std::vector<std::string> code = SplitLines(StripSource(text, true));

  for (std::size_t i = 0; i < with_literals.size(); ++i) {
    const int line_no = static_cast<int>(i) + 1;
    std::smatch m;
    if (!std::regex_search(with_literals[i], m, include_re)) continue;
    const std::string header = m[2].str();
    const bool angled = m[1].str() == "<";
    for (std::size_t r = 0; r < std::size(kForbiddenHeaders); ++r) {
      const HeaderRule& rule = kForbiddenHeaders[r];
      if (!std::regex_match(header, CompiledHeaderRules()[r])) continue;
      if (stdio_allowed && (header == "cstdio" || header == "stdio.h")) continue;
      out.push_back(
          {std::string(file), line_no, "forbidden include <" + header + "> (" + rule.why + ")"});
    }
    const std::string resolved =
        angled ? NormalizePath(header) : ResolveQuotedInclude(file, header);
    for (std::string_view shell : kShellDirs) {
      if (resolved.starts_with(shell) || (!angled && header.starts_with(shell))) {
        out.push_back({std::string(file), line_no,
                       "includes shell header \"" + header + "\" (pure modules never depend on " +
                           std::string(shell) + ")"});
        break;
      }
    }
  }

  for (std::size_t i = 0; i < code.size(); ++i) {
    const std::string& line = code[i];
    // Preprocessor lines were checked above (and a blanked #include is empty).
    if (line.find_first_not_of(" \t") != std::string::npos &&
        line[line.find_first_not_of(" \t")] == '#') {
      continue;
    }
    for (std::size_t r = 0; r < std::size(kForbiddenTokens); ++r) {
      const TokenRule& rule = kForbiddenTokens[r];
      const std::regex& re = CompiledTokenRules()[r];
      for (auto it = std::sregex_iterator(line.begin(), line.end(), re);
           it != std::sregex_iterator(); ++it) {
        const std::size_t pos = static_cast<std::size_t>(it->position());
        if (rule.free_function && !IsLibraryCall(line, pos)) continue;
        out.push_back({std::string(file), static_cast<int>(i) + 1,
                       "forbidden `" + it->str() + "` (" + rule.why + ")"});
      }
    }
  }
  return out;
}

bool IsSourceFile(const fs::path& p) {
  static const std::string_view kExts[] = {".h",   ".hh",  ".hpp", ".cc",
                                           ".cpp", ".cxx", ".inc", ".ipp"};
  const std::string ext = p.extension().string();
  return std::find(std::begin(kExts), std::end(kExts), ext) != std::end(kExts);
}

struct TreeScan {
  std::vector<std::string> files;
  std::vector<Violation> violations;
};

TreeScan ScanPureModules(const fs::path& root) {
  TreeScan scan;
  for (std::string_view dir : kPureDirs) {
    const fs::path base = root / dir;
    if (!fs::is_directory(base)) continue;
    std::vector<fs::path> paths;
    for (const auto& entry : fs::recursive_directory_iterator(base)) {
      if (entry.is_regular_file() && IsSourceFile(entry.path())) paths.push_back(entry.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const fs::path& path : paths) {
      std::ifstream in(path, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      const std::string rel = fs::relative(path, root).generic_string();
      scan.files.push_back(rel);
      for (Violation& v : ScanSource(rel, text.str())) scan.violations.push_back(std::move(v));
    }
  }
  return scan;
}

std::string Report(const std::vector<Violation>& violations) {
  std::string report;
  for (const Violation& v : violations) report += ToString(v) + "\n";
  return report;
}

// ---------------------------------------------------------------------------
// The rule itself, applied to the tree.

TEST(Purity, PureModulesUseNoOsShellOrNondeterminism) {
  const fs::path root = CAIRN_SOURCE_DIR;
  ASSERT_TRUE(fs::is_directory(root / "src/model")) << "source tree not found at " << root;
  const TreeScan scan = ScanPureModules(root);
  ASSERT_FALSE(scan.files.empty()) << "no pure-module sources found under " << root;
  EXPECT_TRUE(scan.violations.empty())
      << scan.violations.size() << " purity violation(s) in " << scan.files.size() << " files:\n"
      << Report(scan.violations);
}

// ---------------------------------------------------------------------------
// Self-tests: the scanner finds what it must, and only that.

std::vector<std::string> Lines(const std::vector<Violation>& vs) {
  std::vector<std::string> out;
  for (const Violation& v : vs) out.push_back(ToString(v));
  return out;
}

TEST(PurityScanner, ReportsForbiddenHeadersWithFileAndLine) {
  const auto vs = ScanSource("src/core/bad.cc",
                             "#include \"core/ok.h\"\n"
                             "#include <vector>\n"
                             "#include <thread>\n"
                             "  #  include <chrono>\n"
                             "#include <sys/socket.h>\n"
                             "#include \"sqlite3.h\"\n"
                             "#include <boost/asio.hpp>\n"
                             "#include <random>\n"
                             "#include <atomic>\n");
  ASSERT_EQ(vs.size(), 7u) << Report(vs);
  EXPECT_EQ(vs[0].file, "src/core/bad.cc");
  EXPECT_EQ(vs[0].line, 3);
  EXPECT_NE(vs[0].what.find("<thread>"), std::string::npos);
  EXPECT_EQ(vs[1].line, 4);
  EXPECT_EQ(vs[2].line, 5);
  EXPECT_EQ(vs[3].line, 6);
  EXPECT_EQ(vs[4].line, 7);
  EXPECT_EQ(vs[5].line, 8);
  EXPECT_EQ(vs[6].line, 9);
}

TEST(PurityScanner, AllowsStdioOnlyInAssertCc) {
  EXPECT_TRUE(ScanSource("src/model/assert.cc", "#include <cstdio>\n").empty());
  EXPECT_EQ(ScanSource("src/model/json.cc", "#include <cstdio>\n").size(), 1u);
  EXPECT_EQ(ScanSource("src/model/assert.cc", "#include <fstream>\n").size(), 1u);
}

TEST(PurityScanner, ReportsShellIncludes) {
  EXPECT_EQ(ScanSource("src/core/a.cc", "#include \"backend/sqlite/store.h\"\n").size(), 1u);
  EXPECT_EQ(ScanSource("src/core/a.cc", "#include \"server/http.h\"\n").size(), 1u);
  EXPECT_EQ(ScanSource("src/core/a.cc", "#include \"../senses/runner.h\"\n").size(), 1u);
  EXPECT_EQ(ScanSource("src/core/a.cc", "#include \"../../apps/cairnd/x.h\"\n").size(), 1u);
  EXPECT_EQ(ScanSource("src/core/a.cc", "#include \"src/server/x.h\"\n").size(), 1u);
  EXPECT_TRUE(ScanSource("src/core/a.cc",
                         "#include \"store/session.h\"\n"
                         "#include \"blackboard.h\"\n"
                         "#include \"../model/json.h\"\n")
                  .empty());
}

TEST(PurityScanner, ReportsClockRandomnessEnvAndExceptions) {
  const auto vs = ScanSource("src/engine/e.cc",
                             "auto t = std::chrono::system_clock::now();\n"  // 1
                             "int r = rand();\n"                             // 2
                             "std::srand(1);\n"                              // 3
                             "auto s = time(nullptr);\n"                     // 4
                             "const char* h = std::getenv(\"HOME\");\n"      // 5
                             "if (x) throw Error{};\n"                       // 6
                             "try { f(); } catch (...) {}\n"                 // 7 (two)
                             "auto d = steady_clock::now();\n"               // 8
                             "std::random_device dev;\n"                     // 9
                             "std::thread worker(f);\n");                    // 10
  EXPECT_EQ(Lines(vs).size(), 11u) << Report(vs);
  std::vector<int> lines;
  for (const Violation& v : vs) lines.push_back(v.line);
  EXPECT_EQ(lines, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10}));
}

TEST(PurityScanner, IgnoresCommentsStringsAndLookalikes) {
  const auto vs =
      ScanSource("src/core/ok.cc",
                 "// #include <thread> and throw and rand() in a comment\n"
                 "/* #include <fstream>\n"
                 "   std::chrono::system_clock */\n"
                 "const char* s = \"throw rand() getenv( try { <chrono>\";\n"
                 "const char* r = R\"x(catch (all) time(nullptr))x\";\n"
                 "char q = '\"'; int big = 1'000'000;\n"
                 "auto v = rng.rand(); auto w = rng->rand(); Rng::rand();\n"
                 "int64_t now = clock.now_ms(); try_claim(id); retry_throwing(); thread_count++;\n"
                 "Status system(int x); int time(); // declarations, not calls\n"
                 "std::string t = \"a\\\"throw\";\n");
  EXPECT_TRUE(vs.empty()) << Report(vs);
}

TEST(PurityScanner, IncludeInsideCommentOrStringIsNotAnInclude) {
  EXPECT_TRUE(ScanSource("src/model/x.h", "// #include <iostream>\n").empty());
  EXPECT_TRUE(ScanSource("src/model/x.h", "/*\n#include <iostream>\n*/\n").empty());
}

}  // namespace
