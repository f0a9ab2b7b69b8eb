// libFuzzer target: settings profiles (cloq/profile.h): JSON text -> load_profile -> for_module on the module
// names of a Llama block. Profiles hold user regexes ("match"), so this also covers regex compilation and
// matching of hostile patterns (deep nesting, catastrophic backtracking on the short module names).
// Accepted profiles must round-trip through to_json unchanged.
#include "cloq/settings/profile.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* const kModules[] = {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                           "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj",
                                           "model.layers.0.mlp.gate_proj",    "model.layers.0.mlp.up_proj",
                                           "model.layers.11.mlp.down_proj",   "lm_head"};
    const std::string path = cloq::fuzz::scratch().write("profile.json", data, size);
    cloq::fuzz::expect_success_or_error([&] {
        const cloq::SettingsProfile p = cloq::load_profile(path);
        for (const char* m : kModules) {
            bool skipped = false;
            cloq::fuzz::expect_success_or_error([&] { (void)p.for_module(m, &skipped); });
        }
        const cloq::SettingsProfile back =
            cloq::profile_from_json(nlohmann::json::parse(cloq::to_json(p).dump()), "round trip");
        if (back.global != p.global || back.overrides.size() != p.overrides.size()) std::abort();
    });
    return 0;
}
