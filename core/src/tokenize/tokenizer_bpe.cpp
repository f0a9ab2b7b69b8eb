// Byte-level BPE as HF tokenizers implements it (models/bpe/word.rs merge_all, pre_tokenizers/byte_level.rs,
// added_vocabulary.rs), plus the tokenizer.json and GGUF loaders.
#include "tokenize/tokenizer_bpe.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "cloq/base/error.h"
#include "tokenize/unicode_text.h"

namespace cloq {

namespace {

// GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
struct ByteMap {
    std::string to_unicode[256];
    std::unordered_map<char32_t, uint8_t> to_byte;
    ByteMap() {
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
            unicode::append_utf8(to_unicode[b], cp);
            to_byte.emplace(cp, static_cast<uint8_t>(b));
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap map;  // a constant table, built once
    return map;
}

// How far ids may run past the number of tokens (HF vocabularies may have gaps; a hostile file must not make the
// id table huge).
constexpr std::size_t kMaxIdGap = 1 << 20;

bool is_word_char(char32_t cp) { return cp == '_' || unicode::is_letter(cp) || unicode::is_number(cp); }

// The character that ends just before byte `pos` (pos > 0), and its length.
char32_t char_before(std::string_view s, std::size_t pos, std::size_t& len) {
    std::size_t start = pos - 1;
    while (start > 0 && pos - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    char32_t cp;
    std::size_t n;
    if (unicode::decode_utf8(s, start, cp, n) && start + n == pos) {
        len = n;
        return cp;
    }
    len = 1;
    return unicode::kReplacementChar;
}

char32_t char_at(std::string_view s, std::size_t pos, std::size_t& len) {
    char32_t cp;
    unicode::decode_utf8(s, pos, cp, len);
    return cp;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_unicode[b]; }

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteBpeSpec spec, std::string source)
    : spec_(std::move(spec)), source_(std::move(source)) {
    auto fail = [&](const std::string& what) { throw Error(source_ + ": invalid byte-level BPE tokenizer: " + what); };
    const std::size_t n = spec_.tokens.size();
    if (n == 0 && spec_.added.empty()) fail("the vocabulary is empty");
    std::size_t total = n;
    for (const auto& a : spec_.added) {
        if (a.content.empty()) fail("added token " + std::to_string(a.id) + " has no content");
        // Ids beyond the vocabulary are fine (added tokens), but not so far that the id table would be huge.
        if (a.id < 0 || static_cast<std::size_t>(a.id) >= n + spec_.added.size() + kMaxIdGap)
            fail("added token \"" + a.content + "\" has id " + std::to_string(a.id) + " (vocabulary of " +
                 std::to_string(n) + ")");
        total = std::max(total, static_cast<std::size_t>(a.id) + 1);
    }
    // Ids without a token (gaps, as HF vocabularies may have) are never produced and decode to nothing.
    id_to_token_ = spec_.tokens;
    id_to_token_.resize(total);
    is_special_.assign(total, false);
    for (const auto& a : spec_.added) {
        id_to_token_[a.id] = a.content;
        is_special_[a.id] = a.special;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& t = spec_.tokens[i];
        if (t.empty()) continue;
        if (!vocab_.emplace(std::string_view(t), static_cast<int32_t>(i)).second)
            fail("token " + std::to_string(i) + " \"" + t + "\" appears twice");
    }
    // Merges are keyed by the ids of their parts; a later duplicate overrides an earlier one, as in HF.
    std::string joined;
    for (std::size_t r = 0; r < spec_.merges.size(); ++r) {
        const auto& [a, b] = spec_.merges[r];
        joined = a + b;
        const auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(joined);
        if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end())
            fail("merge " + std::to_string(r) + " \"" + a + " " + b + "\": \"" +
                 (ia == vocab_.end()   ? a
                  : ib == vocab_.end() ? b
                                       : joined) +
                 "\" is not in the vocabulary");
        const uint64_t key =
            static_cast<uint64_t>(static_cast<uint32_t>(ia->second)) << 32 | static_cast<uint32_t>(ib->second);
        merges_[key] = {static_cast<int32_t>(r), im->second};
    }
    byte_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b)
        if (auto it = vocab_.find(byte_to_unicode(static_cast<uint8_t>(b))); it != vocab_.end())
            byte_ids_[b] = it->second;
    for (const auto& [name, id] :
         {std::pair{"bos", spec_.bos_id}, std::pair{"eos", spec_.eos_id}, std::pair{"unk", spec_.unk_id}})
        if (id < -1 || id >= static_cast<int64_t>(total))
            fail(std::string(name) + " id " + std::to_string(id) + " is outside the vocabulary of " +
                 std::to_string(total));
    for (int g = 0; g < 2; ++g) added_by_first_byte_[g].assign(256, {});
    for (std::size_t k = 0; k < spec_.added.size(); ++k) {
        const auto& a = spec_.added[k];
        added_by_first_byte_[a.normalized ? 1 : 0][static_cast<unsigned char>(a.content[0])].push_back(
            static_cast<int32_t>(k));
    }
    for (auto& group : added_by_first_byte_)  // longest first: leftmost-longest matching
        for (auto& list : group)
            std::stable_sort(list.begin(), list.end(), [&](int32_t x, int32_t y) {
                return spec_.added[x].content.size() > spec_.added[y].content.size();
            });
}

std::string ByteLevelBpeTokenizer::kind() const {
    return std::string("byte-level BPE (") + to_string(spec_.pre) + ", " + std::to_string(id_to_token_.size()) +
           " tokens)";
}

int32_t ByteLevelBpeTokenizer::token_to_id(std::string_view token) const {
    for (const auto& a : spec_.added)
        if (a.content == token) return a.id;
    const auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
}

// Added tokens are cut out of the text before anything else: first those matched on raw text, then the
// "normalized" ones on what is left (HF's two passes), each pass leftmost-longest.
void ByteLevelBpeTokenizer::split_added(std::string_view text,
                                        std::vector<std::pair<std::string_view, int32_t>>& out) const {
    std::vector<std::pair<std::string_view, int32_t>> pieces = {{text, -1}}, next;
    for (int group = 0; group < 2; ++group) {
        next.clear();
        for (const auto& [piece, piece_id] : pieces) {
            if (piece_id >= 0 || piece.empty()) {
                next.emplace_back(piece, piece_id);
                continue;
            }
            std::size_t emitted = 0;
            for (std::size_t i = 0; i < piece.size();) {
                const auto& candidates = added_by_first_byte_[group][static_cast<unsigned char>(piece[i])];
                const BpeAddedToken* match = nullptr;
                for (int32_t k : candidates) {
                    const BpeAddedToken& a = spec_.added[k];
                    if (piece.compare(i, a.content.size(), a.content) != 0) continue;
                    if (a.single_word) {
                        std::size_t len;
                        const bool left_ok = i == 0 || !is_word_char(char_before(piece, i, len));
                        const std::size_t end = i + a.content.size();
                        const bool right_ok = end == piece.size() || !is_word_char(char_at(piece, end, len));
                        if (!left_ok || !right_ok) continue;
                    }
                    match = &a;
                    break;
                }
                if (!match) {
                    ++i;
                    continue;
                }
                std::size_t begin = i, end = i + match->content.size(), len;
                if (match->lstrip)
                    while (begin > emitted && unicode::is_whitespace(char_before(piece, begin, len))) begin -= len;
                if (match->rstrip)
                    while (end < piece.size() && unicode::is_whitespace(char_at(piece, end, len))) end += len;
                if (begin > emitted) next.emplace_back(piece.substr(emitted, begin - emitted), -1);
                next.emplace_back(piece.substr(begin, end - begin), match->id);
                emitted = i = end;
            }
            if (emitted < piece.size()) next.emplace_back(piece.substr(emitted), -1);
        }
        pieces.swap(next);
    }
    out = std::move(pieces);
}

// HF word.rs merge_all: a min-heap of candidate merges ordered by (rank, position); an entry is stale when the
// symbol at its position is gone or the pair there no longer merges into the same token.
void ByteLevelBpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
    const auto& map = byte_map();
    if (spec_.ignore_merges) {
        std::string mapped;
        for (char c : word) mapped += map.to_unicode[static_cast<unsigned char>(c)];
        if (auto it = vocab_.find(mapped); it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    struct Symbol {
        int32_t id;
        int32_t prev, next;
        bool alive;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    for (std::size_t i = 0; i < word.size(); ++i) {
        const auto b = static_cast<unsigned char>(word[i]);
        int32_t id = byte_ids_[b];
        if (id < 0) {
            if (spec_.unk_id < 0) {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02X", b);
                throw Error(source_ + ": cannot encode byte " + hex +
                            ": the vocabulary has no token for it and no unknown token");
            }
            id = spec_.unk_id;
        }
        const auto index = static_cast<int32_t>(i);
        symbols.push_back({id, index - 1, i + 1 < word.size() ? index + 1 : -1, true});
    }
    struct Merge {
        int32_t rank, pos, new_id;
        bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }  // min-heap
    };
    auto find = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
        const auto it = merges_.find(static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b));
        return it == merges_.end() ? nullptr : &it->second;
    };
    std::priority_queue<Merge> queue;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
        if (const auto* m = find(symbols[i].id, symbols[i + 1].id))
            queue.push({m->first, static_cast<int32_t>(i), m->second});
    while (!queue.empty()) {
        const Merge top = queue.top();
        queue.pop();
        Symbol& s = symbols[top.pos];
        if (!s.alive || s.next < 0) continue;
        Symbol& right = symbols[s.next];
        const auto* m = find(s.id, right.id);
        if (!m || m->second != top.new_id) continue;  // stale
        s.id = top.new_id;
        right.alive = false;
        s.next = right.next;
        if (s.next >= 0) symbols[s.next].prev = top.pos;
        if (s.prev >= 0)
            if (const auto* p = find(symbols[s.prev].id, s.id)) queue.push({p->first, s.prev, p->second});
        if (s.next >= 0)
            if (const auto* p = find(s.id, symbols[s.next].id)) queue.push({p->first, top.pos, p->second});
    }
    for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::vector<int32_t> ByteLevelBpeTokenizer::encode(const std::string& text, bool add_bos) const {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (add_bos && spec_.bos_id >= 0) ids.push_back(spec_.bos_id);
    std::vector<std::pair<std::string_view, int32_t>> segments;
    split_added(text, segments);
    std::unordered_map<std::string, std::vector<int32_t>> cache;  // per call: words repeat a lot in real text
    std::string prefixed;
    for (const auto& [segment, added_id] : segments) {
        if (added_id >= 0) {
            ids.push_back(added_id);
            continue;
        }
        std::string_view seg = segment;
        if (seg.empty()) continue;
        if (spec_.add_prefix_space && seg.front() != ' ') {
            prefixed = " " + std::string(seg);
            seg = prefixed;
        }
        for (const std::string_view word : pre_tokenize(seg, spec_.pre)) {
            auto [it, inserted] = cache.try_emplace(std::string(word));
            if (inserted) encode_word(word, it->second);
            ids.insert(ids.end(), it->second.begin(), it->second.end());
        }
    }
    return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
    const auto& map = byte_map();
    std::string bytes;
    for (const int32_t id : ids) {
        if (id < 0 || id >= vocab_size())
            throw Error(source_ + ": cannot decode token id " + std::to_string(id) + ": the vocabulary has " +
                        std::to_string(vocab_size()) + " tokens");
        if (is_special_[id]) continue;
        const std::string& token = id_to_token_[id];
        // HF ByteLevel decoder: map every character back to its byte; a token with a character outside the
        // byte alphabet (e.g. an added token with a real space) is taken as its own UTF-8.
        std::string mapped;
        bool ok = true;
        for (std::size_t i = 0; i < token.size() && ok;) {
            char32_t cp;
            std::size_t len;
            ok = unicode::decode_utf8(token, i, cp, len);
            const auto it = map.to_byte.find(cp);
            ok = ok && it != map.to_byte.end();
            if (ok) mapped += static_cast<char>(it->second);
            i += len;
        }
        bytes += ok ? mapped : token;
    }
    return unicode::to_valid_utf8_lossy(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer.json

namespace {

using nlohmann::json;

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the " + what + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(path + ": cannot read the " + what);
    return ss.str();
}

std::string type_of(const json& node) { return node.is_object() ? node.value("type", std::string()) : std::string(); }

// The pre-tokenizer families we implement, recognized from their JSON description.
void parse_pre_tokenizer(const json& pre, const std::string& path, ByteBpeSpec& spec) {
    auto unsupported = [&](const std::string& why) {
        throw Error(path + ": unsupported pre_tokenizer (" + why +
                    "); supported: ByteLevel (GPT-2), "
                    "Split(Llama 3 / Qwen2 regex) + ByteLevel, Digits + ByteLevel (SmolLM)");
    };
    auto byte_level = [&](const json& node, bool regex_expected) {
        if (type_of(node) != "ByteLevel") return false;
        if (node.value("use_regex", true) != regex_expected)
            unsupported(std::string("ByteLevel with use_regex ") + (regex_expected ? "false" : "true") + " here");
        spec.add_prefix_space = node.value("add_prefix_space", false);
        return true;
    };
    const std::string type = type_of(pre);
    if (type == "Metaspace")
        throw Error(path +
                    ": this tokenizer.json is SentencePiece-style (Metaspace), not byte-level BPE; use the "
                    "model's tokenizer.model");
    if (byte_level(pre, true)) {
        spec.pre = BpePreTokenizer::Gpt2;
        return;
    }
    if (type != "Sequence" || !pre.contains("pretokenizers") || pre["pretokenizers"].size() != 2)
        unsupported(type.empty() ? "none" : type);
    const json& first = pre["pretokenizers"][0];
    const json& second = pre["pretokenizers"][1];
    if (type_of(first) == "Digits" && first.value("individual_digits", false) && byte_level(second, true)) {
        spec.pre = BpePreTokenizer::SmolLM;
        return;
    }
    if (type_of(first) == "Split" && byte_level(second, false)) {
        const std::string pattern = first.at("pattern").value("Regex", std::string());
        if (first.value("behavior", std::string()) != "Isolated" || first.value("invert", false))
            unsupported("Split that is not Isolated");
        if (pattern == kLlama3Pattern)
            spec.pre = BpePreTokenizer::Llama3;
        else if (pattern == kQwen2Pattern)
            spec.pre = BpePreTokenizer::Qwen2;
        else if (pattern == kGpt2Pattern)
            spec.pre = BpePreTokenizer::Gpt2;
        else
            unsupported("Split regex " + pattern);
        return;
    }
    unsupported("Sequence of " + type_of(first) + " and " + type_of(second));
}

// "a b" (older files) or ["a", "b"].
std::pair<std::string, std::string> parse_merge(const json& m, std::size_t index, const std::string& path) {
    if (m.is_array() && m.size() == 2) return {m[0].get<std::string>(), m[1].get<std::string>()};
    if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const auto space = s.find(' ');
        if (space != std::string::npos && space > 0 && space + 1 < s.size() &&
            s.find(' ', space + 1) == std::string::npos)
            return {s.substr(0, space), s.substr(space + 1)};
    }
    throw Error(path + ": merge " + std::to_string(index) + " is not \"a b\" or [\"a\", \"b\"]: " + m.dump());
}

// BOS/EOS: tokenizer_config.json next to the file, else the post-processor's template, else well-known names.
void find_special_ids(const json& j, const std::string& path, ByteBpeSpec& spec) {
    auto id_of = [&](const std::string& content) -> int32_t {
        for (const auto& a : spec.added)
            if (a.content == content) return a.id;
        for (std::size_t i = 0; i < spec.tokens.size(); ++i)
            if (spec.tokens[i] == content) return static_cast<int32_t>(i);
        return -1;
    };
    const auto slash = path.find_last_of('/');
    const std::string config_path =
        (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + "tokenizer_config.json";
    if (std::ifstream probe(config_path); probe) {
        json config;
        try {
            config = json::parse(read_text_file(config_path, "tokenizer config"));
        } catch (const json::exception& e) {
            throw Error(config_path + ": invalid JSON: " + e.what());
        }
        auto token_of = [&](const char* key) -> int32_t {
            if (!config.contains(key) || config[key].is_null()) return -1;
            const json& v = config[key];
            const std::string content = v.is_string() ? v.get<std::string>() : v.value("content", std::string());
            const int32_t id = id_of(content);
            if (id < 0) throw Error(config_path + ": " + key + " \"" + content + "\" is not a token of " + path);
            return id;
        };
        spec.bos_id = token_of("bos_token");
        spec.eos_id = token_of("eos_token");
        return;
    }
    // TemplateProcessing (possibly inside a Sequence): a special token before $A is the BOS.
    std::vector<const json*> processors;
    if (j.contains("post_processor") && j["post_processor"].is_object()) {
        const json& pp = j["post_processor"];
        if (type_of(pp) == "Sequence" && pp.contains("processors"))
            for (const auto& p : pp["processors"]) processors.push_back(&p);
        else
            processors.push_back(&pp);
    }
    for (const json* p : processors) {
        if (type_of(*p) != "TemplateProcessing" || !p->contains("single") || (*p)["single"].empty()) continue;
        const json& head = (*p)["single"][0];
        if (head.contains("SpecialToken")) spec.bos_id = id_of(head["SpecialToken"].value("id", std::string()));
    }
    for (const char* name : {"<|end_of_text|>", "<|endoftext|>", "</s>"}) {
        if (spec.eos_id < 0) spec.eos_id = id_of(name);
    }
}

}  // namespace

std::shared_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
    const std::string text = read_text_file(path, "tokenizer.json");
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(path + ": invalid JSON: " + e.what());
    }
    ByteBpeSpec spec;
    try {
        if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
            throw Error(path + ": not a tokenizer.json (no \"model\" object)");
        const json& model = j["model"];
        const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
        if (type != "BPE")
            throw Error(path + ": the tokenizer model is " + (type.empty() ? std::string("of unknown type") : type) +
                        "; only byte-level BPE is supported in tokenizer.json");
        if (j.contains("normalizer") && !j["normalizer"].is_null())
            throw Error(path + ": normalizer " + type_of(j["normalizer"]) +
                        " is not supported (byte-level BPE without normalizer only)");
        for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
            if (model.contains(key) && !model[key].is_null() && !model[key].get<std::string>().empty())
                throw Error(path + ": BPE with " + key + " is not supported");
        if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null()) {
            const std::string decoder = j.contains("decoder") ? type_of(j["decoder"]) : "";
            throw Error(path + ": no pre_tokenizer: " +
                        (decoder == "Sequence" || decoder == "Metaspace" || model.value("byte_fallback", false)
                             ? "this is a SentencePiece-style tokenizer.json; use the model's tokenizer.model"
                             : "not a byte-level BPE tokenizer"));
        }
        parse_pre_tokenizer(j["pre_tokenizer"], path, spec);
        spec.ignore_merges = model.value("ignore_merges", false);

