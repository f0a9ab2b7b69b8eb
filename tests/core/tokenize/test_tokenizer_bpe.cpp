// Byte-level BPE tokenizer: GPT-2's byte map, the pre-tokenizer scanners against hand-derived splits and against
// std::regex versions of the same patterns (ASCII alphabet), merge order against the classic GPT-2 bpe() loop on
// a vocabulary trained in the test on the shared texts, round trips, added/special tokens, tokenizer.json and
// GGUF loading, and malformed tokenizer.json files.
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <chrono>
#include <climits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <unordered_map>

#include "cloq/base/error.h"
#include "test_support.h"
#include "tokenize/tokenizer_bpe.h"

using namespace cloq;
using nlohmann::json;
using Pieces = std::vector<std::string>;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

Pieces split(const std::string& text, BpePreTokenizer kind) {
    Pieces out;
    for (auto p : pre_tokenize(text, kind)) out.emplace_back(p);
    return out;
}

// The same patterns for std::regex (ECMAScript: backtracking, first alternative wins, like Oniguruma), with the
// Unicode classes narrowed to ASCII; valid for ASCII text only.
const std::string L = "[A-Za-z]", N = "[0-9]", S = "[ \\t\\n\\v\\f\\r]", NOT_SLN = "[^ \\t\\n\\v\\f\\rA-Za-z0-9]";
const std::string kGpt2Ascii = "'s|'t|'re|'ve|'m|'ll|'d| ?" + L + "+| ?" + N + "+| ?" + NOT_SLN + "+|" + S + "+(?!" +
                               "[^ \\t\\n\\v\\f\\r])|" + S + "+";
std::string llama3_ascii(const std::string& digits) {
    return "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\\r\\nA-Za-z0-9]?" + L + "+|" + N + digits + "| ?" +
           NOT_SLN + "+[\\r\\n]*|" + S + "*[\\r\\n]+|" + S + "+(?![^ \\t\\n\\v\\f\\r])|" + S + "+";
}

Pieces regex_split(const std::string& text, const std::regex& re) {
    Pieces out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back(it->str());
    return out;
}

Pieces regex_split_smollm(const std::string& text, const std::regex& gpt2) {
    Pieces out;
    std::string stretch;
    for (char c : text) {
        if (c >= '0' && c <= '9') {
            for (auto& p : regex_split(stretch, gpt2)) out.push_back(p);
            stretch.clear();
            out.emplace_back(1, c);
        } else {
            stretch += c;
        }
    }
    for (auto& p : regex_split(stretch, gpt2)) out.push_back(p);
    return out;
}

// A small BPE vocabulary learned here from text (most frequent pair first, ties to the smallest ids): tokens are
// the 256 byte characters (ids = byte values) then one token per merge (id 256 + rank).
struct Trained {
    std::vector<std::string> tokens;
    std::vector<std::pair<std::string, std::string>> merges;
    std::unordered_map<uint64_t, int32_t> rank;  // (left id, right id) -> rank
};

uint64_t pair_key(int32_t a, int32_t b) { return static_cast<uint64_t>(a) << 32 | static_cast<uint32_t>(b); }

Trained train(const std::string& text, BpePreTokenizer kind, int num_merges) {
    Trained t;
    for (int b = 0; b < 256; ++b) t.tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
    std::unordered_map<std::string_view, int64_t> freq;
    for (auto w : pre_tokenize(text, kind)) ++freq[w];
    std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
    for (const auto& [w, f] : freq) words.emplace_back(std::vector<int32_t>(w.begin(), w.end()), f);
    for (auto& [w, f] : words)
        for (auto& id : w) id = static_cast<unsigned char>(id);
    for (int m = 0; m < num_merges; ++m) {
        std::unordered_map<uint64_t, int64_t> pairs;
        for (const auto& [w, f] : words)
            for (std::size_t i = 0; i + 1 < w.size(); ++i) pairs[pair_key(w[i], w[i + 1])] += f;
        if (pairs.empty()) break;
        std::pair<uint64_t, int64_t> best = *pairs.begin();
        for (const auto& p : pairs)
            if (p.second > best.second || (p.second == best.second && p.first < best.first)) best = p;
        const auto a = static_cast<int32_t>(best.first >> 32), b = static_cast<int32_t>(best.first & 0xFFFFFFFF);
        const auto merged = static_cast<int32_t>(t.tokens.size());
        t.rank[best.first] = m;
        t.merges.push_back({t.tokens[a], t.tokens[b]});
        t.tokens.push_back(t.tokens[a] + t.tokens[b]);
        for (auto& [w, f] : words) {
            std::vector<int32_t> next;
            for (std::size_t i = 0; i < w.size(); ++i) {
                if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
                    next.push_back(merged);
                    ++i;
                } else {
                    next.push_back(w[i]);
                }
            }
            w.swap(next);
        }
    }
    return t;
}

