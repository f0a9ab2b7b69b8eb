// libFuzzer target: layer settings as they come from a settings profile or a report (JSON text ->
// layer_settings_from_json). Besides "succeed or cloq::Error", accepted settings must survive a round trip
// through to_json unchanged, and must pass validate() (the JSON reader is the one gate before the solver).
#include <nlohmann/json.hpp>

#include "cloq/settings/settings.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;  // not JSON at all: the JSON library's business, fuzzed upstream
    cloq::fuzz::expect_success_or_error([&] {
        const cloq::LayerSettings s = cloq::layer_settings_from_json(j, cloq::LayerSettings{}, "profile.json");
        cloq::validate(s);
        const cloq::LayerSettings back = cloq::layer_settings_from_json(cloq::to_json(s), cloq::LayerSettings{}, "x");
        if (back != s) std::abort();
    });
    return 0;
}
