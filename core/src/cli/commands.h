// One function per `cloq` subcommand, each in its own cmd_*.cpp; the table is in cli_main.cpp.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace cloq::cli {
using Args = std::vector<std::string>;
}  // namespace cloq::cli