// The reference: GPT-2's original encoder.py bpe() (lowest-ranked bigram, all its occurrences left to right).
std::vector<int32_t> classic_bpe(std::string_view word, const Trained& t) {
    std::vector<int32_t> ids;
    for (unsigned char c : word) ids.push_back(c);
    while (ids.size() > 1) {
        int best_rank = INT_MAX;
        int32_t first = -1, second = -1;
        for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
            const auto it = t.rank.find(pair_key(ids[i], ids[i + 1]));
            if (it != t.rank.end() && it->second < best_rank) {
                best_rank = it->second;
                first = ids[i];
                second = ids[i + 1];
            }
        }
        if (best_rank == INT_MAX) break;
        std::vector<int32_t> next;
        for (std::size_t i = 0; i < ids.size();) {
            if (i + 1 < ids.size() && ids[i] == first && ids[i + 1] == second) {
                next.push_back(256 + best_rank);
                i += 2;
            } else {
                next.push_back(ids[i++]);
            }
        }
        ids.swap(next);
    }
    return ids;
}

json tokenizer_json(const Trained& t, const json& pre_tokenizer, const json& added = json::array(),
                    bool pair_merges = false) {
    json vocab = json::object();
    for (std::size_t i = 0; i < t.tokens.size(); ++i) vocab[t.tokens[i]] = i;
    json merges = json::array();
    for (std::size_t i = 0; i < t.merges.size(); ++i) {
        if (pair_merges)
            merges.push_back(json::array({t.merges[i].first, t.merges[i].second}));  // newer files
        else
            merges.push_back(t.merges[i].first + " " + t.merges[i].second);
    }
    return {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer", pre_tokenizer},
        {"post_processor", nullptr},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
        {"model",
         {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", false},
          {"byte_fallback", false},
          {"ignore_merges", false},
          {"vocab", vocab},
          {"merges", merges}}}};
}

