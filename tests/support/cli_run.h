// `cloq` in-process for the suites: cloq::cli::run with captured standard output and error.
#pragma once
#include <sstream>
#include <string>
#include <vector>

#include "cli.h"

namespace cloq::test {

struct CliRun {
    int code = 0;
    std::string out, err;
};

inline CliRun cloq_run(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    const int code = cloq::cli::run(args, out, err);
    return {code, out.str(), err.str()};
}

// The last line of a command's output (a --json line).
inline std::string last_line(const std::string& s) {
    auto t = s;
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

}  // namespace cloq::test
