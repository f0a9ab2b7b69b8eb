// The --out checks every folder-writing command shares.
#include <filesystem>

#include "cli.h"

namespace fs = std::filesystem;

namespace cloq::cli {

bool check_out_dir(const std::string& dir) {
    std::error_code ec;
    const auto st = fs::status(dir, ec);
    if (!fs::exists(st)) return false;
    if (!fs::is_directory(st)) throw Error(dir + ": exists and is not a folder; choose another --out");
    if (!fs::is_empty(dir, ec)) throw Error(dir + ": folder exists and is not empty; choose a new --out or empty it");
    return true;
}

}  // namespace cloq::cli
