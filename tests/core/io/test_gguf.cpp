// GGUF reader: files written by the test's own writer (every tensor type, odd alignments, metadata of every type
// including nested arrays) are read back exactly; hostile files (bad magic, versions, out-of-bounds and overlapping
// tensors, overflowing counts, strings longer than the file, unknown types, truncation, random corruption) each
// give a cloq::Error naming the file; the HF view (names, q/k RoPE permutation, ModelConfig) is checked against a
// permutation written here from convert_hf_to_gguf.py.
#include <QtTest/QtTest>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"
#include "export/gguf_hf_export.h"
#include "io/gguf.h"
#include "model/gguf_model.h"
#include "test_gguf_writer.h"
#include "test_support.h"
#include "tokenize/gguf_tokenizer.h"
#include "tokenize/tokenizer_spm.h"

using namespace cloq;
using namespace cloq::test;

namespace {

const std::string kName = "hostile.gguf";

std::string error_of(const std::string& bytes) {
    try {
        GgufFile::from_bytes(bytes, kName);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A small valid file: two tensors, a few keys. Used as the base for the hostile cases.
GgufWriter small_writer() {
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("llama.block_count", 1);
    std::mt19937 rng(1);
    w.tensor("a", {32, 2}, tQ8_0, encode(tQ8_0, 64, rng).bytes);
    w.tensor("b", {4}, tF32, encode(tF32, 4, rng).bytes);
    return w;
}

// Offsets of fields in small_writer()'s header, found by building it piece by piece.
size_t offset_after_kvs(const GgufWriter&) {
    // magic 4 + version 4 + counts 16 + kv1 (8+20 key "general.architecture", 4 type, 8+5 "llama")
    // + kv2 (8+17 "llama.block_count", 4, 4)
    return 24 + (8 + 20 + 4 + 8 + 5) + (8 + 17 + 4 + 4);
}

struct TinyLlama {
    std::map<std::string, torch::Tensor> hf;  // HF name -> weight
    std::string bytes;
};

// A 2-block Llama (hidden 64, 4 heads, 2 kv heads, ffn 96, vocab 40) with random weights, written as GGUF the way
// convert_hf_to_gguf.py does: q/k rows permuted, F32/F16/Q8_0 mixed, optionally untied.
TinyLlama tiny_llama(bool tied, bool poison = false) {
    TinyLlama m;
    const int64_t h = 64, heads = 4, kv = 2, hd = 16, ff = 96, vocab = 40;
    auto gen = at::detail::createCPUGenerator(7);
    auto rnd = [&](std::vector<int64_t> s) { return torch::randn(s, gen); };
    GgufWriter w;
    w.kv_str("general.architecture", "llama");
    w.kv_u32("llama.block_count", 2);
    w.kv_u32("llama.embedding_length", h);
    w.kv_u32("llama.feed_forward_length", ff);
    w.kv_u32("llama.attention.head_count", heads);
    w.kv_u32("llama.attention.head_count_kv", kv);
    w.kv_f32("llama.rope.freq_base", 50000.0f);
    w.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.kv_u32("llama.context_length", 512);
    w.kv_u32("llama.rope.dimension_count", hd);
    w.kv_u32("tokenizer.ggml.bos_token_id", 3);
    w.kv_u32("tokenizer.ggml.eos_token_id", 4);
    auto add = [&](const std::string& gguf, const std::string& hf, torch::Tensor t, int64_t permute_heads = 0) {
        m.hf[hf] = t;
        if (permute_heads) t = hf_to_gguf_permute(t, permute_heads);
        if (poison && gguf == "blk.1.ffn_down.weight") {
            t = t.clone();
            t[0][5] = std::numeric_limits<float>::quiet_NaN();
        }
        w.tensor(gguf, gguf_ne(t), tF32, f32_bytes(t));
    };
    add("token_embd.weight", "model.embed_tokens.weight", rnd({vocab, h}));
    for (int b = 0; b < 2; ++b) {
        const std::string g = "blk." + std::to_string(b) + ".", l = "model.layers." + std::to_string(b) + ".";
        add(g + "attn_norm.weight", l + "input_layernorm.weight", rnd({h}));
        add(g + "attn_q.weight", l + "self_attn.q_proj.weight", rnd({heads * hd, h}), heads);
        add(g + "attn_k.weight", l + "self_attn.k_proj.weight", rnd({kv * hd, h}), kv);
        add(g + "attn_v.weight", l + "self_attn.v_proj.weight", rnd({kv * hd, h}));
        add(g + "attn_output.weight", l + "self_attn.o_proj.weight", rnd({h, heads * hd}));
        add(g + "ffn_norm.weight", l + "post_attention_layernorm.weight", rnd({h}));
        add(g + "ffn_gate.weight", l + "mlp.gate_proj.weight", rnd({ff, h}));
        add(g + "ffn_up.weight", l + "mlp.up_proj.weight", rnd({ff, h}));
        add(g + "ffn_down.weight", l + "mlp.down_proj.weight", rnd({h, ff}));
    }
    add("output_norm.weight", "model.norm.weight", rnd({h}));
    if (!tied) add("output.weight", "lm_head.weight", rnd({vocab, h}));
    m.bytes = w.build();
    return m;
}

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Every supported type, at alignments 1, 8, 32 (default) and 64, in v2 and v3 files.
    void readsEveryType_data() {
        QTest::addColumn<int>("alignment");
        QTest::addColumn<int>("version");
        for (int a : {1, 8, 32, 64})
            for (int v : {2, 3}) QTest::newRow(qPrintable(QString("align %1 v%2").arg(a).arg(v))) << a << v;
    }
    void readsEveryType() {
        QFETCH(int, alignment);
        QFETCH(int, version);
        const std::vector<uint32_t> types = {tF32, tF16, tBF16, tQ4_0, tQ4_1, tQ5_0, tQ5_1, tQ8_0, tQ4_K, tQ6_K};
        std::mt19937 rng(42 + alignment);
        GgufWriter w;
        w.version = version;
        if (alignment != 32) w.set_alignment(alignment);
        std::vector<std::vector<float>> expect;
        std::vector<std::vector<int64_t>> shapes;
        for (uint32_t t : types) {
            const bool k = t == tQ4_K || t == tQ6_K;
            const int64_t row = k ? 512 : (t == tF32 || t == tF16 || t == tBF16) ? 7 : 96;  // odd size for floats
            const int64_t rows = 3;
            Encoded e = encode(t, row * rows, rng);
            w.tensor("t" + std::to_string(t), {static_cast<uint64_t>(row), static_cast<uint64_t>(rows)}, t, e.bytes);
            expect.push_back(e.expect);
            shapes.push_back({rows, row});
        }
        QTemporaryDir dir;
        const std::string path = dir.filePath("types.gguf").toStdString();
        { std::ofstream(path, std::ios::binary) << w.build(); }
        auto f = GgufFile::open(path);
        QCOMPARE(f->version(), static_cast<uint32_t>(version));
        QCOMPARE(f->alignment(), static_cast<uint64_t>(alignment));
        QCOMPARE(f->data_offset() % alignment, uint64_t{0});
        QCOMPARE(f->tensors().size(), types.size());
        for (size_t i = 0; i < types.size(); ++i) {
            const auto& info = f->tensors()[i];
            QCOMPARE(info.type_id, types[i]);
            QCOMPARE(info.offset % alignment, uint64_t{0});
            auto t = f->load_float(info.name);
            QCOMPARE(t.sizes().vec(), shapes[i]);
            QCOMPARE(t.scalar_type(), torch::kFloat32);
            const float* p = t.data_ptr<float>();
            for (size_t j = 0; j < expect[i].size(); ++j) {
                if (p[j] != expect[i][j]) {
                    QFAIL(qPrintable(QString("%1 value %2: got %3, expected %4")
                                         .arg(QString::fromStdString(info.type_name()))
                                         .arg(j)
                                         .arg(p[j], 0, 'g', 9)
                                         .arg(expect[i][j], 0, 'g', 9)));
                }
            }
        }
    }

    void readsMetadataOfEveryType() {
        GgufWriter w;
        std::string p;
        put<uint8_t>(p, 200);
        w.kv_raw("u8", kU8, p);
        p.clear();
        put<int8_t>(p, -100);
        w.kv_raw("i8", kI8, p);
        p.clear();
        put<uint16_t>(p, 60000);
        w.kv_raw("u16", kU16, p);
        p.clear();
        put<int16_t>(p, -30000);
        w.kv_raw("i16", kI16, p);
        p.clear();
        w.kv_u32("u32", 4000000000u);
        w.kv_i32("i32", -2000000000);
        put<uint64_t>(p, 1ull << 62);
        w.kv_raw("u64", kU64, p);
        p.clear();
        put<uint64_t>(p, ~0ull);
        w.kv_raw("u64max", kU64, p);
        p.clear();
        put<int64_t>(p, -(1ll << 60));
        w.kv_raw("i64", kI64, p);
        p.clear();
        w.kv_f32("f32", 0.25f);
        put<double>(p, 1e-300);
        w.kv_raw("f64", kF64, p);
        p.clear();
        w.kv_bool("yes", true);
        w.kv_str("s", std::string("h\xc3\xa9llo\0x", 8));  // UTF-8 and an embedded NUL
        w.kv_str("empty", "");
        w.kv_str_array("strs", {"a", "", "ccc"});
        w.kv_array<int16_t>("i16s", kI16, {-1, 2, -3});
        w.kv_array<float>("f32s", kF32, {0.5f, -2.0f});
        w.kv_array<uint8_t>("bools", kBool, {1, 0, 1});
        w.kv_array<uint32_t>("none", kU32, {});
        // An array of arrays: [[1, 2], ["x"]]
        put<uint32_t>(p, kArr);
        put<uint64_t>(p, 2);
        put<uint32_t>(p, kI32);
        put<uint64_t>(p, 2);
        put<int32_t>(p, 1);
        put<int32_t>(p, 2);
        put<uint32_t>(p, kStr);
        put<uint64_t>(p, 1);
        put_str(p, "x");
        w.kv_raw("nested", kArr, p);
        auto f = GgufFile::from_bytes(w.build(), "meta.gguf");

        QCOMPARE(f->metadata().size(), size_t{20});
        QCOMPARE(f->metadata()[0].first, std::string("u8"));
        QCOMPARE(f->get_int("u8"), int64_t{200});
        QCOMPARE(f->get_int("i8"), int64_t{-100});
        QCOMPARE(f->get_int("u16"), int64_t{60000});
        QCOMPARE(f->get_int("i16"), int64_t{-30000});
        QCOMPARE(f->get_int("u32"), int64_t{4000000000});
        QCOMPARE(f->get_int("i32"), int64_t{-2000000000});
        QCOMPARE(f->get_int("u64"), int64_t{1} << 62);
        QCOMPARE(f->get_int("i64"), -(int64_t{1} << 60));
        QCOMPARE(f->get_double("f32"), 0.25);
        QCOMPARE(f->get_double("f64"), 1e-300);
        QCOMPARE(f->get_double("u32"), 4e9);
        QCOMPARE(f->find_bool("yes"), std::optional<bool>(true));
        QCOMPARE(f->get_string("s"), std::string("h\xc3\xa9llo\0x", 8));
        QCOMPARE(f->get_string("empty"), std::string());
        QCOMPARE(f->get_array("strs", GgufValueType::String).string_array(),
                 (std::vector<std::string>{"a", "", "ccc"}));
        QCOMPARE(f->find("i16s")->int_array(), (std::vector<int64_t>{-1, 2, -3}));
        QCOMPARE(f->find("f32s")->double_array(), (std::vector<double>{0.5, -2.0}));
        QCOMPARE(f->find("bools")->int_array(), (std::vector<int64_t>{1, 0, 1}));
        QCOMPARE(f->find("none")->size(), uint64_t{0});
        const auto& nested = f->find("nested")->nested_array();
        QCOMPARE(nested.size(), size_t{2});
        QCOMPARE(nested[0].int_array(), (std::vector<int64_t>{1, 2}));
        QCOMPARE(nested[1].string_array(), (std::vector<std::string>{"x"}));
        QCOMPARE(f->find("strs")->summary(), std::string("[string x 3]"));
        QVERIFY(!f->find_int("missing").has_value());

        // Wrong types and missing keys name the file and the key.
        QVERIFY_THROWS_EXCEPTION(Error, f->get_int("s"));
        try {
            f->get_int("s");
        } catch (const Error& e) {
            QCOMPARE(std::string(e.what()), std::string("meta.gguf: metadata key 's' is string, expected an integer"));
        }
        try {
            f->get_int("u64max");
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("meta.gguf: metadata key 'u64max'") == 0, e.what());
        }
        try {
            f->get_string("absent");
            QFAIL("no error");
        } catch (const Error& e) {
            QCOMPARE(std::string(e.what()), std::string("meta.gguf: metadata key 'absent' is missing"));
        }
        QVERIFY_THROWS_EXCEPTION(Error, f->get_array("i16s", GgufValueType::String));
        QVERIFY_THROWS_EXCEPTION(Error, f->find("strs")->int_array());
    }

    void hostileFiles_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("message");
        auto add = [](const char* tag, const std::string& b, const char* msg) {
            QTest::newRow(tag) << QByteArray(b.data(), static_cast<int>(b.size())) << QString(msg);
        };
        const std::string good = small_writer().build();
        const size_t kv_end = offset_after_kvs(small_writer());

        add("empty", "", "too small to be a GGUF file");
        add("bad magic", "GGML" + good.substr(4), "is not a GGUF file (starts with 'GGML'");
        {
            std::string b = good;
            b[4] = 1;
            add("version 1", b, "GGUF version 1, which is not supported");
            b[4] = 4;
            add("version 4", b, "unsupported GGUF version 4 (supported: 2 and 3)");
            b[4] = 0;
            b[7] = 3;
            add("big endian", b, "big-endian GGUF");
        }
        {
            std::string b = good;
            const uint64_t huge = 1ull << 61;
            std::memcpy(&b[8], &huge, 8);
            add("tensor count overflow", b, "claims 2305843009213693952 tensor infos, which cannot fit");
            std::memcpy(&b[8], "\x02\0\0\0\0\0\0\0", 8);
            const uint64_t lie = ~0ull;
            std::memcpy(&b[16], &lie, 8);
            add("kv count overflow", b, "claims 18446744073709551615 metadata entries");
        }
        {
            std::string b = good;
            const uint64_t len = 1ull << 40;
            std::memcpy(&b[24], &len, 8);  // the first key's length
            add("string longer than file", b, "string of 1099511627776 bytes (metadata key #0)");
        }
        {
            GgufWriter w;
            std::string p;
            put<uint32_t>(p, kU64);
            put<uint64_t>(p, 1ull << 62);  // 2^62 elements of 8 bytes: the byte count overflows
            w.kv_raw("arr", kArr, p);
            add("array count overflow", w.build(), "claims 4611686018427387904 elements in metadata key 'arr'");
        }
        {
            GgufWriter w;
            std::string p;
            put<uint32_t>(p, kStr);
            put<uint64_t>(p, 1000000);  // a million strings promised, none present
            w.kv_raw("tokens", kArr, p);
            add("array count lies", w.build(), "claims 1000000 elements in metadata key 'tokens'");
        }
        {
            GgufWriter w;
            std::string p;
            for (int i = 0; i < 20; ++i) {
                put<uint32_t>(p, kArr);
                put<uint64_t>(p, 1);
            }
            put<uint32_t>(p, kU8);
            put<uint64_t>(p, 0);
            w.kv_raw("deep", kArr, p);
            add("nesting too deep", w.build(), "metadata key 'deep' nests arrays deeper than 8 levels");
        }
        {
            GgufWriter w;
            w.kv_raw("odd", 13, "");
            add("unknown value type", w.build(), "metadata key 'odd' has unknown value type 13");
        }
        {
            GgufWriter w;
            w.kv_u32("x", 1);
            w.kv_u32("x", 2);
            add("duplicate key", w.build(), "has the metadata key 'x' twice");
        }
        {
            GgufWriter w;
            w.set_alignment(24);
            add("alignment not a power of two", w.build(), "general.alignment is 24, expected a power of two");
        }
        {
            GgufWriter w;
            w.kv_str("general.alignment", "32");
            add("alignment wrong type", w.build(), "general.alignment is string, expected an integer");
        }
        {
            GgufWriter w = small_writer();
            w.force_offset(1, 1ull << 40);
            add("tensor out of bounds", w.build(), "tensor 'b' data [1099511627776, 1099511627792) lies outside");
        }
        {
            GgufWriter w = small_writer();
            w.force_offset(0, ~0ull - 31);  // aligned, and offset + 68 bytes wraps around 2^64
            add("tensor end overflows", w.build(), "tensor 'a' data [18446744073709551584, overflow) lies outside");
        }
        {
            GgufWriter w = small_writer();
            w.force_offset(1, 32);  // tensor 'a' spans [0, 68)
            add("overlapping tensors", w.build(), "tensors 'a' [0, 68) and 'b' [32, ...) overlap");
        }
        {
            GgufWriter w = small_writer();
            w.force_offset(1, 100);
            add("misaligned offset", w.build(), "tensor 'b' has data offset 100, not a multiple of the alignment 32");
        }
        {
            std::string b = good;
            // tensor 'a': name (8+1), n_dims 4, ne 2×8, type 4 -> type at kv_end + 9 + 4 + 16
            const uint32_t t = 99;
            std::memcpy(&b[kv_end + 29], &t, 4);
            add("unknown tensor type", b, "tensor 'a' has an unknown tensor type (id 99)");
            const uint32_t q2k = 10;
            std::memcpy(&b[kv_end + 29], &q2k, 4);
            add("unsupported tensor type", b, "tensor 'a' has Q2_K (id 10), which this reader cannot dequantize");
        }
        {
            std::string b = good;
            const uint64_t big = 1ull << 40;
            std::memcpy(&b[kv_end + 13], &big, 8);  // ne0 = 2^40
            std::memcpy(&b[kv_end + 21], &big, 8);  // ne1 = 2^40: 2^80 elements
            add("element count overflow", b, "tensor 'a' has dimensions whose element count overflows 64 bits");
            const uint64_t ne0 = 33;
            std::memcpy(&b[kv_end + 13], &ne0, 8);
            add("row not a multiple of the block", b, "tensor 'a' has rows of 33 values, not a multiple of the Q8_0");
            const uint32_t dims = 5;
            std::memcpy(&b[kv_end + 9], &dims, 4);
            add("too many dimensions", b, "tensor 'a' has 5 dimensions");
        }
        {
            GgufWriter w = small_writer();
            std::mt19937 rng(3);
            w.tensor("a", {4}, tF32, encode(tF32, 4, rng).bytes);
            add("duplicate tensor", w.build(), "has the tensor 'a' twice");
        }
        add("truncated data", good.substr(0, good.size() - 1), "tensor 'b' data [96, 112) lies outside");
        add("truncated header", good.substr(0, kv_end + 64), "is truncated: the type of tensor 'b' needs 4 bytes");
    }
    void hostileFiles() {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, message);
        const std::string err = error_of(std::string(bytes.constData(), static_cast<size_t>(bytes.size())));
        QVERIFY2(err.rfind(kName + ": ", 0) == 0, ("error does not start with the file name: '" + err + "'").c_str());
        QVERIFY2(err.find(message.toStdString()) != std::string::npos,
                 ("'" + err + "' does not contain '" + message.toStdString() + "'").c_str());
    }

    // Every strict prefix of a valid file is rejected with a cloq::Error; none crashes or reads past the end.
    void everyTruncationIsAnError() {
        const std::string good = tiny_llama(true).bytes;
        QVERIFY(GgufFile::from_bytes(good, kName) != nullptr);
        for (size_t n = 0; n < good.size(); n += (n < 2000 ? 1 : 97)) {
            QVERIFY2(!error_of(good.substr(0, n)).empty(), qPrintable(QString("prefix %1 accepted").arg(n)));
        }
    }

    // Random byte corruption of the header: either a clean parse (then every tensor loads) or a cloq::Error.
    void randomCorruptionNeverCrashes() {
        const std::string good = small_writer().build();
        std::mt19937 rng(11);
        int errors = 0, parsed = 0;
        for (int i = 0; i < 20000; ++i) {
            std::string b = good;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < flips; ++k) {
                const size_t at = rng() % std::min<size_t>(b.size(), 200);
                b[at] = static_cast<char>(rng() % 3 == 0 ? 0xFF : rng());
            }
            try {
                auto f = GgufFile::from_bytes(b, kName);
                for (const auto& t : f->tensors()) f->load_float(t.name);
                ++parsed;
            } catch (const Error& e) {
                QVERIFY(std::string(e.what()).rfind(kName, 0) == 0);
                ++errors;
            }
        }
        QVERIFY(errors > 1000);
        QVERIFY(parsed > 100);
    }

    void openErrorsNameTheFile() {
        QTemporaryDir dir;
        const std::string missing = dir.filePath("nope.gguf").toStdString();
        try {
            GgufFile::open(missing);
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).rfind(missing + ": cannot open", 0) == 0, e.what());
        }
        try {
            GgufFile::open(dir.path().toStdString());
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("is not a regular file") != std::string::npos, e.what());
        }
    }

    void hfNames() {
        QCOMPARE(hf_name_from_gguf("blk.12.attn_q.weight"), std::string("model.layers.12.self_attn.q_proj.weight"));
        QCOMPARE(hf_name_from_gguf("blk.0.ffn_down.weight"), std::string("model.layers.0.mlp.down_proj.weight"));
        QCOMPARE(hf_name_from_gguf("blk.3.ffn_norm.weight"),
                 std::string("model.layers.3.post_attention_layernorm.weight"));
        QCOMPARE(hf_name_from_gguf("output.weight"), std::string("lm_head.weight"));
        QCOMPARE(hf_name_from_gguf("rope_freqs.weight"), std::string());
        QCOMPARE(hf_name_from_gguf("blk.x.attn_q.weight"), std::string());
        QCOMPARE(hf_name_from_gguf("blk.01.attn_q.weight"), std::string());
        QCOMPARE(hf_name_from_gguf("blk.1.attn_q"), std::string());
    }

    // The GGUF view of a Llama reproduces the HF tensors exactly (RoPE row permutation undone) and its config.
    void llamaAsHf_data() {
        QTest::addColumn<bool>("tied");
        QTest::newRow("tied") << true;
        QTest::newRow("untied") << false;
    }
    void llamaAsHf() {
        QFETCH(bool, tied);
        TinyLlama m = tiny_llama(tied);
        QTemporaryDir dir;
        const std::string path = dir.filePath("tiny.gguf").toStdString();
        { std::ofstream(path, std::ios::binary) << m.bytes; }
        ModelFiles mf = open_gguf_model(path);
        QCOMPARE(mf.format, std::string("gguf"));
        const ModelConfig& c = mf.config;
        QCOMPARE(c.architecture, std::string("LlamaForCausalLM"));
        QCOMPARE(c.num_layers, int64_t{2});
        QCOMPARE(c.hidden_size, int64_t{64});
        QCOMPARE(c.intermediate_size, int64_t{96});
        QCOMPARE(c.num_heads, int64_t{4});
        QCOMPARE(c.num_kv_heads, int64_t{2});
        QCOMPARE(c.head_dim, int64_t{16});
        QCOMPARE(c.vocab_size, int64_t{40});
        QCOMPARE(c.max_position_embeddings, int64_t{512});
        QCOMPARE(c.rope_theta, 50000.0);
        QCOMPARE(c.rms_norm_eps, static_cast<double>(1e-5f));
        QCOMPARE(c.tie_word_embeddings, tied);
        QCOMPARE(c.bos_token_id, int64_t{3});
        QCOMPARE(c.eos_token_id, int64_t{4});
        QCOMPARE(mf.weights->names().size(), m.hf.size());
        for (const auto& [name, t] : m.hf) {
            QVERIFY2(mf.weights->contains(name), name.c_str());
            QCOMPARE(mf.weights->shape(name), t.sizes().vec());
            QCOMPARE(mf.weights->dtype(name), std::string("F32"));
            QVERIFY2(torch::equal(mf.weights->load(name), t), name.c_str());
        }
        QVERIFY(mf.weights->describe().find("tiny.gguf (GGUF v3, ") == 0);
        // Without the un-permutation q would differ (checks that the test can fail).
        auto gf = GgufFile::open(path);
        QVERIFY(!torch::equal(gf->load_float("blk.0.attn_q.weight"), m.hf["model.layers.0.self_attn.q_proj.weight"]));
    }

    void unpermuteInvertsPermute() {
        auto w = torch::arange(6 * 8 * 5, torch::kFloat32).reshape({48, 5});
        for (int64_t heads : {1, 3, 6, 12, 24}) {
            QVERIFY(torch::equal(unpermute_rope_rows(hf_to_gguf_permute(w, heads), heads), w));
        }
        auto b = torch::arange(48, torch::kFloat32);
        QVERIFY(torch::equal(unpermute_rope_rows(hf_to_gguf_permute(b, 4), 4), b));
        // head_dim 4: GGUF rows (h, i, j) hold HF rows (h, j, i): [0, 2, 1, 3] within each head
        auto perm = hf_to_gguf_permute(torch::arange(8, torch::kFloat32), 2);
        QVERIFY(torch::equal(perm.to(torch::kInt64), torch::tensor({0, 2, 1, 3, 4, 6, 5, 7}, torch::kInt64)));
    }

    // A SentencePiece model written as GGUF `llama` tokenizer metadata (as convert_hf_to_gguf.py does) encodes
    // exactly as the .model file it came from.
    void llamaTokenizerFromMetadata_data() {
        QTest::addColumn<QString>("model");
        QTest::newRow("stories260K tok512") << QString::fromStdString(demo_model_dir() + "/tokenizer.model");
        QTest::newRow("llama2") << QString::fromStdString(shared_path("tokenizers/llama2/tokenizer.model"));
    }
    void llamaTokenizerFromMetadata() {
        QFETCH(QString, model);
        const std::string path = model.toStdString();
        GgufWriter w;
        write_llama_tokenizer(w, path);
        const bool tok512 = path.find("stories260K") != std::string::npos;
        auto f = GgufFile::from_bytes(w.build(), "tok.gguf");
        auto tok = tokenizer_from_gguf(*f);
        auto ref = load_sentencepiece(path);
        QVERIFY(tok != nullptr);
        QCOMPARE(tok->vocab_size(), ref->vocab_size());
        QCOMPARE(tok->bos_id(), ref->bos_id());
        QCOMPARE(tok->eos_id(), ref->eos_id());
        if (tok512) {
            QCOMPARE(tok->encode("Once upon a time", true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
        }
        int lines = 0;
        for (const std::string& text : {tinystories_path(), wikitext_path()}) {
            std::ifstream t(text);
            std::string line;
            for (int i = 0; i < 1500 && std::getline(t, line); ++i, ++lines) {
                const auto ids = tok->encode(line, true);
                if (ids != ref->encode(line, true)) QFAIL(("ids differ on line: " + line).c_str());
                QCOMPARE(tok->decode(ids), ref->decode(ids));
            }
        }
        QCOMPARE(lines, 3000);
    }

    // stories260K converted to GGUF opens as the same model: identical tensors (q/k un-permuted), config and
    // tokenizer ids.
    void stories260kAsGguf() {
        QTemporaryDir dir;
        const std::string path = dir.filePath("stories260K.gguf").toStdString();
        { std::ofstream(path, std::ios::binary) << stories260k_gguf(); }
        ModelFiles m = open_gguf_model(path);
        SafetensorsWeights st(demo_model_dir() + "/model.safetensors");
        QCOMPARE(m.weights->names().size(), st.names().size());
        for (const auto& n : st.names()) QVERIFY2(torch::equal(m.weights->load(n), st.load(n)), n.c_str());
        const ModelConfig& c = m.config;
        QCOMPARE(c.num_layers, int64_t{5});
        QCOMPARE(c.vocab_size, int64_t{512});
        QCOMPARE(c.head_dim, int64_t{8});
        QVERIFY(c.tie_word_embeddings);
        QVERIFY(m.tokenizer != nullptr);
        QCOMPARE(m.tokenizer->encode("Once upon a time", true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
    }

    // tokenizer.model + tokenizer_config.json written from GGUF `llama` metadata: libsentencepiece itself (the
    // spm_reference oracle, a separate process) loads the file and gives the GGUF tokenizer's ids.
    void hfTokenizerFilesFromLlamaMetadata_data() { llamaTokenizerFromMetadata_data(); }
    void hfTokenizerFilesFromLlamaMetadata() {
        QFETCH(QString, model);
        GgufWriter w;
        w.kv_str("general.architecture", "llama");
        w.kv_u32("llama.context_length", 4096);
        w.kv_str("tokenizer.chat_template", "{{ messages }}");
        write_llama_tokenizer(w, model.toStdString());
        auto f = GgufFile::from_bytes(w.build(), "tok.gguf");
        QTemporaryDir dir;
        const auto written = write_hf_tokenizer_files(*f, dir.path().toStdString());
        QCOMPARE(written, (std::vector<std::string>{"tokenizer.model", "tokenizer_config.json"}));
        const std::string written_model = dir.filePath("tokenizer.model").toStdString();
        auto ours = tokenizer_from_gguf(*f);
        auto reread = load_sentencepiece(written_model);

        const std::string reference = std::string(CLOQ_BINARY_DIR) + "/tests/tools/spm_reference";
        QProcess p;
        p.start(QString::fromStdString(reference), {"encode-lines", QString::fromStdString(written_model),
                                                    QString::fromStdString(wikitext_path()), "0", "400"});
        QVERIFY2(p.waitForStarted(30000), "cannot start tests/tools/spm_reference (build that target)");
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        std::istringstream ref(p.readAllStandardOutput().toStdString());
        std::ifstream text(wikitext_path());
        std::string line, ref_line;
        int n = 0;
        for (; n < 400 && std::getline(text, line); ++n) {
            QVERIFY(std::getline(ref, ref_line));
            const auto ids = ours->encode(line, false);
            std::string got;
            for (size_t i = 0; i < ids.size(); ++i) got += (i ? " " : "") + std::to_string(ids[i]);
            if (got != ref_line)
                QFAIL(("libsentencepiece differs on: " + line + "\n  " + got + "\n  " + ref_line).c_str());
            QCOMPARE(reread->encode(line, true), ours->encode(line, true));
        }
        QCOMPARE(n, 400);

        std::ifstream cfg_in(dir.filePath("tokenizer_config.json").toStdString());
        const auto cfg = nlohmann::json::parse(cfg_in);
        QCOMPARE(cfg["bos_token"].get<std::string>(), std::string("<s>"));
        QCOMPARE(cfg["eos_token"].get<std::string>(), std::string("</s>"));
        QCOMPARE(cfg["unk_token"].get<std::string>(), std::string("<unk>"));
        QCOMPARE(cfg["add_bos_token"].get<bool>(), true);
        QCOMPARE(cfg["chat_template"].get<std::string>(), std::string("{{ messages }}"));
        QCOMPARE(cfg["model_max_length"].get<int>(), 4096);
        QCOMPARE(cfg["tokenizer_class"].get<std::string>(), std::string("LlamaTokenizer"));
    }

    void badTokenizerMetadata() {
        auto err = [](GgufWriter& w) -> std::string {
            try {
                tokenizer_from_gguf(*GgufFile::from_bytes(w.build(), "t.gguf"));
            } catch (const Error& e) {
                return e.what();
            }
            return "";
        };
        {
            GgufWriter w;
            QVERIFY(tokenizer_from_gguf(*GgufFile::from_bytes(w.build(), "t.gguf")) == nullptr);
            w.kv_str("tokenizer.ggml.model", "bert");
            w.kv_str_array("tokenizer.ggml.tokens", {"a"});
            QCOMPARE(err(w),
                     std::string("t.gguf: tokenizer.ggml.model 'bert' is not supported (supported: llama, gpt2)"));
        }
        {
            GgufWriter w;
            w.kv_str("tokenizer.ggml.model", "llama");
            w.kv_str_array("tokenizer.ggml.tokens", {"<unk>", "a"});
            QCOMPARE(err(w),
                     std::string("t.gguf: tokenizer.ggml.model is 'llama' but tokenizer.ggml.scores is missing"));
            w.kv_array<float>("tokenizer.ggml.scores", kF32, {0.0f, -1.0f});
            w.kv_array<int32_t>("tokenizer.ggml.token_type", kI32, {2, 1, 1});
            QCOMPARE(err(w), std::string("t.gguf: tokenizer.ggml.token_type has 3 entries for 2 tokens"));
        }
        {
            GgufWriter w;
            w.kv_str("tokenizer.ggml.model", "llama");
            w.kv_str_array("tokenizer.ggml.tokens", {"<unk>", "a"});
            w.kv_array<float>("tokenizer.ggml.scores", kF32, {0.0f, -1.0f});
            w.kv_u32("tokenizer.ggml.bos_token_id", 7);
            QCOMPARE(err(w), std::string("t.gguf: metadata key 'tokenizer.ggml.bos_token_id' is 7, outside the "
                                         "vocabulary of 2 tokens"));
        }
        {
            GgufWriter w;
            w.kv_str("tokenizer.ggml.model", "llama");
            w.kv_u32("tokenizer.ggml.tokens", 3);
            QCOMPARE(err(w), std::string("t.gguf: metadata key 'tokenizer.ggml.tokens' is uint32, expected an "
                                         "array of string"));
        }
    }

    void badModelMetadata() {
        auto write = [](const std::string& bytes, QTemporaryDir& dir) {
            const std::string path = dir.filePath("bad.gguf").toStdString();
            std::ofstream(path, std::ios::binary) << bytes;
            return path;
        };
        auto expect_error = [](const std::string& path, const std::string& msg) {
            try {
                open_gguf_model(path);
                QFAIL(("no error, expected " + msg).c_str());
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).rfind(path + ": ", 0) == 0, e.what());
                QVERIFY2(std::string(e.what()).find(msg) != std::string::npos, e.what());
            }
        };
        QTemporaryDir dir;
        {
            GgufWriter w;
            w.kv_str("general.architecture", "falcon");
            expect_error(write(w.build(), dir), "general.architecture is 'falcon'; supported GGUF architectures");
        }
        {
            GgufWriter w;
            w.kv_str("general.architecture", "llama");
            w.kv_u32("llama.block_count", 2);
            expect_error(write(w.build(), dir), "metadata key 'llama.embedding_length' is missing");
        }
        {
            // Drop one tensor of the tiny model: the shape check names it.
            TinyLlama m = tiny_llama(true);
            std::string b = m.bytes;
            const std::string needle = "blk.1.ffn_up.weight";
            b.replace(b.find(needle), needle.size(), "blk.1.ffn_UP.weight");
            expect_error(write(b, dir), "has no tensor for 'model.layers.1.mlp.up_proj.weight'");
        }
        {
            // A NaN in a weight is reported when the tensor is loaded.
            TinyLlama m = tiny_llama(true, true);
            const std::string path = write(m.bytes, dir);
            ModelFiles mf = open_gguf_model(path);
            try {
                mf.weights->load("model.layers.1.mlp.down_proj.weight");
                QFAIL("no error for a NaN weight");
            } catch (const Error& e) {
                QCOMPARE(std::string(e.what()), path + ": tensor 'blk.1.ffn_down.weight' contains NaN or Inf values");
            }
            QVERIFY(torch::equal(mf.weights->load("model.layers.1.mlp.up_proj.weight"),
                                 m.hf["model.layers.1.mlp.up_proj.weight"]));
        }
        {
            // head_count 5 does not divide 64
            TinyLlama m = tiny_llama(true);
            std::string b = m.bytes;
            const std::string key = "llama.attention.head_count";
            const size_t at = b.find(key + std::string("\x04\0\0\0", 4)) + key.size() + 4;
            const uint32_t five = 5;
            std::memcpy(&b[at], &five, 4);
            expect_error(write(b, dir), "embedding_length 64 is not a multiple of llama.attention.head_count 5");
        }
    }
};

QTEST_APPLESS_MAIN(TestGguf)
#include "test_gguf.moc"
