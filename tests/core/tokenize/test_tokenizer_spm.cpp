// SentencePiece tokenizer: the numbers in the shared SOURCE.md files, exact id equality with libsentencepiece
// (run as a separate process, tests/tools/spm_reference, since it cannot share a process with LibTorch) on real
// text, edge cases, flag variants, trained Unigram/NFKC models and handcrafted vocabularies, decoding, hand-derived
// BPE/Viterbi segmentations, and hostile model files.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include "cloq/base/error.h"
#include "test_support.h"
#include "tokenize/tokenizer_spm.h"

using namespace cloq;
using cloq::test::shared_path;

namespace {

const std::string kTok512 = shared_path("models/stories260K/tokenizer.model");
const std::string kLlama2 = shared_path("tokenizers/llama2/tokenizer.model");
const std::string kReference = std::string(CLOQ_BINARY_DIR) + "/tests/tools/spm_reference";
const std::string kSpace = "\xE2\x96\x81";

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

std::vector<std::string> lines_of(const std::string& text, std::size_t first, std::size_t count) {
    std::vector<std::string> out;
    std::istringstream in(text);
    std::string line;
    for (std::size_t i = 0; std::getline(in, line) && i < first + count; ++i)
        if (i >= first) out.push_back(line);
    return out;
}

std::string to_hex(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string ids_line(const std::vector<int32_t>& ids) {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
    return out;
}

// Runs the libsentencepiece oracle; returns its stdout lines.
std::vector<std::string> run_reference(const QStringList& args, const std::string& input = {}) {
    QProcess p;
    p.start(QString::fromStdString(kReference), args);
    if (!p.waitForStarted(30000)) {
        qWarning("cannot start %s (build the spm_reference target)", kReference.c_str());
        return {"<reference did not start>"};
    }
    if (!input.empty()) p.write(input.data(), static_cast<qint64>(input.size()));
    p.closeWriteChannel();
    p.waitForFinished(300000);
    if (p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0) {
        qWarning("spm_reference failed: %s", p.readAllStandardError().constData());
        return {"<reference failed>"};
    }
    std::vector<std::string> out;
    std::istringstream in(p.readAllStandardOutput().toStdString());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// Encodes each text with both implementations (no BOS, as libsentencepiece's Encode) and compares line by line.
void expect_same_ids(const std::string& model_path, const Tokenizer& ours, const std::vector<std::string>& texts) {
    std::string input;
    for (const auto& t : texts) input += to_hex(t) + "\n";
    const auto ref = run_reference({"encode-stdin", QString::fromStdString(model_path)}, input);
    QCOMPARE(ref.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::string got = ids_line(ours.encode(texts[i], false));
        if (got != ref[i])
            QFAIL(qPrintable(QString("text %1 (%2) of %3:\n  ours: %4\n  libsentencepiece: %5")
                                 .arg(i)
                                 .arg(QString::fromStdString(to_hex(texts[i].substr(0, 80))))
                                 .arg(QString::fromStdString(model_path))
                                 .arg(QString::fromStdString(got))
                                 .arg(QString::fromStdString(ref[i]))));
    }
}

// Strings that exercise the normalizer and the fallbacks.
std::vector<std::string> edge_texts() {
    return {
        "",
        " ",
        "   ",
        "\t",
        "\n",
        "\n\n",
        " a",
        "a ",
        "  a  b   c  ",
        "a\tb\n c",
        "hello world",
        "Hello, World! It's 2024-01-01 and 3.14159 costs $5.",
        "don't  stop\r\nnow",
        std::string("nul\0byte", 8),
        "\xFF\xFE invalid \xC3 utf8 \xE2\x82",
        "\xEF\xBF\xBD literal replacement",
        "caf\xC3\xA9 na\xC3\xAFve",
        "e\xCC\x81 combining",
        "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",
        "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D emoji",
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",
        "\xEF\xBC\xA1\xEF\xBC\xA2 fullwidth",
        "\xEF\xAC\x81 ligature \xE2\x91\xA0 \xE2\x85\xAB",
        "<s> </s> <unk> <0x41>",
        "\xE2\x96\x81 already escaped",
        std::string(300, 'a'),
        std::string(64, ' ') + "x",
        "ab" + std::string(50, ' ') + "cd",
        "the the the the the the",
        "\xC2\xA0nbsp\xE2\x80\x83"
        "em space",
        "zero\xE2\x80\x8Bwidth",
    };
}

// A protobuf writer for the few ModelProto fields our tests vary: lets a test hand both implementations the same
// modified or handcrafted model, and build hostile files byte by byte.
struct Proto {
    std::string out;
    Proto& varint(uint64_t v) {
        do {
            out += static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
            v >>= 7;
        } while (v);
        return *this;
    }
    Proto& key(int field, int wire) { return varint(static_cast<uint64_t>(field) << 3 | wire); }
    Proto& bytes(int field, std::string_view b) {
        key(field, 2).varint(b.size());
        out.append(b);
        return *this;
    }
    Proto& num(int field, int64_t v) { return key(field, 0).varint(static_cast<uint64_t>(v)); }
    Proto& f32(int field, float f) {
        key(field, 5);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; ++i) out += static_cast<char>(bits >> (8 * i));
        return *this;
    }
};

std::string serialize(const SpmModelSpec& s) {
    Proto m;
    for (std::size_t i = 0; i < s.pieces.size(); ++i) {
        Proto p;
        p.bytes(1, s.pieces[i]).f32(2, s.scores[i]).num(3, static_cast<int>(s.types[i]));
        m.bytes(1, p.out);
    }
    int unk = 0;
    for (std::size_t i = 0; i < s.types.size(); ++i)
        if (s.types[i] == SpmPieceType::Unknown) unk = static_cast<int>(i);
    Proto t;
    t.num(3, s.algorithm == SpmAlgorithm::Bpe ? 2 : 1)
        .num(35, s.byte_fallback)
        .num(40, unk)
        .num(41, s.bos_id)
        .num(42, s.eos_id);
    m.bytes(2, t.out);
    Proto n;
    n.bytes(1, s.precompiled_charsmap.empty() ? "identity" : "custom");
    if (!s.precompiled_charsmap.empty()) n.bytes(2, s.precompiled_charsmap);
    n.num(3, s.add_dummy_prefix).num(4, s.remove_extra_whitespaces).num(5, s.escape_whitespaces);
    m.bytes(3, n.out);
    return m.out;
}

// SOURCE.md: tok512 drops leading/trailing spaces and collapses runs of spaces; nothing else changes.
std::string collapse_spaces(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
        out += c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// Expects `fn` to throw cloq::Error whose message contains every one of `parts`.
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

std::shared_ptr<SentencePieceTokenizer> load_spm(const std::string& path) {
    return std::dynamic_pointer_cast<SentencePieceTokenizer>(load_sentencepiece(path));
}

}  // namespace

class TestTokenizerSpm : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string tmp(const std::string& name) const { return tmp_.filePath(QString::fromStdString(name)).toStdString(); }

private Q_SLOTS:
    void storiesPromptIds() {
        const auto tok = load_sentencepiece(kTok512);
        QCOMPARE(tok->encode("Once upon a time", true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
        QCOMPARE(tok->decode({1, 403, 407, 261, 378}), std::string("Once upon a time"));
        QCOMPARE(tok->vocab_size(), int64_t{512});
        QCOMPARE(tok->bos_id(), 1);
        QCOMPARE(tok->eos_id(), 2);
        QVERIFY(tok->kind().find("BPE (512 pieces") != std::string::npos);
        // SOURCE.md's greedy continuation decodes to the documented story.
        const std::vector<int32_t> story = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                            426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295,
                                            433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426};
        QCOMPARE(tok->decode(story), std::string("Once upon a time, there was a little girl named Lily. She loved to "
                                                 "play outside in the park. One day, she saw a big, red ball."));
    }

    // Whole files, as SOURCE.md tokenizes them (one string, BOS first): counts, round trips and speed.
    void wholeFileCountsAndRoundTrip_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("count");
        QTest::addColumn<bool>("exact");
        QTest::newRow("tok512 tinystories")
            << QString::fromStdString(kTok512) << QString::fromStdString(cloq::test::tinystories_path()) << 393013
            << false;
        QTest::newRow("tok512 wikitext") << QString::fromStdString(kTok512)
                                         << QString::fromStdString(cloq::test::wikitext_path()) << 815066 << false;
        QTest::newRow("llama2 tinystories") << QString::fromStdString(kLlama2)
                                            << QString::fromStdString(cloq::test::tinystories_path()) << 212398 << true;
        QTest::newRow("llama2 wikitext") << QString::fromStdString(kLlama2)
                                         << QString::fromStdString(cloq::test::wikitext_path()) << 341469 << true;
    }
    void wholeFileCountsAndRoundTrip() {
        QFETCH(QString, model);
        QFETCH(QString, text);
        QFETCH(int, count);
        QFETCH(bool, exact);
        const auto tok = load_sentencepiece(model.toStdString());
        const std::string content = read_file(text.toStdString());
        QVERIFY(content.size() > 500000);
        const auto t0 = std::chrono::steady_clock::now();
        const auto ids = tok->encode(content, true);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("%s: %zu tokens in %.2f s (%.1f MB/s)", qPrintable(QTest::currentDataTag()), ids.size(), seconds,
              content.size() / seconds / 1e6);
        QCOMPARE(static_cast<int>(ids.size()), count);
        QCOMPARE(ids.front(), 1);
        const std::string back = tok->decode(ids);
        QVERIFY(back == (exact ? content : collapse_spaces(content)));
    }

    void matchesLibsentencepieceLineByLine_data() {
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("text");
        for (const auto& [mname, m] : {std::pair{"tok512", kTok512}, std::pair{"llama2", kLlama2}})
            for (const auto& [tname, t] : {std::pair{"tinystories", cloq::test::tinystories_path()},
                                           std::pair{"wikitext", cloq::test::wikitext_path()}})
                QTest::newRow(qPrintable(QString("%1 %2").arg(mname).arg(tname)))
                    << QString::fromStdString(m) << QString::fromStdString(t);
    }
    void matchesLibsentencepieceLineByLine() {
        QFETCH(QString, model);
        QFETCH(QString, text);
        const auto tok = load_sentencepiece(model.toStdString());
        const std::string content = read_file(text.toStdString());
        const auto lines = lines_of(content, 0, 3000);
        const auto ref = run_reference({"encode-lines", model, text, "0", "3000"});
        QCOMPARE(ref.size(), lines.size());
        int nonempty = 0;
        for (std::size_t i = 0; i < lines.size(); ++i) {
            const std::string got = ids_line(tok->encode(lines[i], false));
            nonempty += !got.empty();
            if (got != ref[i])
                QFAIL(qPrintable(QString("line %1 \"%2\":\n  ours: %3\n  libsentencepiece: %4")
                                     .arg(i)
                                     .arg(QString::fromStdString(lines[i]))
                                     .arg(QString::fromStdString(got))
                                     .arg(QString::fromStdString(ref[i]))));
        }
        QVERIFY(nonempty > 600);  // wikitext: most lines are blank
        // Multi-line chunks (newlines, blank lines, byte fallback across lines) and edge cases.
        auto texts = edge_texts();
        texts.push_back(content.substr(0, 40000));
        texts.push_back(content.substr(content.size() / 2, 40000));
        expect_same_ids(model.toStdString(), *tok, texts);
    }

    void decodeMatchesLibsentencepiece_data() {
        QTest::addColumn<QString>("model");
        QTest::newRow("tok512") << QString::fromStdString(kTok512);
        QTest::newRow("llama2") << QString::fromStdString(kLlama2);
    }
    void decodeMatchesLibsentencepiece() {
        QFETCH(QString, model);
        const auto tok = load_spm(model.toStdString());
        const int32_t space = tok->piece_to_id(kSpace);
        const int32_t a = tok->piece_to_id(kSpace + "a");
        const int32_t byte_c3 = tok->piece_to_id("<0xC3>"), byte_a9 = tok->piece_to_id("<0xA9>");
        const int32_t byte_0a = tok->piece_to_id("<0x0A>"), byte_20 = tok->piece_to_id("<0x20>");
        QVERIFY(space != tok->unk_id() && a != tok->unk_id() && byte_c3 != tok->unk_id());
        std::vector<std::vector<int32_t>> seqs = {
            {},
            {1},
            {1, 2},
            {0},
            {0, 0},
            {a},
            {1, a},
            {space},
            {space, a},
            {space, space, a},
            {1, space, a},
            {byte_c3, byte_a9},
            {byte_c3},
            {byte_a9, a},
            {byte_c3, a, byte_a9},
            {byte_0a, a},
            {byte_20, a},
            {a, 2, a},
            {0, a},
            {byte_c3, byte_c3, byte_a9},
        };
        std::mt19937 rng(12345);
        std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(tok->vocab_size()) - 1);
        std::uniform_int_distribution<int> len(1, 30);
        for (int k = 0; k < 300; ++k) {
            std::vector<int32_t> s(len(rng));
            for (auto& id : s) id = any(rng);
            seqs.push_back(s);
        }
        std::string input;
        for (const auto& s : seqs) input += ids_line(s) + "\n";
        const auto ref = run_reference({"decode", model}, input);
        QCOMPARE(ref.size(), seqs.size());
        for (std::size_t i = 0; i < seqs.size(); ++i)
            QCOMPARE(QString::fromStdString(to_hex(tok->decode(seqs[i]))), QString::fromStdString(ref[i]));
        expect_error(
            [&] {
                tok->decode({5, static_cast<int32_t>(tok->vocab_size())});
            },
            {model.toStdString(), "token id"});
        expect_error([&] { tok->decode({-1}); }, {"token id -1"});
    }