        const json& vocab = model.at("vocab");
        if (!vocab.is_object()) throw Error(path + ": model.vocab is not an object");
        for (const auto& [token, id_json] : vocab.items()) {
            const int64_t id = id_json.get<int64_t>();
            if (id < 0 || static_cast<std::size_t>(id) >= vocab.size() + kMaxIdGap)
                throw Error(path + ": token \"" + token + "\" has id " + std::to_string(id) + ", far beyond the " +
                            std::to_string(vocab.size()) + " tokens of the vocabulary");
            if (static_cast<std::size_t>(id) >= spec.tokens.size())
                spec.tokens.resize(static_cast<std::size_t>(id) + 1);
            if (!spec.tokens[id].empty()) throw Error(path + ": id " + std::to_string(id) + " is given to two tokens");
            spec.tokens[id] = token;
        }
        const json& merges = model.at("merges");
        spec.merges.reserve(merges.size());
        for (std::size_t i = 0; i < merges.size(); ++i) spec.merges.push_back(parse_merge(merges[i], i, path));
        if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
            for (const auto& a : j["added_tokens"]) {
                BpeAddedToken t;
                t.id = a.at("id").get<int32_t>();
                t.content = a.at("content").get<std::string>();
                t.special = a.value("special", false);
                t.lstrip = a.value("lstrip", false);
                t.rstrip = a.value("rstrip", false);
                t.single_word = a.value("single_word", false);
                t.normalized = a.value("normalized", !t.special);
                spec.added.push_back(std::move(t));
            }
        }
        // An added token whose content is in the model vocabulary has that token's id (HF ignores the id in the
        // file then); others keep theirs, inside the vocabulary's id range or after it.
        {
            std::unordered_map<std::string_view, int32_t> in_vocab;
            for (std::size_t i = 0; i < spec.tokens.size(); ++i)
                if (!spec.tokens[i].empty()) in_vocab.emplace(spec.tokens[i], static_cast<int32_t>(i));
            for (auto& a : spec.added)
                if (auto it = in_vocab.find(a.content); it != in_vocab.end()) a.id = it->second;
        }
        if (model.contains("unk_token") && model["unk_token"].is_string()) {
            const std::string unk = model["unk_token"].get<std::string>();
            if (auto it = std::find(spec.tokens.begin(), spec.tokens.end(), unk); it != spec.tokens.end())
                spec.unk_id = static_cast<int32_t>(it - spec.tokens.begin());
        }
        find_special_ids(j, path, spec);
    } catch (const json::exception& e) {
        throw Error(path + ": unexpected tokenizer.json structure: " + e.what());
    }
    return std::make_shared<ByteLevelBpeTokenizer>(std::move(spec), path);
}

