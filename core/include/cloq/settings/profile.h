// A settings profile (docs/design.md, File formats): global LayerSettings plus per-module overrides chosen by regex on
// module names, e.g. 3-bit for down_proj or rank 128 for the first two blocks. Written by `cloq quantize`
// (OUT/profile.json, the settings actually used), by the GUI, and read back with `--profile`.
//
//   { "format": "cloq-profile", "version": 1,
//     "global": { "bits": 2, "group": 64, "rank": 64, "init": "cloq", ... },        // settings.h keys, partial ok
//     "overrides": [ { "match": "mlp\\.down_proj", "bits": 3 },
//                    { "match": "layers\\.[01]\\.", "rank": 128 },
//                    { "match": "lm_head", "skip": true } ] }
//
// "match" is an ECMAScript regex searched (unanchored) in the full module name ("model.layers.0.mlp.down_proj").
// Every matching override applies in file order on top of the global settings (later ones win); "skip": true leaves
// the module unquantized and without an adapter.
#pragma once
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cloq/settings/settings.h"

namespace cloq {

struct LayerOverride {
    std::string match;        // regex on the module name
    nlohmann::json settings;  // partial LayerSettings (settings.h keys)
    bool skip = false;
};

struct SettingsProfile {
    LayerSettings global;
    std::vector<LayerOverride> overrides;

    // The settings for one module (validated); `skipped` is set when an override skips it.
    LayerSettings for_module(const std::string& module, bool* skipped = nullptr) const;
};

// JSON form above. from_json: unknown keys, wrong types, invalid regexes and invalid settings throw cloq::Error
// naming `where` and the override's index.
nlohmann::ordered_json to_json(const SettingsProfile& p);
SettingsProfile profile_from_json(const nlohmann::json& j, const std::string& where);

// A profile applied to a model's module names: the defaults plus each module whose settings differ, and the modules
// left unquantized. Every front end works from this form (the GUI edits it; analyze, eval and quantize read it).
struct ResolvedProfile {
    LayerSettings defaults;
    std::map<std::string, LayerSettings> overrides;  // modules whose settings differ from the defaults
    std::set<std::string> skipped;                   // modules the profile leaves unquantized

    ResolvedProfile() = default;
    // One setting for every module. Implicit: wherever a profile is taken, a plain setting is the uniform one.
    ResolvedProfile(const LayerSettings& all) : defaults(all) {}  // NOLINT(google-explicit-constructor)

    const LayerSettings& settings_for(const std::string& module) const {
        auto it = overrides.find(module);
        return it == overrides.end() ? defaults : it->second;
    }
    bool is_skipped(const std::string& module) const { return skipped.count(module) > 0; }
    bool uniform() const { return overrides.empty() && skipped.empty(); }
};

// Applies `p` to every module name (validating each module's settings; throws cloq::Error).
ResolvedProfile resolve_profile(const SettingsProfile& p, const std::vector<std::string>& module_names);
// The profile the GUI saves: the defaults as "global", one anchored exact-name override per module that differs.
SettingsProfile make_profile(const ResolvedProfile& r);

SettingsProfile load_profile(const std::string& path);                 // errors name the file
void save_profile(const std::string& path, const SettingsProfile& p);  // atomic

}  // namespace cloq