    // The same vocabularies with other normalizer flags and algorithms, and with unused / user-defined pieces,
    // written as .model files that both implementations load.
    void modelVariantsMatchLibsentencepiece_data() {
        QTest::addColumn<QString>("variant");
        for (const char* v :
             {"llama2 no-dummy-prefix", "llama2 remove-extra-ws", "llama2 no-escape", "llama2 unigram",
              "tok512 keep-ws no-dummy", "tok512 unigram", "tok512 unused+user", "tok512 unigram unused+user",
              "tok512 no-byte-fallback", "tok512 unigram no-byte-fallback"})
            QTest::newRow(v) << v;
    }
    void modelVariantsMatchLibsentencepiece() {
        QFETCH(QString, variant);
        const std::string v = variant.toStdString();
        const bool llama = v.rfind("llama2", 0) == 0;
        const std::string base = llama ? kLlama2 : kTok512;
        SpmModelSpec s = parse_sentencepiece_model(read_file(base), base);
        if (v.find("no-dummy") != std::string::npos) s.add_dummy_prefix = false;
        if (v.find("remove-extra-ws") != std::string::npos) s.remove_extra_whitespaces = true;
        if (v.find("keep-ws") != std::string::npos) s.remove_extra_whitespaces = false;
        if (v.find("no-escape") != std::string::npos) s.escape_whitespaces = false;
        if (v.find("unigram") != std::string::npos) s.algorithm = SpmAlgorithm::Unigram;
        if (v.find("no-byte-fallback") != std::string::npos) {
            s.byte_fallback = false;
            for (auto& t : s.types)
                if (t == SpmPieceType::Byte) t = SpmPieceType::Control;
        }
        if (v.find("unused+user") != std::string::npos) {
            // Unused pieces are formed while merging but split again on output; user-defined ones stay whole.
            int unused = 0;
            for (std::size_t i = 0; i < s.pieces.size() && unused < 40; ++i)
                if (s.types[i] == SpmPieceType::Normal && s.pieces[i].size() >= 3 && i % 3 == 0) {
                    s.types[i] = SpmPieceType::Unused;
                    ++unused;
                }
            for (const std::string& u : std::vector<std::string>{"Lily", "<sep>", "ing", kSpace + "the", "!!"}) {
                bool exists = false;
                for (std::size_t i = 0; i < s.pieces.size(); ++i)
                    if (s.pieces[i] == u) {
                        s.types[i] = SpmPieceType::UserDefined;
                        exists = true;
                    }
                if (!exists) {
                    s.pieces.push_back(u);
                    s.scores.push_back(0);
                    s.types.push_back(SpmPieceType::UserDefined);
                }
            }
        }
        const std::string path = tmp(variant.toStdString() + ".model");
        write_file(path, serialize(s));
        const auto tok = load_sentencepiece(path);
        auto texts = edge_texts();
        for (const auto& file : {cloq::test::tinystories_path(), cloq::test::wikitext_path()})
            for (const auto& l : lines_of(read_file(file), 0, 250)) texts.push_back(l);
        texts.push_back("Lily said <sep> hello!!! Lilypad singing the theme");
        expect_same_ids(path, *tok, texts);
    }