std::shared_ptr<Tokenizer> make_gguf_bpe_tokenizer(std::vector<std::string> tokens,
                                                   const std::vector<std::string>& merges,
                                                   const std::vector<int32_t>& token_types, int32_t bos_id,
                                                   int32_t eos_id, const std::string& pre, const std::string& source) {
    ByteBpeSpec spec;
    spec.pre = parse_gguf_pre_tokenizer(pre, source);
    spec.ignore_merges = spec.pre == BpePreTokenizer::Llama3;  // as llama.cpp does for Llama 3 vocabularies
    if (!token_types.empty() && token_types.size() != tokens.size())
        throw Error(source + ": tokenizer.ggml.token_type has " + std::to_string(token_types.size()) + " entries for " +
                    std::to_string(tokens.size()) + " tokens");
    for (std::size_t i = 0; i < token_types.size(); ++i) {
        const int32_t t = token_types[i];
        if (t == 3 || t == 4) spec.added.push_back({tokens[i], static_cast<int32_t>(i), t == 3});
        if (t == 2) spec.unk_id = static_cast<int32_t>(i);
    }
    spec.merges.reserve(merges.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
        const auto space = merges[i].find(' ');
        if (space == std::string::npos || space == 0 || space + 1 == merges[i].size())
            throw Error(source + ": tokenizer.ggml.merges[" + std::to_string(i) + "] \"" + merges[i] +
                        "\" is not \"a b\"");
        spec.merges.emplace_back(merges[i].substr(0, space), merges[i].substr(space + 1));
    }
    spec.tokens = std::move(tokens);
    spec.bos_id = bos_id;
    spec.eos_id = eos_id;
    return std::make_shared<ByteLevelBpeTokenizer>(std::move(spec), source);
}

}  // namespace cloq
