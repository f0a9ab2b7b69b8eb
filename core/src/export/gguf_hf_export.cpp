// HF tokenizer files from GGUF tokenizer metadata: tokenizer.model (SentencePiece ModelProto, protobuf wire format
// written by hand: a handful of fields), tokenizer.json (HF tokenizers schema) and tokenizer_config.json.
#include "export/gguf_hf_export.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <unordered_set>

#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "tokenize/gguf_tokenizer.h"

namespace cloq {

namespace {

// ---- protobuf wire format (https://protobuf.dev/programming-guides/encoding/)
void varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}
void key(std::string& out, int field, int wire) { varint(out, static_cast<uint64_t>(field) << 3 | wire); }
void field_varint(std::string& out, int field, int64_t v) {
    key(out, field, 0);
    varint(out, static_cast<uint64_t>(v));  // negative int32 values are sign-extended to 10 bytes, as protobuf does
}
void field_bytes(std::string& out, int field, const std::string& bytes) {
    key(out, field, 2);
    varint(out, bytes.size());
    out += bytes;
}
void field_float(std::string& out, int field, float v) {
    key(out, field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    out.append(b, 4);
}

// HF tokenizers pre-tokenizer regexes (as in the Llama 3 and Qwen2 tokenizer.json files).
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

nlohmann::ordered_json byte_level(bool use_regex) {
    return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// tokenizer.ggml.pre names as llama.cpp's convert_hf_to_gguf.py writes them -> the HF pre_tokenizer node.
nlohmann::ordered_json pre_tokenizer(const GgufFile& f, const std::string& pre, bool& ignore_merges) {
    ignore_merges = false;
    auto split = [](const char* regex) {
        return nlohmann::ordered_json{
            {"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
    };
    if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return byte_level(true);
    if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
        return {{"type", "Sequence"},
                {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
    }
    if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3") {
        ignore_merges = true;
        return {{"type", "Sequence"}, {"pretokenizers", {split(kLlama3Regex), byte_level(false)}}};
    }
    if (pre == "qwen2") return {{"type", "Sequence"}, {"pretokenizers", {split(kQwen2Regex), byte_level(false)}}};
    throw Error(f.path() + ": tokenizer.ggml.pre '" + pre +
                "' has no tokenizer.json equivalent here (supported: default/gpt2, smollm/starcoder, llama3/llama-bpe, "
                "qwen2)");
}

std::string token_or_empty(const std::vector<std::string>& tokens, int64_t id) {
    return id >= 0 && static_cast<size_t>(id) < tokens.size() ? tokens[static_cast<size_t>(id)] : std::string();
}

nlohmann::ordered_json tokenizer_json(const GgufFile& f, bool add_bos) {
    const GgufBpeVocab v = bpe_vocab_from_gguf(f);
    bool ignore_merges = false;
    auto pre = pre_tokenizer(f, v.pre, ignore_merges);

    nlohmann::ordered_json added = nlohmann::ordered_json::array();
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    std::unordered_set<std::string> seen;
    for (size_t i = 0; i < v.tokens.size(); ++i) {
        if (!seen.insert(v.tokens[i]).second) {
            throw Error(f.path() + ": tokenizer.ggml.tokens has '" + v.tokens[i] + "' twice (id " + std::to_string(i) +
                        "); a tokenizer.json vocabulary cannot");
        }
        vocab[v.tokens[i]] = i;
        // llama.cpp marks HF special added tokens CONTROL (3) and the other added tokens USER_DEFINED (4).
        if (v.types[i] == 3 || v.types[i] == 4) {
            added.push_back({{"id", i},
                             {"content", v.tokens[i]},
                             {"single_word", false},
                             {"lstrip", false},
                             {"rstrip", false},
                             {"normalized", v.types[i] == 4},
                             {"special", v.types[i] == 3}});
        }
    }
    nlohmann::ordered_json post = nullptr;
    if (add_bos && v.bos_id >= 0) {
        const std::string bos = v.tokens[static_cast<size_t>(v.bos_id)];
        auto special = [&] { return nlohmann::ordered_json{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}; };
        auto seq = [](const char* id, int type) {
            return nlohmann::ordered_json{{"Sequence", {{"id", id}, {"type_id", type}}}};
        };
        post = {{"type", "TemplateProcessing"},
                {"single", {special(), seq("A", 0)}},
                {"pair", {special(), seq("A", 0), special(), seq("B", 1)}},
                {"special_tokens", {{bos, {{"id", bos}, {"ids", {v.bos_id}}, {"tokens", {bos}}}}}}};
    }
    nlohmann::ordered_json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = added;
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = pre;
    j["post_processor"] = post;
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
    j["model"] = {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", ignore_merges},
                  {"vocab", vocab},
                  {"merges", v.merges}};
    return j;
}

std::string arch_prefix(const GgufFile& f) { return f.find_string("general.architecture").value_or("llama") + "."; }

}  // namespace

std::string sentencepiece_model_from_gguf(const GgufFile& f) {
    const SpmModelSpec spec = sentencepiece_spec_from_gguf(f);
    std::string out;
    int32_t unk_id = -1;
    for (size_t i = 0; i < spec.pieces.size(); ++i) {
        std::string p;
        field_bytes(p, 1, spec.pieces[i]);
        field_float(p, 2, spec.scores[i]);
        field_varint(p, 3, static_cast<int64_t>(spec.types[i]));
        field_bytes(out, 1, p);
        if (spec.types[i] == SpmPieceType::Unknown && unk_id < 0) unk_id = static_cast<int32_t>(i);
    }
    std::string trainer;
    field_varint(trainer, 3, 2);  // model_type BPE
    field_varint(trainer, 4, static_cast<int64_t>(spec.pieces.size()));
    field_varint(trainer, 35, spec.byte_fallback ? 1 : 0);
    field_varint(trainer, 40, unk_id);
    field_varint(trainer, 41, spec.bos_id);
    field_varint(trainer, 42, spec.eos_id);
    field_varint(trainer, 43, -1);  // pad_id: none
    field_bytes(out, 2, trainer);
    std::string norm;
    field_bytes(norm, 1, "identity");
    field_varint(norm, 3, spec.add_dummy_prefix ? 1 : 0);
    field_varint(norm, 4, spec.remove_extra_whitespaces ? 1 : 0);
    field_varint(norm, 5, spec.escape_whitespaces ? 1 : 0);
    field_bytes(out, 3, norm);
    return out;
}

std::vector<std::string> write_hf_tokenizer_files(const GgufFile& f, const std::string& dir) {
    const auto model = f.find_string("tokenizer.ggml.model");
    if (!model) return {};
    std::vector<std::string> written;
    const bool llama = *model == "llama";
    if (!llama && *model != "gpt2") {
        throw Error(f.path() + ": tokenizer.ggml.model '" + *model + "' cannot be written as HF tokenizer files");
    }
    const bool add_bos = f.find_bool("tokenizer.ggml.add_bos_token").value_or(llama);
    if (llama) {
        write_file_atomic(dir + "/tokenizer.model", sentencepiece_model_from_gguf(f));
        written.push_back("tokenizer.model");
    } else {
        write_file_atomic(dir + "/tokenizer.json", tokenizer_json(f, add_bos).dump(2) + "\n");
        written.push_back("tokenizer.json");
    }

    const auto& tokens = f.get_array("tokenizer.ggml.tokens", GgufValueType::String).string_array();
    nlohmann::ordered_json cfg;
    cfg["add_bos_token"] = add_bos;
    cfg["add_eos_token"] = f.find_bool("tokenizer.ggml.add_eos_token").value_or(false);
    for (const auto& [name, key] :
         std::vector<std::pair<std::string, std::string>>{{"bos_token", "bos_token_id"},
                                                          {"eos_token", "eos_token_id"},
                                                          {"unk_token", "unknown_token_id"},
                                                          {"pad_token", "padding_token_id"}}) {
        if (auto id = f.find_int("tokenizer.ggml." + key)) {
            const std::string t = token_or_empty(tokens, *id);
            if (!t.empty()) cfg[name] = t;
        }
    }
    if (auto tmpl = f.find_string("tokenizer.chat_template")) cfg["chat_template"] = *tmpl;
    cfg["clean_up_tokenization_spaces"] = false;
    if (auto ctx = f.find_int(arch_prefix(f) + "context_length")) cfg["model_max_length"] = *ctx;
    cfg["tokenizer_class"] = llama ? "LlamaTokenizer" : "PreTrainedTokenizerFast";
    if (llama) cfg["legacy"] = true;  // the SentencePiece behaviour the .model file encodes
    write_file_atomic(dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
    written.push_back("tokenizer_config.json");
    return written;
}

nlohmann::ordered_json generation_config_from_gguf(const GgufFile& f) {
    nlohmann::ordered_json g;
    g["_from_model_config"] = true;
    if (auto id = f.find_int("tokenizer.ggml.bos_token_id")) g["bos_token_id"] = *id;
    if (auto id = f.find_int("tokenizer.ggml.eos_token_id")) g["eos_token_id"] = *id;
    if (auto id = f.find_int("tokenizer.ggml.padding_token_id")) g["pad_token_id"] = *id;
    return g;
}

std::vector<std::string> write_hf_tokenizer_files(const std::string& gguf_path, const std::string& dir) {
    return write_hf_tokenizer_files(*GgufFile::open(gguf_path), dir);
}

}  // namespace cloq