    // Models trained by libsentencepiece itself: Unigram, NFKC normalization (precompiled charsmap), user-defined
    // symbols, byte fallback in a Unigram model.
    void trainedModelsMatchLibsentencepiece_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("options");
        QTest::newRow("unigram nfkc") << "uni_nfkc"
                                      << "--model_type=unigram --vocab_size=400";
        QTest::newRow("bpe nfkc user-defined")
            << "bpe_nfkc"
            << "--model_type=bpe --vocab_size=400 --user_defined_symbols=Lily,<sep> --add_dummy_prefix=false";
        QTest::newRow("unigram nfkc_cf byte-fallback")
            << "uni_cf"
            << "--model_type=unigram --vocab_size=450 --normalization_rule_name=nmt_nfkc_cf --byte_fallback=true "
               "--split_digits=true --user_defined_symbols=<sep>";
        QTest::newRow("unigram identity keep-ws")
            << "uni_id"
            << "--model_type=unigram --vocab_size=400 --normalization_rule_name=identity "
               "--remove_extra_whitespaces=false";
    }
    void trainedModelsMatchLibsentencepiece() {
        QFETCH(QString, name);
        QFETCH(QString, options);
        const std::string corpus = tmp("corpus.txt");
        const auto story_lines = lines_of(read_file(cloq::test::tinystories_path()), 0, 1500);
        {
            std::string c;
            for (const auto& l : story_lines) c += l + "\n";
            c += "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3 \xEF\xAC\x81 \xE2\x91\xA0 caf\xC3\xA9 2024\n";
            write_file(corpus, c);
        }
        QStringList args = {"train",
                            QString("--input=%1").arg(QString::fromStdString(corpus)),
                            QString("--model_prefix=%1").arg(QString::fromStdString(tmp(name.toStdString()))),
                            "--num_threads=2",
                            "--minloglevel=2",
                            "--hard_vocab_limit=false"};
        args += options.split(' ');
        QCOMPARE(run_reference(args).size(), size_t{0});
        const std::string path = tmp(name.toStdString() + ".model");
        const auto tok = load_spm(path);
        QVERIFY(!tok->spec().precompiled_charsmap.empty() || options.contains("identity"));
        auto texts = edge_texts();
        for (const auto& l : lines_of(read_file(cloq::test::wikitext_path()), 0, 600)) texts.push_back(l);
        texts.push_back("Ｈｅｌｌｏ　ｗｏｒｌｄ ｶﾀｶﾅ ＬＩＬＹ Lily<sep>LILY ①②③ ㍿ ﬃ Ⅻ x²");
        texts.push_back("\t tabs\tand\nnewlines \r\n and   spaces   ");
        expect_same_ids(path, *tok, texts);
        // decode also agrees (byte pieces, unk surface, user-defined symbols)
        std::string input;
        std::vector<std::vector<int32_t>> seqs;
        for (std::size_t i = 0; i < 40; ++i) seqs.push_back(tok->encode(texts[i], i % 2 == 0));
        for (const auto& s : seqs) input += ids_line(s) + "\n";
        const auto ref = run_reference({"decode", QString::fromStdString(path)}, input);
        QCOMPARE(ref.size(), seqs.size());
        for (std::size_t i = 0; i < seqs.size(); ++i)
            QCOMPARE(QString::fromStdString(to_hex(tok->decode(seqs[i]))), QString::fromStdString(ref[i]));
    }

    // The GGUF path: a tokenizer built from raw vectors is the same tokenizer.
    void rawSpecConstructorMatchesFile() {
        SpmModelSpec s = parse_sentencepiece_model(read_file(kLlama2), kLlama2);
        QCOMPARE(s.pieces.size(), size_t{32000});
        QVERIFY(s.byte_fallback && s.add_dummy_prefix && !s.remove_extra_whitespaces &&
                s.algorithm == SpmAlgorithm::Bpe);
        const SentencePieceTokenizer from_vectors(s, "GGUF file x.gguf");
        const auto from_file = load_sentencepiece(kLlama2);
        for (const auto& line : lines_of(read_file(cloq::test::wikitext_path()), 0, 400))
            QCOMPARE(from_vectors.encode(line, true), from_file->encode(line, true));
        QCOMPARE(from_vectors.kind(), from_file->kind());
        // and through the GGUF helper, with its defaults (llama2: dummy prefix, no whitespace removal)
        std::vector<int32_t> types;
        for (auto t : s.types) types.push_back(static_cast<int32_t>(t));
        const auto gguf = make_gguf_spm_tokenizer(s.pieces, s.scores, types, 1, 2, 0, true, false, "x.gguf");
        const auto tiny = load_sentencepiece(kTok512);
        const SpmModelSpec t = parse_sentencepiece_model(read_file(kTok512), kTok512);
        std::vector<int32_t> tiny_types;
        for (auto x : t.types) tiny_types.push_back(static_cast<int32_t>(x));
        tiny_types[0] = 1;  // an old GGUF without the unknown type: unknown_token_id 0 stands in
        const auto tiny_gguf =
            make_gguf_spm_tokenizer(t.pieces, t.scores, tiny_types, 1, 2, 0, true, true, "tok512.gguf");
        for (const auto& line : lines_of(read_file(cloq::test::tinystories_path()), 0, 200)) {
            QCOMPARE(gguf->encode(line, true), from_file->encode(line, true));
            QCOMPARE(tiny_gguf->encode(line, true), tiny->encode(line, true));
        }
        QCOMPARE(tiny_gguf->decode({1, 403, 407, 261, 378}), std::string("Once upon a time"));
        expect_error(
            [&] {
                make_gguf_spm_tokenizer({"a", "b"}, {0.f}, {}, 1, 2, 0, true, false, "y.gguf");
            },
            {"y.gguf", "scores"});
        expect_error(
            [&] {
                make_gguf_spm_tokenizer({"a", "b"}, {}, {2, 9}, -1, -1, 0, true, false, "y.gguf");
            },
            {"y.gguf", "type 9"});
    }

    // Hand-derived segmentations on tiny vocabularies: the BPE rule (highest-scoring pair first, leftmost on ties,
    // merged pieces re-paired with their neighbours) and Viterbi (best total log probability, unknown penalty).
    void handDerivedSegmentations() {
        auto make = [](SpmAlgorithm alg, std::vector<std::pair<std::string, float>> normal) {
            SpmModelSpec s;
            s.algorithm = alg;
            s.pieces = {"<unk>", "<s>", "</s>"};
            s.scores = {0, 0, 0};
            s.types = {SpmPieceType::Unknown, SpmPieceType::Control, SpmPieceType::Control};
            for (auto& [p, sc] : normal) {
                s.pieces.push_back(p);
                s.scores.push_back(sc);
                s.types.push_back(SpmPieceType::Normal);
            }
            return SentencePieceTokenizer(s, "handmade");
        };
        const std::string S = kSpace;
        {  // ids: ▁=3 a=4 b=5 c=6 ab=7 bc=8 ▁a=9 aa=10
            const auto t =
                make(SpmAlgorithm::Bpe,
                     {{S, -5}, {"a", -5}, {"b", -5}, {"c", -5}, {"ab", -1}, {"bc", -0.5f}, {S + "a", -2}, {"aa", -3}});
            // ▁ a b c: bc (-0.5) beats ab (-1) and ▁a (-2); then only ▁a remains possible.
            QCOMPARE(t.encode("abc", false), (std::vector<int32_t>{9, 8}));
            // ▁ a b: ab (-1) beats ▁a (-2); "▁ab" is no piece.
            QCOMPARE(t.encode("ab", true), (std::vector<int32_t>{1, 3, 7}));
            // ▁ a a a: ▁a (-2) beats aa (-3), then the remaining a a merge.
            QCOMPARE(t.encode("aaa", false), (std::vector<int32_t>{9, 10}));
            // unknown 'x' -> <unk>; a run of unknowns is one <unk>
            QCOMPARE(t.encode("xxab", false), (std::vector<int32_t>{3, 0, 7}));
            QCOMPARE(t.decode({9, 8, 0, 7}), std::string("abc \xE2\x81\x87 ab"));
        }
        {  // ties: all pairs "aa" score equally, leftmost wins: ▁ [aa] [aa] a
            const auto t = make(SpmAlgorithm::Bpe, {{S, -1}, {"a", -1}, {"aa", -1}});
            QCOMPARE(t.encode("aaaaa", false), (std::vector<int32_t>{3, 5, 5, 4}));
        }
        {  // Viterbi: ▁a + b = -1 + -1.5 = -2.5 beats ▁ab = -3 and ▁ + a + b; 'x' costs min_score - 10 = -15
            const auto t =
                make(SpmAlgorithm::Unigram, {{S, -5}, {"a", -2}, {"b", -1.5f}, {S + "a", -1}, {S + "ab", -3}});
            QCOMPARE(t.encode("ab", false), (std::vector<int32_t>{6, 5}));
            QCOMPARE(t.encode("ab x", false), (std::vector<int32_t>{6, 5, 3, 0}));
        }
        {  // normalization
            auto t = make(SpmAlgorithm::Bpe, {{S, -1}});
            QCOMPARE(t.normalize("  a  b  "), S + "a" + S + "b");
            QCOMPARE(t.normalize("   "), std::string());
            QCOMPARE(t.normalize("a\xFF"), S + "a\xEF\xBF\xBD");
        }
    }

    void hostileModelFiles() {
        const std::string good = read_file(kTok512);
        auto load_bytes = [&](const std::string& name, const std::string& bytes) {
            const std::string path = tmp(name);
            write_file(path, bytes);
            return path;
        };
        const std::string missing = tmp("missing.model");
        expect_error([&] { load_sentencepiece(missing); }, {missing, "cannot open"});
        const std::string empty = load_bytes("empty.model", "");
        expect_error([&] { load_sentencepiece(empty); }, {empty, "empty"});
        const std::string text = load_bytes("text.model", "{\"model\": {\"type\": \"BPE\"}}\n");
        expect_error([&] { load_sentencepiece(text); }, {text});
        // Every truncation of a real model either fails with an error naming the file or (when it ends on a field
        // boundary) yields a tokenizer that works; none may crash or read past the buffer.
        int errors = 0;
        const std::string cut_path = tmp("cut.model");
        for (std::size_t n = 1; n < good.size(); n += (n < 300 ? 1 : 7)) {
            write_file(cut_path, good.substr(0, n));
            try {
                const auto tok = load_sentencepiece(cut_path);
                tok->decode(tok->encode("Once upon a time", true));
            } catch (const Error& e) {
                QVERIFY(std::string(e.what()).find(cut_path) != std::string::npos);
                ++errors;
            }
        }
        QVERIFY(errors > 1000);
        // A cut inside the first piece's payload: the length no longer fits.
        const std::string cut = load_bytes("cut10.model", good.substr(0, 10));
        expect_error([&] { load_sentencepiece(cut); }, {cut, "claims", "remain"});
        // Lying lengths and malformed varints.
        const std::string huge = load_bytes("huge.model", std::string("\x0a\xff\xff\xff\xff\x0f", 6) + good);
        expect_error([&] { load_sentencepiece(huge); }, {huge, "claims 4294967295 bytes"});
        const std::string longvar = load_bytes("varint.model", std::string("\x08") + std::string(11, '\x80'));
        expect_error([&] { load_sentencepiece(longvar); }, {longvar, "varint"});
        const std::string group = load_bytes("group.model", std::string("\x0b\x0c", 2) + good);
        expect_error([&] { load_sentencepiece(group); }, {group, "wire type 3"});
        const std::string wrong = load_bytes("wrongtype.model", Proto().num(1, 5).out + good);
        expect_error([&] { load_sentencepiece(wrong); }, {wrong, "wrong wire type"});
        const std::string badtype =
            load_bytes("badtype.model", Proto().bytes(1, Proto().bytes(1, "x").num(3, 9).out).out + good);
        expect_error([&] { load_sentencepiece(badtype); }, {badtype, "unknown piece type 9"});
        const std::string word = load_bytes("word.model", good + Proto().bytes(2, Proto().num(3, 3).out).out);
        expect_error([&] { load_sentencepiece(word); }, {word, "WORD", "not supported"});
        std::mt19937 rng(7);
        for (int k = 0; k < 200; ++k) {
            std::string junk(static_cast<std::size_t>(rng() % 300 + 1), '\0');
            for (auto& c : junk) c = static_cast<char>(rng());
            if (k % 2) junk = good.substr(0, rng() % good.size()) + junk;  // valid start, garbage tail
            const std::string p = load_bytes("junk.model", junk);
            try {
                load_sentencepiece(p)->encode("hello there", true);
            } catch (const Error& e) {
                QVERIFY(std::string(e.what()).find(p) != std::string::npos);
            }
        }
        // Semantic checks on a parsed model.
        const SpmModelSpec base = parse_sentencepiece_model(good, kTok512);
        auto bad = [&](const std::function<void(SpmModelSpec&)>& edit, std::initializer_list<std::string> parts) {
            SpmModelSpec s = base;
            edit(s);
            expect_error([&] { SentencePieceTokenizer t(s, "bad.model"); }, parts);
        };
        bad([](SpmModelSpec& s) { s.pieces[300] = s.pieces[301]; }, {"bad.model", "already defined"});
        bad([](SpmModelSpec& s) { s.pieces[300].clear(); }, {"piece 300 is empty"});
        bad([](SpmModelSpec& s) { s.types[0] = SpmPieceType::Control; }, {"no <unk>"});
        bad([](SpmModelSpec& s) { s.types[5] = SpmPieceType::Unknown; }, {"more than one <unk>"});
        bad([](SpmModelSpec& s) { s.types[3 + 0x41] = SpmPieceType::Normal; }, {"<0x41> is missing"});
        bad([](SpmModelSpec& s) { s.byte_fallback = false; }, {"byte_fallback is off"});
        bad([](SpmModelSpec& s) { s.bos_id = 512; }, {"bos id 512"});
        bad([](SpmModelSpec& s) { s.scores.pop_back(); }, {"512 pieces but 511 scores"});
        bad([](SpmModelSpec& s) { s.scores[9] = std::nanf(""); }, {"NaN"});
        bad([](SpmModelSpec& s) { s.precompiled_charsmap = std::string("\xff\xff\x00\x00zz", 6); },
            {"precompiled_charsmap"});
        {  // A corrupt charsmap trie never reads outside the blob: lookups stop at its bounds.
            SpmModelSpec s = base;
            s.precompiled_charsmap =
                std::string("\x08\x00\x00\x00", 4) + std::string("\xff\xff\xff\xff\x41\x03\x00\x00", 8) + "x";
            const SentencePieceTokenizer t(s, "trie.model");
            QVERIFY(!t.encode("any text at all \xF0\x9F\x98\x80", true).empty());
        }
    }
};

QTEST_APPLESS_MAIN(TestTokenizerSpm)
#include "test_tokenizer_spm.moc"
