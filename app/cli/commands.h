// One function per `cloq` subcommand, each in its own cmd_*.cpp; the table is in cli_main.cpp.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace cloq::cli {
using Args = std::vector<std::string>;
int cmd_layer(const Args& args, std::ostream& out, std::ostream& err);
int cmd_info(const Args& args, std::ostream& out, std::ostream& err);
int cmd_calibrate(const Args& args, std::ostream& out, std::ostream& err);
int cmd_eval(const Args& args, std::ostream& out, std::ostream& err);
int cmd_analyze(const Args& args, std::ostream& out, std::ostream& err);
int cmd_quantize(const Args& args, std::ostream& out, std::ostream& err);
int cmd_dequantize(const Args& args, std::ostream& out, std::ostream& err);
int cmd_finetune(const Args& args, std::ostream& out, std::ostream& err);
int cmd_plan(const Args& args, std::ostream& out, std::ostream& err);
}  // namespace cloq::cli
