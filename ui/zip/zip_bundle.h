// Zip bundles of an export (docs/design.md, File formats: adapter + base + profile + report + charts), written and read
// with QuaZip. The interface is Qt-free so the CLI can call it; the implementation is the only export code that needs
// Qt.
//
// Writing: every regular file under a folder, stored as "<root>/<relative path>" (deflate, zip64 for big files),
// into a temporary sibling that is renamed over `zip_path` only when complete.
// Reading back (docs/design.md, Bad input) rejects, before extracting anything: absolute paths (also "C:/..."), ".."
// segments (after turning backslashes into slashes), symlink entries, encrypted entries, more entries or more
// declared bytes than the limits; while extracting it also counts the real bytes (declared sizes can lie). The
// extracted tree appears atomically at `dest_dir` (all or nothing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cloq/base/progress.h"

namespace cloq::zip {

void write_zip_bundle(const std::string& zip_path, const std::string& folder, const std::string& root_name,
                      const Progress& progress = {});

struct BundleLimits {
    uint64_t max_total_bytes = 64ull << 30;  // sum of uncompressed sizes
    uint64_t max_entries = 100000;
};

// Returns the relative paths of the files extracted. Throws cloq::Error naming the zip and the offending entry.
std::vector<std::string> extract_zip_bundle(const std::string& zip_path, const std::string& dest_dir,
                                            const BundleLimits& limits = {}, const Progress& progress = {});

// Checks an entry name as extract_zip_bundle does; returns the cleaned relative path or throws naming `where`.
std::string checked_entry_path(const std::string& name, const std::string& where);

}  // namespace cloq::zip