json byte_level(bool use_regex, bool prefix = false) {
    return {{"type", "ByteLevel"}, {"add_prefix_space", prefix}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

// As the pre_tokenizer appears in real tokenizer.json files of each family.
json pre_tokenizer_json(BpePreTokenizer kind) {
    const std::string llama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    const std::string qwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    auto split = [&](const std::string& re) {
        return json{{"type", "Sequence"},
                    {"pretokenizers",
                     {{{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}},
                      byte_level(false)}}};
    };
    switch (kind) {
    case BpePreTokenizer::Gpt2:
        return byte_level(true);
    case BpePreTokenizer::Llama3:
        return split(llama3);
    case BpePreTokenizer::Qwen2:
        return split(qwen2);
    case BpePreTokenizer::SmolLM:
        return {{"type", "Sequence"},
                {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
    }
    return nullptr;
}

template <class F>
void expect_error(F&& fn, std::initializer_list<std::string> parts) {
    try {
        fn();
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const auto& p : parts)
            if (msg.find(p) == std::string::npos)
                QFAIL(qPrintable(QString("message \"%1\" lacks \"%2\"").arg(e.what()).arg(QString::fromStdString(p))));
        return;
    }
    QFAIL(qPrintable(
        QString("no cloq::Error; expected one mentioning \"%1\"").arg(QString::fromStdString(*parts.begin()))));
}

}  // namespace

class TestTokenizerBpe : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string tmp(const std::string& name) const { return tmp_.filePath(QString::fromStdString(name)).toStdString(); }
    std::string write_json(const std::string& name, const json& j) {
        const std::string dir = tmp(name);
        QDir().mkpath(QString::fromStdString(dir));
        write_file(dir + "/tokenizer.json", j.dump());
        return dir + "/tokenizer.json";
    }

private Q_SLOTS:
    void byteMapIsGpt2s() {
        std::set<std::string> seen;
        for (int b = 0; b < 256; ++b) {
            const std::string& s = byte_to_unicode(static_cast<uint8_t>(b));
            QVERIFY(seen.insert(s).second);
            if ((b >= '!' && b <= '~')) QCOMPARE(s, std::string(1, static_cast<char>(b)));
        }
        QCOMPARE(byte_to_unicode(' '), std::string("\xC4\xA0"));   // U+0120 'Ġ'
        QCOMPARE(byte_to_unicode('\n'), std::string("\xC4\x8A"));  // U+010A 'Ċ'
        QCOMPARE(byte_to_unicode(0), std::string("\xC4\x80"));     // U+0100
        QCOMPARE(byte_to_unicode(0x7F), std::string("\xC4\xA1"));  // U+0121
        QCOMPARE(byte_to_unicode(0xAD), std::string("\xC5\x83"));  // U+0143
        QCOMPARE(byte_to_unicode(0xE9), std::string("\xC3\xA9"));  // printable Latin-1 maps to itself
        // A byte-only vocabulary round-trips every byte string, valid UTF-8 or not.
        ByteBpeSpec spec;
        for (int b = 0; b < 256; ++b) spec.tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
        const ByteLevelBpeTokenizer tok(spec, "bytes.json");
        std::string all;
        for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
        const auto ids = tok.encode(all, false);
        QCOMPARE(ids.size(), size_t{256});
        for (int b = 0; b < 256; ++b) QCOMPARE(ids[b], b);
        const std::string valid = "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\n\t\x01";
        QCOMPARE(tok.decode(tok.encode(valid, false)), valid);
        QCOMPARE(tok.decode({0xC3}), std::string("\xEF\xBF\xBD"));  // a lone lead byte -> U+FFFD
        QCOMPARE(tok.decode({0xE4, 0xBD, 'a'}), std::string("\xEF\xBF\xBD"
                                                            "a"));  // truncated sequence -> one U+FFFD
    }

    void preTokenizerHandDerived() {
        using K = BpePreTokenizer;
        QCOMPARE(split("Hello world", K::Gpt2), (Pieces{"Hello", " world"}));
        QCOMPARE(split("I'm fine, they'll go", K::Gpt2), (Pieces{"I", "'m", " fine", ",", " they", "'ll", " go"}));
        QCOMPARE(split("  two spaces", K::Gpt2), (Pieces{" ", " two", " spaces"}));
        QCOMPARE(split("end   ", K::Gpt2), (Pieces{"end", "   "}));
        QCOMPARE(split("a\n\nb", K::Gpt2), (Pieces{"a", "\n", "\n", "b"}));
        QCOMPARE(split("hello\t world", K::Gpt2), (Pieces{"hello", "\t", " world"}));
        QCOMPARE(split("price: $100.50!", K::Gpt2), (Pieces{"price", ":", " $", "100", ".", "50", "!"}));
        QCOMPARE(split("It'S", K::Gpt2), (Pieces{"It", "'", "S"}));
        QCOMPARE(split("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80", K::Gpt2),
                 (Pieces{"\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
                         " \xD0\xBC\xD0\xB8\xD1\x80"}));  // Cyrillic letters
        QCOMPARE(
            split("\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", K::Gpt2),  // CJK + fullwidth comma
            (Pieces{"\xE4\xBD\xA0\xE5\xA5\xBD", "\xEF\xBC\x8C", "\xE4\xB8\x96\xE7\x95\x8C"}));
        QCOMPARE(split("x\xC2\xB2 \xD9\xA3\xD9\xA4", K::Gpt2),
                 (Pieces{"x", "\xC2\xB2", " \xD9\xA3\xD9\xA4"}));  // No, Arabic-Indic Nd
        QCOMPARE(split("\xF0\x9F\x91\x8D\xF0\x9F\x91\x8D ok", K::Gpt2),
                 (Pieces{"\xF0\x9F\x91\x8D\xF0\x9F\x91\x8D", " ok"}));
        QCOMPARE(split("a\xC2\xA0"
                       "b",
                       K::Gpt2),
                 (Pieces{"a", "\xC2\xA0", "b"}));  // NBSP is \s but not ' '
        QCOMPARE(split("\xFF\xFE"
                       "ab",
                       K::Gpt2),
                 (Pieces{"\xFF\xFE", "ab"}));  // ill-formed bytes: punctuation
        QCOMPARE(split("I'M fine", K::Llama3), (Pieces{"I", "'M", " fine"}));
        QCOMPARE(split("12345", K::Llama3), (Pieces{"123", "45"}));
        QCOMPARE(split("(word", K::Llama3), (Pieces{"(word"}));
        QCOMPARE(split("a\n\n  b", K::Llama3), (Pieces{"a", "\n\n", " ", " b"}));
        QCOMPARE(split("hello!!\n\nworld", K::Llama3), (Pieces{"hello", "!!\n\n", "world"}));
        QCOMPARE(split(" 2024", K::Llama3), (Pieces{" ", "202", "4"}));
        QCOMPARE(split("don't", K::Llama3), (Pieces{"don", "'t"}));
        QCOMPARE(split("it\xC5\xBF", K::Llama3), (Pieces{"it\xC5\xBF"}));  // long s is a letter
        QCOMPARE(split("'\xC5\xBF", K::Llama3), (Pieces{"'\xC5\xBF"}));    // (?i) 's matches 'ſ
        QCOMPARE(split("12345", K::Qwen2), (Pieces{"1", "2", "3", "4", "5"}));
        QCOMPARE(split("abc123 def45", K::SmolLM), (Pieces{"abc", "1", "2", "3", " def", "4", "5"}));
        QCOMPARE(split("a 1", K::SmolLM), (Pieces{"a", " ", "1"}));
        QCOMPARE(split("", K::Gpt2), Pieces{});
    }

    // Independent reference: the same regexes in std::regex over an ASCII alphabet that hits every alternative.
    void preTokenizerMatchesRegex() {
        const std::string alphabet = "aAbZz09  \t\n\r'sSmMlLdtTreve.,!$(-_";
        std::mt19937 rng(2024);
        const std::pair<BpePreTokenizer, std::regex> patterns[] = {
            {BpePreTokenizer::Gpt2, std::regex(kGpt2Ascii)},
            {BpePreTokenizer::Llama3, std::regex(llama3_ascii("{1,3}"))},
            {BpePreTokenizer::Qwen2, std::regex(llama3_ascii(""))}};
        for (int k = 0; k < 3000; ++k) {
            std::string s(rng() % 24, ' ');
            for (auto& c : s) c = alphabet[rng() % alphabet.size()];
            for (const auto& [kind, pattern] : patterns) {
                const Pieces got = split(s, kind), want = regex_split(s, pattern);
                if (got != want)
                    QFAIL(qPrintable(QString("%1 on \"%2\"").arg(to_string(kind)).arg(QString::fromStdString(s))));
            }
            QCOMPARE(split(s, BpePreTokenizer::SmolLM), regex_split_smollm(s, patterns[0].second));
        }
    }

    void preTokenizerCoversEveryByte() {
        std::mt19937 rng(99);
        const std::vector<std::string> atoms = {"a",
                                                "Z",
                                                "7",
                                                " ",
                                                "\n",
                                                "\r",
                                                "\t",
                                                "'",
                                                "'s",
                                                "!",
                                                "\xC3\xA9",
                                                "\xE4\xBD\xA0",
                                                "\xF0\x9F\x98\x80",
                                                "\xD9\xA3",
                                                "\xC2\xA0",
                                                "\xFF",
                                                "\xE2\x82"};
        for (int k = 0; k < 2000; ++k) {
            std::string s;
            for (int n = rng() % 30; n > 0; --n) s += atoms[rng() % atoms.size()];
            for (auto kind :
                 {BpePreTokenizer::Gpt2, BpePreTokenizer::Llama3, BpePreTokenizer::Qwen2, BpePreTokenizer::SmolLM}) {
                std::string joined;
                for (auto p : pre_tokenize(s, kind)) {
                    QVERIFY(!p.empty());
                    joined += p;
                }
                QCOMPARE(joined, s);
            }
        }
    }

    // A vocabulary trained here, loaded from tokenizer.json, against the classic GPT-2 bpe() on every pre-token of
    // both shared texts; decode(encode(x)) == x; whole-file speed.
    void mergesMatchClassicBpeOnSharedTexts_data() {
        QTest::addColumn<int>("kind");
        QTest::newRow("gpt2") << static_cast<int>(BpePreTokenizer::Gpt2);
        QTest::newRow("llama3") << static_cast<int>(BpePreTokenizer::Llama3);
        QTest::newRow("qwen2") << static_cast<int>(BpePreTokenizer::Qwen2);
        QTest::newRow("smollm") << static_cast<int>(BpePreTokenizer::SmolLM);
    }
    void mergesMatchClassicBpeOnSharedTexts() {
        QFETCH(int, kind);
        const auto pre = static_cast<BpePreTokenizer>(kind);
        const std::string stories = read_file(cloq::test::tinystories_path());
        const std::string wiki = read_file(cloq::test::wikitext_path());
        const Trained t = train(stories.substr(0, 100000) + wiki.substr(0, 100000), pre, 400);
        QCOMPARE(t.merges.size(), size_t{400});
        const std::string path = write_json(std::string("trained_") + to_string(pre),
                                            tokenizer_json(t, pre_tokenizer_json(pre), json::array(), kind % 2 == 1));
        const auto tok = load_hf_tokenizer_json(path);
        QCOMPARE(tok->vocab_size(), int64_t{656});
        QVERIFY(tok->kind().find(to_string(pre)) != std::string::npos);
        for (const std::string* text : {&stories, &wiki}) {
            const auto t0 = std::chrono::steady_clock::now();
            const auto ids = tok->encode(*text, false);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            qInfo("%s: %zu bytes -> %zu tokens in %.2f s", to_string(pre), text->size(), ids.size(), seconds);
            // the reference, pre-token by pre-token (cached: words repeat)
            std::vector<int32_t> want;
            std::unordered_map<std::string_view, std::vector<int32_t>> memo;
            for (const auto word : pre_tokenize(*text, pre)) {
                auto [it, inserted] = memo.try_emplace(word);
                if (inserted) it->second = classic_bpe(word, t);
                want.insert(want.end(), it->second.begin(), it->second.end());
            }
            QCOMPARE(ids.size(), want.size());
            QVERIFY(ids == want);
            QVERIFY(ids.size() < text->size() / 2);  // the merges do compress
            QVERIFY(tok->decode(ids) == *text);
        }
    }

    // Merge order on a hand-made vocabulary: the rank, not the position, decides; ties go left.
    void mergeOrderHandDerived() {
        auto make = [](const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges = false,
                       std::vector<std::string> extra = {}) {
            ByteBpeSpec s;
            for (int b = 0; b < 256; ++b) s.tokens.push_back(byte_to_unicode(static_cast<uint8_t>(b)));
            for (const auto& [a, b] : merges) s.tokens.push_back(a + b);
            for (auto& e : extra) s.tokens.push_back(e);
            s.merges = merges;
            s.ignore_merges = ignore_merges;
            return std::make_unique<ByteLevelBpeTokenizer>(s, "hand.json");
        };
        {  // (b,c) before (a,b): "abc" -> a + bc
            const auto t = make({{"b", "c"}, {"a", "b"}});
            QCOMPARE(t->encode("abc", false), (std::vector<int32_t>{'a', 256}));
        }
        {  // (a,b) before (b,c): "abc" -> ab + c
            const auto t = make({{"a", "b"}, {"b", "c"}});
            QCOMPARE(t->encode("abc", false), (std::vector<int32_t>{256, 'c'}));
        }
        {  // ties: leftmost first; then the new pair (aa,a) merges
            const auto t = make({{"a", "a"}});
            QCOMPARE(t->encode("aaaaa", false), (std::vector<int32_t>{256, 256, 'a'}));
            const auto t2 = make({{"a", "a"}, {"aa", "a"}});
            QCOMPARE(t2->encode("aaa", false), (std::vector<int32_t>{257}));
            QCOMPARE(t2->encode("aaaa", false), (std::vector<int32_t>{256, 256}));  // aa aa: (aa,a) never forms
        }
        {  // ignore_merges: a whole pre-token in the vocabulary wins over what the merges would build
            const auto plain = make({{"a", "b"}}, false, {"abcd"});
            QCOMPARE(plain->encode("abcd", false), (std::vector<int32_t>{256, 'c', 'd'}));
            const auto ignoring = make({{"a", "b"}}, true, {"abcd"});
            QCOMPARE(ignoring->encode("abcd", false), (std::vector<int32_t>{257}));
            QCOMPARE(ignoring->encode("abcde", false), (std::vector<int32_t>{256, 'c', 'd', 'e'}));
        }
        {  // the space belongs to the following word: " b" is Ġ + b
            const auto t = make({{"\xC4\xA0", "b"}});
            QCOMPARE(t->encode("a b", false), (std::vector<int32_t>{'a', 256}));
        }
    }

    void addedAndSpecialTokens() {
        Trained t = train("the cat sat on the mat. the cat ate.", BpePreTokenizer::Gpt2, 20);
        const int32_t base = static_cast<int32_t>(t.tokens.size());
        json added = json::array();
        auto add = [&](const std::string& content, bool special, json extra = json::object()) {
            json a = {{"id", base + static_cast<int32_t>(added.size())},
                      {"content", content},
                      {"single_word", false},
                      {"lstrip", false},
                      {"rstrip", false},
                      {"normalized", !special},
                      {"special", special}};
            a.update(extra);
            added.push_back(a);
            return a["id"].get<int32_t>();
        };
        const int32_t eot = add("<|endoftext|>", true);
        const int32_t im = add("<|im_start|>", true);
        const int32_t im_short = add("<|im", true);
        const int32_t tool = add("<tool>", false);
        const int32_t strip = add("<|s|>", true, {{"lstrip", true}, {"rstrip", true}});
        const int32_t word = add("zq", false, {{"single_word", true}});
        const int32_t the_id = add("the", false);  // already a model token: HF gives it the model's id
        const std::string path =
            write_json("added", tokenizer_json(t, pre_tokenizer_json(BpePreTokenizer::Gpt2), added));
        const auto tok = std::dynamic_pointer_cast<ByteLevelBpeTokenizer>(load_hf_tokenizer_json(path));
        QVERIFY(tok);
        QCOMPARE(tok->vocab_size(), int64_t{base + 6});
        QVERIFY(tok->token_to_id("the") < base);
        QVERIFY(tok->token_to_id("the") != the_id);
        auto plain = [&](const std::string& s) { return tok->encode(s, false); };
        auto cat = [](std::vector<int32_t> a, const std::vector<int32_t>& b) {
            a.insert(a.end(), b.begin(), b.end());
            return a;
        };
        // matched before pre-tokenization, wherever they are
        QCOMPARE(plain("hi<|endoftext|>there"), cat(cat(plain("hi"), {eot}), plain("there")));
        // leftmost-longest: <|im_start|> rather than <|im
        QCOMPARE(plain("<|im_start|>x"), cat({im}, plain("x")));
        QCOMPARE(plain("<|imx"), cat({im_short}, plain("x")));
        // non-special tokens are kept by decode, special ones dropped
        const auto ids = plain("a<tool>b<|endoftext|>");
        QCOMPARE(ids, cat(cat(cat(plain("a"), {tool}), plain("b")), {eot}));
        QCOMPARE(tok->decode(ids), std::string("a<tool>b"));
        // lstrip / rstrip swallow the whitespace around the token
        QCOMPARE(plain("a  <|s|>\t b"), cat(cat(plain("a"), {strip}), plain("b")));
        // single_word: only where it is not inside a longer word
        QCOMPARE(plain("a zq b"), cat(cat(plain("a "), {word}), plain(" b")));
        QCOMPARE(plain("zq"), (std::vector<int32_t>{word}));
        for (const std::string inside :
             {"azqb", "xzq y", "a_zq", "zq1", "zq\xC3\xA9"}) {  // letters, digits, _ are word chars
            const auto ids = plain(inside);
            QVERIFY(std::find(ids.begin(), ids.end(), word) == ids.end());
        }
        QCOMPARE(tok->token_to_id("<tool>"), tool);
        expect_error([&] { tok->decode({base + 6}); }, {path, "token id"});
    }

    // BOS/EOS from tokenizer_config.json, else from the post-processor template; ByteLevel add_prefix_space.
    void specialIdsAndPrefixSpace() {
        Trained t = train("hello world, hello there", BpePreTokenizer::Gpt2, 10);
        const int32_t base = static_cast<int32_t>(t.tokens.size());
        const json added = json::array({{{"id", base}, {"content", "<|begin_of_text|>"}, {"special", true}},
                                        {{"id", base + 1}, {"content", "<|end_of_text|>"}, {"special", true}}});
        json j = tokenizer_json(t, pre_tokenizer_json(BpePreTokenizer::Gpt2), added);
        j["post_processor"] = {{"type", "Sequence"},
                               {"processors",
                                {{{"type", "ByteLevel"}},
                                 {{"type", "TemplateProcessing"},
                                  {"single",
                                   {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}}}};
        const auto from_template = load_hf_tokenizer_json(write_json("template", j));
        QCOMPARE(from_template->bos_id(), base);
        QCOMPARE(from_template->eos_id(), base + 1);
        QCOMPARE(from_template->encode("hello", true).front(), base);
        QCOMPARE(from_template->decode(from_template->encode("hello world", true)), std::string("hello world"));

        const std::string with_config = write_json("config", j);
        write_file(with_config.substr(0, with_config.size() - 14) + "tokenizer_config.json",
                   json{{"bos_token", {{"content", "<|end_of_text|>"}}}, {"eos_token", "<|begin_of_text|>"}}.dump());
        const auto configured = load_hf_tokenizer_json(with_config);
        QCOMPARE(configured->bos_id(), base + 1);
        QCOMPARE(configured->eos_id(), base);

        json prefixed = tokenizer_json(t, byte_level(true, true));
        const auto tok = load_hf_tokenizer_json(write_json("prefix", prefixed));
        const auto plain = load_hf_tokenizer_json(write_json("noprefix", tokenizer_json(t, byte_level(true, false))));
        QCOMPARE(tok->encode("hello", false), plain->encode(" hello", false));
        QCOMPARE(tok->encode(" hello", false), plain->encode(" hello", false));
        QCOMPARE(tok->bos_id(), -1);
    }

    // GGUF tokenizer.ggml.* arrays give the same tokenizer as the tokenizer.json they came from.
    void ggufConstructorMatchesJson() {
        const std::string stories = read_file(cloq::test::tinystories_path()).substr(0, 60000);
        Trained t = train(stories, BpePreTokenizer::SmolLM, 150);
        const int32_t base = static_cast<int32_t>(t.tokens.size());
        const json added = json::array({{{"id", base}, {"content", "<|endoftext|>"}, {"special", true}},
                                        {{"id", base + 1}, {"content", "<|im_start|>"}, {"special", true}}});
        const auto from_json = load_hf_tokenizer_json(
            write_json("smol", tokenizer_json(t, pre_tokenizer_json(BpePreTokenizer::SmolLM), added)));
        std::vector<std::string> tokens = t.tokens;
        tokens.push_back("<|endoftext|>");
        tokens.push_back("<|im_start|>");
        std::vector<int32_t> types(tokens.size(), 1);
        types[base] = types[base + 1] = 3;
        std::vector<std::string> merges;
        for (const auto& [a, b] : t.merges) merges.push_back(a + " " + b);
        const auto from_gguf = make_gguf_bpe_tokenizer(tokens, merges, types, base + 1, base, "smollm", "model.gguf");
        QCOMPARE(from_gguf->bos_id(), base + 1);
        QCOMPARE(from_gguf->eos_id(), base);
        const std::string text = stories + " 12345 <|im_start|>user\nhi<|endoftext|>";
        auto want = from_json->encode(text, false);
        want.insert(want.begin(), base + 1);
        QVERIFY(from_gguf->encode(text, true) == want);
        QCOMPARE(from_gguf->decode(want), from_json->decode(want));
        expect_error([&] { make_gguf_bpe_tokenizer(tokens, merges, types, 1, 2, "jais", "m.gguf"); },
                     {"m.gguf", "jais"});
        expect_error([&] { make_gguf_bpe_tokenizer(tokens, {"a"}, types, 1, 2, "gpt2", "m.gguf"); },
                     {"m.gguf", "merges[0]"});
        expect_error(
            [&] {
                make_gguf_bpe_tokenizer(tokens, merges, {1, 1}, 1, 2, "gpt2", "m.gguf");
            },
            {"m.gguf", "token_type"});
        QCOMPARE(parse_gguf_pre_tokenizer("llama-bpe", "x"), BpePreTokenizer::Llama3);
        QCOMPARE(parse_gguf_pre_tokenizer("qwen2", "x"), BpePreTokenizer::Qwen2);
        QCOMPARE(parse_gguf_pre_tokenizer("default", "x"), BpePreTokenizer::Gpt2);
    }

    void malformedTokenizerJson() {
        const Trained t = train("some text for a tiny vocabulary", BpePreTokenizer::Gpt2, 5);
        const json good = tokenizer_json(t, pre_tokenizer_json(BpePreTokenizer::Gpt2));
        auto bad = [&](const std::string& name, const std::function<void(json&)>& edit,
                       std::initializer_list<std::string> parts) {
            json j = good;
            edit(j);
            const std::string path = write_json(name, j);
            expect_error([&] { load_hf_tokenizer_json(path); }, parts);
        };
        const std::string missing = tmp("nowhere/tokenizer.json");
        expect_error([&] { load_hf_tokenizer_json(missing); }, {missing, "cannot open"});
        const std::string broken = tmp("broken.json");
        write_file(broken, good.dump().substr(0, 200));
        expect_error([&] { load_hf_tokenizer_json(broken); }, {broken, "invalid JSON"});
        bad("unigram", [](json& j) { j["model"]["type"] = "Unigram"; }, {"Unigram", "only byte-level BPE"});
        bad("nomodel", [](json& j) { j.erase("model"); }, {"no \"model\""});
        bad("nfc", [](json& j) { j["normalizer"] = {{"type", "NFC"}}; }, {"normalizer NFC"});
        bad("metaspace",
            [](json& j) {
                j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}};
            },
            {"SentencePiece-style"});
        bad("nopre",
            [](json& j) {
                j["pre_tokenizer"] = nullptr;
                j["model"]["byte_fallback"] = true;
            },
            {"tokenizer.model"});
        bad("regex",
            [](json& j) {
                j["pre_tokenizer"] = {{"type", "Sequence"},
                                      {"pretokenizers",
                                       {{{"type", "Split"},
                                         {"pattern", {{"Regex", "\\w+"}}},
                                         {"behavior", "Isolated"},
                                         {"invert", false}},
                                        byte_level(false)}}};
            },
            {"Split regex \\w+"});
        bad("merge", [](json& j) { j["model"]["merges"].push_back("zz qq"); }, {"merge 5", "not in the vocabulary"});
        bad("mergefmt", [](json& j) { j["model"]["merges"][0] = "abc"; }, {"merge 0"});
        bad("vocabtype", [](json& j) { j["model"]["vocab"] = json::array({1, 2}); }, {"model.vocab"});
        bad("dupid", [](json& j) { j["model"]["vocab"]["zzz"] = 3; }, {"id 3 is given to two tokens"});
        bad("idtype", [](json& j) { j["model"]["vocab"]["zzz"] = "seven"; }, {"unexpected tokenizer.json structure"});
        bad("farid", [](json& j) { j["model"]["vocab"]["zzz"] = 2000000000; }, {"id 2000000000, far beyond"});
        bad("farsadded",
            [](json& j) {
                j["added_tokens"] = json::array({{{"id", 1999999999}, {"content", "<x>"}, {"special", true}}});
            },
            {"added token \"<x>\" has id 1999999999"});
        bad("suffix", [](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; }, {"end_of_word_suffix"});
        {  // ids may have gaps (HF allows them): they are never produced and decode to nothing
            json g = good;
            g["model"]["vocab"]["zzz"] = 5000;
            const auto tok = load_hf_tokenizer_json(write_json("gap", g));
            QCOMPARE(tok->vocab_size(), int64_t{5001});
            QCOMPARE(tok->decode({5000, 4000, 'a'}), std::string("zzza"));
        }
        // a vocabulary without some byte and without <unk>: encoding that byte is a clear error, not a silent drop
        json j = good;
        j["model"]["vocab"].erase(byte_to_unicode('~'));
        j["model"]["vocab"]["~~~"] = 126;
        const std::string path = write_json("nobyte", j);
        const auto tok = load_hf_tokenizer_json(path);
        expect_error([&] { tok->encode("a~b", false); }, {path, "byte 0x7E"});
    }
};

QTEST_APPLESS_MAIN(TestTokenizerBpe)
#include "test_tokenizer_bpe.moc"
