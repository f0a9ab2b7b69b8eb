#include "cloq/model/model_files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"
#include "cloq/model/model_layout.h"
#include "model/gguf_model.h"
#include "tokenize/tokenizer_bpe.h"
#include "tokenize/tokenizer_spm.h"

namespace fs = std::filesystem;

namespace cloq {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

nlohmann::json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path + ": " + std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
}

// The tokenizer the folder ships: tokenizer.model (SentencePiece) first, else tokenizer.json (byte-level BPE).
std::shared_ptr<const Tokenizer> open_tokenizer(const fs::path& dir) {
    if (fs::exists(dir / "tokenizer.model")) return load_sentencepiece((dir / "tokenizer.model").string());
    if (fs::exists(dir / "tokenizer.json")) return load_hf_tokenizer_json((dir / "tokenizer.json").string());
    return nullptr;  // weights-only folder: commands that need text say so
}

ModelFiles open_hf_folder(const std::string& path) {
    const fs::path dir(path);
    const std::string config_path = (dir / "config.json").string();
    if (!fs::exists(config_path)) throw Error(path + ": no config.json (is this a Hugging Face model folder?)");
    ModelFiles m;
    m.path = path;
    m.format = "hf";
    m.config = model_config_from_hf_json(read_json_file(config_path), config_path);
    m.weights = std::make_shared<SafetensorsWeights>(path);
    check_weights(m.config, *m.weights, path);
    m.tokenizer = open_tokenizer(dir);
    return m;
}
}  // namespace

ModelFiles open_model(const std::string& path) {
    if (path.empty()) throw Error("no model given");
    if (!fs::exists(path)) throw Error(path + ": no such file or folder");
    if (ends_with(path, ".gguf")) return open_gguf_model(path);  // the gguf module (cloq/gguf.h)
    if (!fs::is_directory(path))
        throw Error(path + ": expected a model folder (config.json + model.safetensors) or a .gguf file");
    return open_hf_folder(path);
}

}  // namespace cloq
