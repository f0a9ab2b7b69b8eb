// The byte-level BPE pre-tokenizer regexes as hand-written scanners. Each alternative of the regex becomes a
// function that returns the length of its match at a position (0 = no match), tried in the regex's order, so the
// first alternative that matches wins exactly as in a backtracking regex engine (HF tokenizers uses Oniguruma).
#include <cstddef>

#include "cloq/base/error.h"
#include "tokenize/tokenizer_bpe.h"
#include "tokenize/unicode_text.h"

namespace cloq {

namespace {

enum class Cat : uint8_t { Letter, Number, Space, Other };

struct Chars {
    std::vector<char32_t> cp;
    std::vector<std::size_t> offset;  // byte offset of each character; offset[n] = text size
    std::vector<Cat> cat;
    std::size_t size() const { return cp.size(); }
};

Chars decode(std::string_view text) {
    Chars c;
    c.cp.reserve(text.size());
    c.offset.reserve(text.size() + 1);
    c.cat.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        char32_t cp;
        std::size_t len;
        const bool ok = unicode::decode_utf8(text, i, cp, len);
        c.offset.push_back(i);
        // An ill-formed byte is one "character" of class Other: it ends up in a punctuation piece and its byte
        // survives the byte-level mapping unchanged.
        c.cp.push_back(ok ? cp : 0xFFFFFFFF);
        c.cat.push_back(!ok                          ? Cat::Other
                        : unicode::is_letter(cp)     ? Cat::Letter
                        : unicode::is_number(cp)     ? Cat::Number
                        : unicode::is_whitespace(cp) ? Cat::Space
                                                     : Cat::Other);
        i += len;
    }
    c.offset.push_back(text.size());
    return c;
}

// End of the run of category `cat` starting at i.
std::size_t run(const Chars& c, std::size_t i, Cat cat) {
    while (i < c.size() && c.cat[i] == cat) ++i;
    return i;
}

bool is_newline(char32_t cp) { return cp == '\r' || cp == '\n'; }

char32_t fold(char32_t cp, bool ignore_case) {
    if (!ignore_case) return cp;
    if (cp == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to 's'
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
}

// 's|'t|'re|'ve|'m|'ll|'d (optionally case-insensitive)
std::size_t contraction(const Chars& c, std::size_t i, bool ignore_case) {
    if (c.cp[i] != '\'' || i + 1 >= c.size()) return 0;
    const char32_t a = fold(c.cp[i + 1], ignore_case);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= c.size()) return 0;
    const char32_t b = fold(c.cp[i + 2], ignore_case);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// \s+(?!\S)|\s+ at a whitespace character: the whole run if it ends the text, else all but its last character
// (which then prefixes the next word), else the single character.
std::size_t trailing_space(const Chars& c, std::size_t i) {
    const std::size_t j = run(c, i, Cat::Space);
    if (j == c.size() || j - i == 1) return j - i;
    return j - i - 1;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::size_t gpt2_match(const Chars& c, std::size_t i) {
    if (std::size_t n = contraction(c, i, false)) return n;
    const std::size_t s = c.cp[i] == ' ' && i + 1 < c.size() ? 1 : 0;
    for (Cat cat : {Cat::Letter, Cat::Number, Cat::Other})  // without the space c[i] would be whitespace: no match
        if (c.cat[i + s] == cat) return run(c, i + s, cat) - i;
    return trailing_space(c, i);
}

// Llama 3 / Qwen2: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
//                  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
std::size_t llama3_match(const Chars& c, std::size_t i, std::size_t max_digits) {
    if (std::size_t n = contraction(c, i, true)) return n;
    if (c.cat[i] == Cat::Letter) return run(c, i, Cat::Letter) - i;
    if (c.cat[i] != Cat::Number && !is_newline(c.cp[i]) && i + 1 < c.size() && c.cat[i + 1] == Cat::Letter)
        return run(c, i + 1, Cat::Letter) - i;
    if (c.cat[i] == Cat::Number) return std::min(run(c, i, Cat::Number) - i, max_digits);
    const std::size_t s = c.cp[i] == ' ' && i + 1 < c.size() ? 1 : 0;
    if (c.cat[i + s] == Cat::Other) {
        std::size_t j = run(c, i + s, Cat::Other);
        while (j < c.size() && is_newline(c.cp[j])) ++j;
        return j - i;
    }
    // \s*[\r\n]+ : the longest match ends just after the last newline of the whitespace run
    const std::size_t j = run(c, i, Cat::Space);
    for (std::size_t k = j; k > i; --k)
        if (is_newline(c.cp[k - 1])) return k - i;
    return trailing_space(c, i);
}

void split(const Chars& c, std::string_view text, std::size_t from, std::size_t to, BpePreTokenizer kind,
           std::vector<std::string_view>& out) {
    for (std::size_t i = from; i < to;) {
        std::size_t n;
        switch (kind) {
        case BpePreTokenizer::Llama3:
            n = llama3_match(c, i, 3);
            break;
        case BpePreTokenizer::Qwen2:
            n = llama3_match(c, i, 1);
            break;
        default:
            n = gpt2_match(c, i);
            break;
        }
        n = std::min(std::max<std::size_t>(n, 1), to - i);
        out.push_back(text.substr(c.offset[i], c.offset[i + n] - c.offset[i]));
        i += n;
    }
}

}  // namespace

const char* to_string(BpePreTokenizer p) {
    switch (p) {
    case BpePreTokenizer::Gpt2:
        return "gpt2";
    case BpePreTokenizer::Llama3:
        return "llama3";
    case BpePreTokenizer::Qwen2:
        return "qwen2";
    case BpePreTokenizer::SmolLM:
        return "smollm";
    }
    return "?";
}

std::vector<std::string_view> pre_tokenize(std::string_view text, BpePreTokenizer kind) {
    std::vector<std::string_view> out;
    if (text.empty()) return out;
    const Chars c = decode(text);
    if (kind != BpePreTokenizer::SmolLM) {
        split(c, text, 0, c.size(), kind, out);
        return out;
    }
    // Digits(individual_digits=true) first: every number character is a piece of its own; the GPT-2 regex then
    // splits the stretches between them (it sees each stretch as a whole text).
    std::size_t start = 0;
    for (std::size_t i = 0; i <= c.size(); ++i) {
        if (i < c.size() && c.cat[i] != Cat::Number) continue;
        if (i > start) {  // decoded again: its end is the end of the text for (?!\S)
            const std::string_view stretch = text.substr(c.offset[start], c.offset[i] - c.offset[start]);
            const Chars part = decode(stretch);
            split(part, stretch, 0, part.size(), BpePreTokenizer::Gpt2, out);
        }
        if (i < c.size()) out.push_back(text.substr(c.offset[i], c.offset[i + 1] - c.offset[i]));
        start = i + 1;
    }
    return out;
}

BpePreTokenizer parse_gguf_pre_tokenizer(const std::string& name, const std::string& source) {
    if (name.empty() || name == "default" || name == "gpt2" || name == "gpt-2") return BpePreTokenizer::Gpt2;
    if (name == "llama3" || name == "llama-bpe" || name == "llama-v3") return BpePreTokenizer::Llama3;
    if (name == "qwen2") return BpePreTokenizer::Qwen2;
    if (name == "smollm" || name == "starcoder" || name == "refact") return BpePreTokenizer::SmolLM;
    throw Error(source + ": unsupported BPE pre-tokenizer \"" + name +
                "\" (supported: gpt2/default, llama3/llama-bpe, qwen2, smollm/starcoder)");
}

}  // namespace cloq
