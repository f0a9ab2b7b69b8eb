// Between core's settings profiles (cloq/profile.h: global settings + regex overrides, the file `cloq quantize
// --profile` reads) and the GUI's model: defaults plus per-layer settings by exact module name.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cloq/profile.h"

namespace cloq::ui {

struct ResolvedProfile {
    LayerSettings defaults;
    std::map<std::string, LayerSettings> overrides;  // modules whose settings differ from the defaults
    std::set<std::string> skipped;                   // modules the profile leaves unquantized
};

// Applies `p` to every module name (validating each module's settings; throws cloq::Error).
ResolvedProfile resolve_profile(const SettingsProfile& p, const std::vector<std::string>& module_names);

// The profile the GUI saves: the defaults as "global", one anchored exact-name override per layer that differs.
SettingsProfile make_profile(const ResolvedProfile& r);

}  // namespace cloq::ui
