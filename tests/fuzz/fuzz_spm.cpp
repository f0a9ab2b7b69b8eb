// libFuzzer target: SentencePiece models (cloq/tokenizer_spm.h): the protobuf wire-format reader, the spec
// validation, and — for an accepted model — encoding and decoding. The input is a whole tokenizer.model file;
// its last 64 bytes (at most) double as the text to encode, so the encoder meets hostile text too.
// Properties checked on accepted models: ids are in range, BOS comes first when asked for, and decode accepts
// whatever encode produced.
#include <algorithm>
#include <string_view>

#include "fuzz_support.h"
#include "tokenize/tokenizer_spm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    cloq::fuzz::expect_success_or_error([&] {
        cloq::SentencePieceTokenizer tok(cloq::parse_sentencepiece_model(bytes, "tokenizer.model"), "tokenizer.model");
        const std::string text(bytes.substr(size - std::min<size_t>(size, 64)));
        for (const std::string& t : {std::string("Once upon a time,  there  was\ta cat.\n"), text}) {
            const auto ids = tok.encode(t, true);
            if (tok.bos_id() >= 0 && (ids.empty() || ids[0] != tok.bos_id())) std::abort();
            for (int32_t id : ids)
                if (id < 0 || id >= tok.vocab_size()) std::abort();
            (void)tok.decode(ids);
        }
        // Decoding ids the model never produced (but within range) must work too; outside the range it refuses.
        std::vector<int32_t> all;
        for (int64_t i = 0; i < std::min<int64_t>(tok.vocab_size(), 300); ++i) all.push_back(static_cast<int32_t>(i));
        (void)tok.decode(all);
    });
    return 0;
}
