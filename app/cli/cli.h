// The `cloq` command-line interface: a small argument parser, the option groups every command shares,
// a terminal progress bar with ETA and Ctrl-C handling, and the command table.
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "cloq/base/error.h"
#include "cloq/base/progress.h"
#include "cloq/settings/settings.h"

namespace cloq::cli {

// Wrong flags or values: printed as one line, exit code 2.
class UsageError : public Error {
public:
    using Error::Error;
};

class ArgParser {
public:
    ArgParser(std::string command, std::string synopsis, std::string description);

    void flag(const std::string& name, bool* target, const std::string& help);
    void option(const std::string& name, std::string* target, const std::string& metavar, const std::string& help,
                bool required = false);
    void option(const std::string& name, int* target, const std::string& metavar, const std::string& help);
    void option(const std::string& name, double* target, const std::string& metavar, const std::string& help);
    void option(const std::string& name, uint64_t* target, const std::string& metavar, const std::string& help);
    // A value parsed by a callback (e.g. an enum); the callback throws cloq::Error on a bad value.
    void option(const std::string& name, std::function<void(const std::string&)> set, const std::string& metavar,
                const std::string& help, const std::string& default_text);
    // One positional argument (e.g. `cloq dequantize DIR`).
    void positional(const std::string& metavar, std::string* target, const std::string& help);
    void section(const std::string& title);  // groups the options that follow in --help

    // Returns false when --help was asked for (help printed to out). Throws UsageError otherwise.
    bool parse(const std::vector<std::string>& args, std::ostream& out);
    bool was_set(const std::string& name) const;
    std::string help() const;

private:
    struct Opt {
        std::string name, metavar, help, default_text, section;
        bool is_flag = false, required = false;
        std::function<void(const std::string&)> set;
        bool* flag_target = nullptr;
    };
    std::string command_, synopsis_, description_, current_section_;
    std::vector<Opt> opts_;
    std::vector<std::tuple<std::string, std::string*, std::string>> positionals_;
    std::map<std::string, bool> seen_;
    Opt* find(const std::string& name);
};

// Option groups shared by layer / analyze / eval / quantize, so names and defaults never drift apart.
void add_quant_options(ArgParser& p, LayerSettings& s);
void add_device_option(ArgParser& p, DeviceChoice& d);
void add_calib_options(ArgParser& p, CalibSettings& s, bool calib_required);
// --NAME A:B, a part of a text's tokens (TextPart).
void add_text_part_option(ArgParser& p, const std::string& name, TextPart& part, const std::string& help);

// An --out folder may be new or empty; anything else would be overwritten or mixed with old results. Returns whether
// it exists (AtomicDir's replace_existing), throws cloq::Error naming the folder otherwise.
bool check_out_dir(const std::string& dir);

// A progress bar with ETA on a terminal (plain lines otherwise) that also installs a SIGINT handler which
// cancels the returned Progress: long commands stop cleanly on Ctrl-C.
class TerminalProgress {
public:
    TerminalProgress(std::ostream& err, std::string label);
    ~TerminalProgress();
    Progress& progress() { return progress_; }
    void finish();

private:
    Progress progress_;
    struct State;
    std::shared_ptr<State> state_;
};

struct Command {
    std::string name;
    std::string summary;
    std::function<int(const std::vector<std::string>& args, std::ostream& out, std::ostream& err)> run;
};
const std::vector<Command>& commands();

// Entry point of `cloq`: dispatches to a command; errors become "cloq CMD: message" and a non-zero exit
// (1 for a failed run, 2 for wrong usage, 130 when cancelled).
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace cloq::cli
