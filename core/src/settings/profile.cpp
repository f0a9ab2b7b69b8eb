#include "cloq/settings/profile.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "base/regex.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"

namespace cloq {

namespace {
// Profiles can come from elsewhere (a bundle, a colleague), so their patterns are hostile input.
std::regex compile(const std::string& pattern, const std::string& where) {
    // The pattern itself is in `where`; a 512-character one is not repeated in the message.
    const std::string short_where =
        pattern.size() > 64 ? where.substr(0, where.find(" (match")) + " \"match\"" : where + " \"match\"";
    return compile_untrusted_regex(pattern, short_where, 512);
}
}  // namespace

LayerSettings SettingsProfile::for_module(const std::string& module, bool* skipped) const {
    LayerSettings s = global;
    bool skip = false;
    for (size_t i = 0; i < overrides.size(); ++i) {
        const auto& o = overrides[i];
        const std::string where = "profile override " + std::to_string(i) + " (match '" + o.match + "')";
        if (!std::regex_search(module, compile(o.match, where))) continue;
        if (o.skip) skip = true;
        if (!o.settings.is_null() && !o.settings.empty()) s = layer_settings_from_json(o.settings, s, where);
    }
    if (skipped) *skipped = skip;
    return s;
}

nlohmann::ordered_json to_json(const SettingsProfile& p) {
    nlohmann::ordered_json j;
    j["format"] = "cloq-profile";
    j["version"] = 1;
    j["global"] = nlohmann::ordered_json::parse(to_json(p.global).dump());
    j["overrides"] = nlohmann::ordered_json::array();
    for (const auto& o : p.overrides) {
        nlohmann::ordered_json e;
        e["match"] = o.match;
        if (o.skip) e["skip"] = true;
        if (o.settings.is_object())
            for (const auto& [k, v] : o.settings.items()) e[k] = v;
        j["overrides"].push_back(e);
    }
    return j;
}

SettingsProfile profile_from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": a profile must be a JSON object");
    for (const auto& [k, v] : j.items()) {
        if (k != "format" && k != "version" && k != "global" && k != "overrides" && k != "calibration" && k != "export")
            throw Error(where + ": unknown key '" + k + "' (expected format, version, global, overrides)");
    }
    if (j.contains("format") && j["format"] != "cloq-profile")
        throw Error(where + ": \"format\" is " + j["format"].dump() + ", not \"cloq-profile\"");
    if (j.contains("version") && (!j["version"].is_number_integer() || j["version"].get<int>() != 1))
        throw Error(where + ": profile version " + j["version"].dump() + " is not supported (this build reads 1)");
    SettingsProfile p;
    if (j.contains("global")) p.global = layer_settings_from_json(j["global"], LayerSettings{}, where + ": global");
    if (j.contains("overrides")) {
        const auto& arr = j["overrides"];
        if (!arr.is_array()) throw Error(where + ": \"overrides\" must be an array");
        for (size_t i = 0; i < arr.size(); ++i) {
            const std::string w = where + ": override " + std::to_string(i);
            const auto& e = arr[i];
            if (!e.is_object()) throw Error(w + " must be an object");
            if (!e.contains("match") || !e["match"].is_string() || e["match"].get<std::string>().empty())
                throw Error(w + " needs a non-empty \"match\" regex string");
            LayerOverride o;
            o.match = e["match"].get<std::string>();
            compile(o.match, w);
            o.settings = nlohmann::json::object();
            for (const auto& [k, v] : e.items()) {
                if (k == "match") continue;
                if (k == "skip") {
                    if (!v.is_boolean()) throw Error(w + ": \"skip\" must be true or false");
                    o.skip = v.get<bool>();
                    continue;
                }
                o.settings[k] = v;
            }
            // Check keys, types and ranges now (on the global settings), so a bad file fails at load time.
            layer_settings_from_json(o.settings, p.global, w);
            p.overrides.push_back(std::move(o));
        }
    }
    return p;
}

SettingsProfile load_profile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open profile " + path + ": no such file or not readable");
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    return profile_from_json(j, path);
}

void save_profile(const std::string& path, const SettingsProfile& p) {
    write_file_atomic(path, to_json(p).dump(2) + "\n");
}

ResolvedProfile resolve_profile(const SettingsProfile& p, const std::vector<std::string>& names) {
    ResolvedProfile r;
    r.defaults = p.global;
    validate(r.defaults);
    for (const std::string& n : names) {
        bool skipped = false;
        const LayerSettings s = p.for_module(n, &skipped);
        if (skipped) r.skipped.insert(n);
        if (s != r.defaults) r.overrides[n] = s;
    }
    return r;
}

SettingsProfile make_profile(const ResolvedProfile& r) {
    SettingsProfile p;
    p.global = r.defaults;
    for (const auto& [name, s] : r.overrides) {
        if (s == r.defaults) continue;
        LayerOverride o;
        o.match = "^" + regex_escape(name) + "$";
        // Only the keys that differ from the defaults: the file stays readable and reusable.
        const nlohmann::json full = to_json(s), base = to_json(r.defaults);
        o.settings = nlohmann::json::object();
        for (auto it = full.begin(); it != full.end(); ++it)
            if (!base.contains(it.key()) || base[it.key()] != it.value()) o.settings[it.key()] = it.value();
        p.overrides.push_back(o);
    }
    for (const std::string& name : r.skipped) {
        LayerOverride o;
        o.match = "^" + regex_escape(name) + "$";
        o.settings = nlohmann::json::object();
        o.skip = true;
        p.overrides.push_back(o);
    }
    return p;
}

}  // namespace cloq
