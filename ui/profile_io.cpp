#include "profile_io.h"

#include <nlohmann/json.hpp>
#include <regex>

namespace cloq::ui {
namespace {
std::string regex_escape(const std::string& s) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(s, special, R"(\$&)");
}
}  // namespace

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

}  // namespace cloq::ui
