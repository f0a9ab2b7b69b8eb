// libFuzzer target: the GGUF reader (cloq/gguf.h, cloq/gguf_model.h). Even first byte: the rest is parsed from
// memory (GgufFile::from_bytes) and every tensor is dequantized; odd: it is written to model.gguf and opened as a
// model (open_gguf_model: architecture metadata -> ModelConfig, tokenizer from metadata, HF-named weights).
#include "cloq/model/model_files.h"
#include "fuzz_support.h"
#include "io/gguf.h"
#include "model/gguf_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const uint8_t selector = cloq::fuzz::take_selector(data, size);
    if (selector % 2 == 0) {
        cloq::fuzz::expect_success_or_error([&] {
            auto f =
                cloq::GgufFile::from_bytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.gguf");
            for (const auto& [key, value] : f->metadata()) (void)value.summary();
            for (const auto& t : f->tensors()) {
                if (t.offset + t.n_bytes > f->file_size() - f->data_offset()) std::abort();
                cloq::fuzz::expect_success_or_error([&] { (void)f->load_float(t.name); });
            }
        });
        return 0;
    }
    const std::string path = cloq::fuzz::scratch().write("model.gguf", data, size);
    cloq::fuzz::expect_success_or_error([&] {
        const cloq::ModelFiles m = cloq::open_gguf_model(path);
        for (const auto& name : m.weights->names()) {
            (void)m.weights->shape(name);
            cloq::fuzz::expect_success_or_error([&] { (void)m.weights->load(name); });
        }
        if (m.tokenizer) {
            cloq::fuzz::expect_success_or_error([&] {
                const auto ids = m.tokenizer->encode("Once upon a time, 42 \xC3\xA9t\xC3\xA9s!", true);
                (void)m.tokenizer->decode(ids);
            });
        }
    });
    return 0;
}
