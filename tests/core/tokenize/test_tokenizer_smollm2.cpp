// The byte-level BPE tokenizer on a real vocabulary: SmolLM2-135M-Instruct's GGUF (49,152 tokens, 48,900 merges,
// `tokenizer.ggml.pre = smollm`), fetched by packaging/fetch-smollm2.sh. The token counts below were measured with
// HF tokenizers 0.23.3 on a tokenizer.json built from this GGUF's tokens and merges with SmolLM's pre-tokenizer
// (Digits(individual_digits) + ByteLevel) and its 17 control tokens as special added tokens; our ids were equal to
// HF's token for token on both files when this test was written.
// cloq-test-labels: slow
#include <QtTest/QtTest>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cloq/base/error.h"
#include "io/gguf.h"
#include "test_support.h"
#include "tokenize/tokenizer_bpe.h"

using namespace cloq;

namespace {

using cloq::test::smollm2_path;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

class TestTokenizerSmolLM2 : public QObject {
    Q_OBJECT
    std::shared_ptr<Tokenizer> tok_;

private Q_SLOTS:
    void initTestCase() {
        const std::string path = smollm2_path();
        if (!std::ifstream(path))
            QFAIL(qPrintable(QString("%1 is missing: run packaging/fetch-smollm2.sh (or set CLOQ_SMOLLM2_GGUF)")
                                 .arg(QString::fromStdString(path))));
        const auto gguf = GgufFile::open(path);
        QCOMPARE(gguf->get_string("tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(gguf->get_string("tokenizer.ggml.pre"), std::string("smollm"));
        const auto& tokens = gguf->get_array("tokenizer.ggml.tokens", GgufValueType::String).string_array();
        const auto& merges = gguf->get_array("tokenizer.ggml.merges", GgufValueType::String).string_array();
        std::vector<int32_t> types;
        for (int64_t t : gguf->get_array("tokenizer.ggml.token_type", GgufValueType::Int32).int_array())
            types.push_back(static_cast<int32_t>(t));
        tok_ = make_gguf_bpe_tokenizer(tokens, merges, types,
                                       static_cast<int32_t>(gguf->get_int("tokenizer.ggml.bos_token_id")),
                                       static_cast<int32_t>(gguf->get_int("tokenizer.ggml.eos_token_id")),
                                       gguf->get_string("tokenizer.ggml.pre"), path);
        QCOMPARE(tok_->vocab_size(), int64_t{49152});
        QCOMPARE(tok_->bos_id(), 1);  // <|im_start|>
        QCOMPARE(tok_->eos_id(), 2);  // <|im_end|>
    }

    void sharedTextCountsAndRoundTrip_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<int>("count");
        QTest::newRow("tinystories") << QString::fromStdString(cloq::test::tinystories_path()) << 193745;
        QTest::newRow("wikitext") << QString::fromStdString(cloq::test::wikitext_path()) << 304978;
    }
    void sharedTextCountsAndRoundTrip() {
        QFETCH(QString, text);
        QFETCH(int, count);
        const std::string content = read_file(text.toStdString());
        const auto t0 = std::chrono::steady_clock::now();
        const auto ids = tok_->encode(content, false);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("%zu tokens in %.2f s", ids.size(), seconds);
        QCOMPARE(static_cast<int>(ids.size()), count);
        QVERIFY(tok_->decode(ids) == content);
        const auto with_bos = tok_->encode(content.substr(0, 1000), true);
        QCOMPARE(with_bos.front(), 1);
    }

    void chatTemplateSpecialTokens() {
        const std::string chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
        const auto ids = tok_->encode(chat, false);
        QCOMPARE(ids.front(), 1);
        QCOMPARE(std::count(ids.begin(), ids.end(), 1), 2L);
        QCOMPARE(std::count(ids.begin(), ids.end(), 2), 1L);
        // digits are single tokens (SmolLM's Digits pre-tokenizer)
        const auto two = tok_->encode("2", false);
        QCOMPARE(two.size(), size_t{1});
        QCOMPARE(std::count(ids.begin(), ids.end(), two[0]), 2L);
        // special tokens are dropped by decode, everything else comes back
        QCOMPARE(tok_->decode(ids), std::string("user\nWhat is 2+2?\nassistant\n"));
    }
};

QTEST_APPLESS_MAIN(TestTokenizerSmolLM2)
#include "test_tokenizer_smollm2.moc"
