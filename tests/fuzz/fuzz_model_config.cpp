// libFuzzer target: HF config.json parsing (cloq/model_config.h): JSON text -> model_config_from_hf_json ->
// validate. An accepted config must describe a consistent model (positive sizes, heads dividing the hidden size,
// kv heads dividing heads) and survive model_config_to_hf_json -> parse again unchanged.
#include <nlohmann/json.hpp>

#include "cloq/model/model_config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;  // not JSON: the JSON library's business (the loader reports it)
    cloq::fuzz::expect_success_or_error([&] {
        const cloq::ModelConfig c = cloq::model_config_from_hf_json(j, "config.json");
        c.validate("config.json");
        if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0 ||
            c.vocab_size <= 0 || c.intermediate_size <= 0 || c.num_heads % c.num_kv_heads != 0)
            std::abort();
        (void)c.num_parameters();
        const cloq::ModelConfig back = cloq::model_config_from_hf_json(cloq::model_config_to_hf_json(c), "again");
        if (back.hidden_size != c.hidden_size || back.num_layers != c.num_layers || back.num_heads != c.num_heads ||
            back.num_kv_heads != c.num_kv_heads || back.head_dim != c.head_dim || back.vocab_size != c.vocab_size ||
            back.tie_word_embeddings != c.tie_word_embeddings || back.architecture != c.architecture)
            std::abort();
    });
    return 0;
}
