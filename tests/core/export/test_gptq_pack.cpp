// GPTQ packing: bit-exact with AutoGPTQ's published pack loop (ported literally below as the reference), and
// pack -> unpack returns the identical integer codes, zero points, scales (fp16) and g_idx.
#include <torch/torch.h>
#include <QtTest>

#include <cstdint>
#include <vector>

#include "cloq/base/error.h"
#include "cloq/export/gptq_pack.h"
#include "cloq/quant/quant_int.h"

using namespace cloq;

namespace {

// AutoGPTQ qlinear_cuda_old.QuantLinear.pack, the qweight loop, transcribed for one column of uint32 values:
// intweight[in] -> qweight[in/32*bits]. Written independently of the library's bit-stream formulation.
std::vector<uint32_t> autogptq_pack(const std::vector<uint32_t>& intweight, int bits) {
    std::vector<uint32_t> q(intweight.size() / 32 * bits, 0);
    size_t i = 0, row = 0;
    while (row < q.size()) {
        if (bits == 2 || bits == 4 || bits == 8) {
            for (size_t j = i; j < i + 32 / bits; ++j) q[row] |= intweight[j] << (bits * (j - i));
            i += 32 / bits;
            row += 1;
        } else {  // bits == 3
            for (size_t j = i; j < i + 10; ++j) q[row] |= intweight[j] << (3 * (j - i));
            i += 10;
            q[row] |= intweight[i] << 30;
            row += 1;
            q[row] |= (intweight[i] >> 2) & 1;
            i += 1;
            for (size_t j = i; j < i + 10; ++j) q[row] |= intweight[j] << (3 * (j - i) + 1);
            i += 10;
            q[row] |= intweight[i] << 31;
            row += 1;
            q[row] |= (intweight[i] >> 1) & 0x3;
            i += 1;
            for (size_t j = i; j < i + 10; ++j) q[row] |= intweight[j] << (3 * (j - i) + 2);
            i += 10;
            row += 1;
        }
    }
    return q;
}

// Packs every column of codes [n, m] with the reference loop: int32 [n/32*bits, m].
torch::Tensor reference_pack_rows(const torch::Tensor& codes, int bits) {
    const auto c = codes.to(torch::kInt64).contiguous();
    const int64_t n = c.size(0), m = c.size(1);
    auto out = torch::zeros({n / 32 * bits, m}, torch::kInt32);
    for (int64_t col = 0; col < m; ++col) {
        std::vector<uint32_t> v(n);
        for (int64_t r = 0; r < n; ++r) v[r] = static_cast<uint32_t>(c[r][col].item<int64_t>());
        const auto q = autogptq_pack(v, bits);
        for (size_t r = 0; r < q.size(); ++r) out[r][col] = static_cast<int32_t>(q[r]);
    }
    return out;
}

// A synthetic quantized layer: random codes/scales/zeros; act_order gives a permuted g_idx as GPTQ's desc_act does
// (g_idx[perm[i]] = i / g).
QuantizedWeight synthetic(int64_t out, int64_t in, int bits, int group, bool act_order, bool zero_may_be_0,
                          uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    QuantizedWeight qw;
    qw.spec.bits = bits;
    qw.spec.group = group;
    const int maxq = (1 << bits) - 1;
    const int64_t g = qw.spec.group_size(in), G = qw.spec.num_groups(in);
    qw.codes = torch::randint(0, maxq + 1, {out, in}, gen, torch::kInt64).to(torch::kUInt8);
    qw.scales = torch::rand({out, G}, gen, torch::kFloat32) * 0.1 + 1e-3;
    qw.zeros = torch::randint(zero_may_be_0 ? 0 : 1, maxq + 1, {out, G}, gen, torch::kInt64).to(torch::kInt32);
    auto g_idx = torch::arange(in, torch::kInt64) / g;
    if (act_order) {
        const auto perm = torch::randperm(in, gen, torch::kInt64);
        auto permuted = torch::empty_like(g_idx);
        permuted.index_put_({perm}, g_idx);
        g_idx = permuted;
    }
    qw.g_idx = g_idx.to(torch::kInt32);
    qw.Q = dequantize(qw);
    return qw;
}

}  // namespace

class TestGptqPack : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void knownWords() {
        // 4-bit: inputs 0..7 of a column with codes 0..7 -> 0x76543210 (LSB first).
        auto c4 = torch::zeros({32, 1}, torch::kInt64);
        for (int j = 0; j < 8; ++j) c4[j][0] = j;
        auto p4 = pack_codes_rows(c4, 4, "t");
        QCOMPARE(p4.size(0), 4);
        QCOMPARE(static_cast<uint32_t>(p4[0][0].item<int32_t>()), 0x76543210u);
        // 2-bit: codes 1,2,3,0 repeating -> 0b00111001 per byte = 0x39393939.
        auto c2 = torch::zeros({32, 1}, torch::kInt64);
        for (int j = 0; j < 16; ++j) c2[j][0] = (j % 4 + 1) % 4;
        QCOMPARE(static_cast<uint32_t>(pack_codes_rows(c2, 2, "t")[0][0].item<int32_t>()), 0x39393939u);
        // 3-bit straddle: only input 10 = 0b111 -> bits 30,31 of word 0 and bit 0 of word 1;
        // only input 21 = 0b111 -> bit 31 of word 1 and bits 0,1 of word 2.
        auto c3 = torch::zeros({32, 2}, torch::kInt64);
        c3[10][0] = 7;
        c3[21][1] = 7;
        auto p3 = pack_codes_rows(c3, 3, "t");
        QCOMPARE(p3.size(0), 3);
        QCOMPARE(static_cast<uint32_t>(p3[0][0].item<int32_t>()), 0xC0000000u);
        QCOMPARE(static_cast<uint32_t>(p3[1][0].item<int32_t>()), 0x1u);
        QCOMPARE(static_cast<uint32_t>(p3[2][0].item<int32_t>()), 0x0u);
        QCOMPARE(static_cast<uint32_t>(p3[1][1].item<int32_t>()), 0x80000000u);
        QCOMPARE(static_cast<uint32_t>(p3[2][1].item<int32_t>()), 0x3u);
    }

    void matchesAutoGptqLoop_data() {
        QTest::addColumn<int>("bits");
        for (int b : {2, 3, 4, 8}) QTest::newRow(qPrintable(QString("%1-bit").arg(b))) << b;
    }
    void matchesAutoGptqLoop() {
        QFETCH(int, bits);
        auto gen = at::detail::createCPUGenerator(7 + bits);
        const auto codes = torch::randint(0, 1 << bits, {96, 5}, gen, torch::kInt64);
        const auto ours = pack_codes_rows(codes, bits, "t");
        QVERIFY(torch::equal(ours, reference_pack_rows(codes, bits)));
        QVERIFY(torch::equal(unpack_codes_rows(ours, bits).to(torch::kInt64), codes));
    }

    void roundTrip_data() {
        QTest::addColumn<int>("bits");
        QTest::addColumn<int>("group");
        QTest::addColumn<bool>("actOrder");
        QTest::addColumn<QString>("format");
        for (int b : {2, 3, 4, 8})
            for (const char* f : {"gptq", "gptq_v2"}) {
                QTest::newRow(qPrintable(QString("%1b g64 ragged %2").arg(b).arg(f))) << b << 64 << false << QString(f);
                QTest::newRow(qPrintable(QString("%1b g32 act-order %2").arg(b).arg(f)))
                    << b << 32 << true << QString(f);
                QTest::newRow(qPrintable(QString("%1b per-channel %2").arg(b).arg(f)))
                    << b << -1 << false << QString(f);
                QTest::newRow(qPrintable(QString("%1b g40 ragged act-order %2").arg(b).arg(f)))
                    << b << 40 << true << QString(f);
            }
    }
    void roundTrip() {
        QFETCH(int, bits);
        QFETCH(int, group);
        QFETCH(bool, actOrder);
        QFETCH(QString, format);
        const auto fmt = parse_gptq_format(format.toStdString());
        const int64_t out = 64, in = 160;  // g64 -> groups of 64 + 64 + 32; g40 -> 4 groups (permuted with act-order)
        const auto qw = synthetic(out, in, bits, group, actOrder, fmt == GptqFormat::V2, 100 + bits);
        const auto t = pack_gptq(qw, fmt, "layer");
        const int64_t G = qw.spec.num_groups(in);
        QCOMPARE(t.qweight.sizes().vec(), (std::vector<int64_t>{in / 32 * bits, out}));
        QCOMPARE(t.qzeros.sizes().vec(), (std::vector<int64_t>{G, out / 32 * bits}));
        QCOMPARE(t.scales.sizes().vec(), (std::vector<int64_t>{G, out}));
        QCOMPARE(t.scales.scalar_type(), torch::kFloat16);
        QCOMPARE(t.g_idx.scalar_type(), torch::kInt32);
        // Layout against the reference loop: qweight packs codes^T; qzeros packs (zero - 1 for v1) along out.
        QVERIFY(torch::equal(t.qweight, reference_pack_rows(qw.codes.t(), bits)));
        auto stored_zeros = qw.zeros.to(torch::kInt64) - (fmt == GptqFormat::V1 ? 1 : 0);
        QVERIFY(torch::equal(t.qzeros, reference_pack_rows(stored_zeros, bits).t()));

        const auto back = unpack_gptq(t, bits, group, false, fmt, "file.safetensors: layer");
        QVERIFY(torch::equal(back.codes, qw.codes));
        QVERIFY(torch::equal(back.zeros, qw.zeros));
        QVERIFY(torch::equal(back.g_idx, qw.g_idx));
        QVERIFY(torch::equal(back.scales, qw.scales.to(torch::kFloat16).to(torch::kFloat32)));
        QVERIFY(torch::equal(back.Q, round_scales_to_fp16(qw).Q));
    }

    void realQuantizerRoundTrip() {
        // Codes from the project's own quantizer, ragged last group, through both formats.
        auto gen = at::detail::createCPUGenerator(3);
        const auto W = torch::randn({96, 224}, gen, torch::kFloat32);
        for (int bits : {2, 3, 4}) {
            IntQuantSpec spec;
            spec.bits = bits;
            spec.group = 64;  // 224 = 3 x 64 + 32
            const auto qw = quantize_rtn(W, spec);
            for (auto fmt : {GptqFormat::V1, GptqFormat::V2}) {
                const auto back = unpack_gptq(pack_gptq(qw, fmt, "l"), bits, 64, false, fmt, "l");
                QVERIFY(torch::equal(back.codes, qw.codes));
                QVERIFY(torch::equal(back.zeros, qw.zeros));
                // The stored Q differs from the float32 one only by the fp16 rounding of the scales.
                const double rel = ((back.Q - qw.Q).abs().max() / qw.Q.abs().max()).item<double>();
                QVERIFY2(rel < 1e-3, qPrintable(QString::number(rel)));
            }
        }
    }

    void v1CannotStoreZeroZero() {
        auto qw = synthetic(32, 64, 4, 32, false, false, 5);
        qw.zeros[3][1] = 0;
        QVERIFY_THROWS_EXCEPTION(Error, pack_gptq(qw, GptqFormat::V1, "model.layers.0.mlp.up_proj"));
        try {
            pack_gptq(qw, GptqFormat::V1, "model.layers.0.mlp.up_proj");
        } catch (const Error& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("model.layers.0.mlp.up_proj") && m.contains("gptq_v2"), qPrintable(m));
        }
        const auto back = unpack_gptq(pack_gptq(qw, GptqFormat::V2, "x"), 4, 32, false, GptqFormat::V2, "x");
        QCOMPARE(back.zeros[3][1].item<int>(), 0);
    }

    void unpackableShapes() {
        std::string why;
        QVERIFY(gptq_packable(64, 64, &why));
        QVERIFY(why.empty());
        QVERIFY(!gptq_packable(64, 172, &why));  // stories260K's down_proj
        QVERIFY(QString::fromStdString(why).contains("in-features 172"));
        QVERIFY(!gptq_packable(172, 64, &why));  // its gate/up_proj
        QVERIFY(QString::fromStdString(why).contains("out-features 172"));
        IntQuantSpec spec;
        const auto qw = quantize_rtn(torch::randn({64, 172}), spec);
        try {
            pack_gptq(qw, GptqFormat::V2, "model.layers.0.mlp.down_proj");
            QFAIL("expected an error");
        } catch (const Error& e) {
            const QString m = e.what();
            QVERIFY2(m.contains("model.layers.0.mlp.down_proj") && m.contains("172"), qPrintable(m));
        }
    }

    void rejectsMalformed() {
        const auto qw = synthetic(64, 64, 4, 32, false, false, 9);
        auto good = pack_gptq(qw, GptqFormat::V2, "x");
        auto expect = [](const GptqTensors& t, int bits, const char* needle) {
            try {
                unpack_gptq(t, bits, 32, false, GptqFormat::V2, "base/model.safetensors: model.layers.0.q_proj");
                QFAIL(qPrintable(QString("no error for ") + needle));
            } catch (const Error& e) {
                const QString m = e.what();
                QVERIFY2(m.contains("base/model.safetensors") && m.contains(needle), qPrintable(m));
            }
        };
        auto t = good;
        t.qweight = t.qweight.slice(0, 0, 4);
        expect(t, 4, "qweight");
        t = good;
        t.qzeros = torch::zeros({2, 3}, torch::kInt32);
        expect(t, 4, "qzeros");
        t = good;
        t.scales = t.scales.to(torch::kFloat32);
        expect(t, 4, "scales");
        t = good;
        t.g_idx = t.g_idx.clone();
        t.g_idx[5] = 7;
        expect(t, 4, "g_idx");
        expect(good, 3, "qweight");  // a 4-bit layer read as 3-bit has the wrong qweight height
        QVERIFY_THROWS_EXCEPTION(Error, pack_codes_rows(torch::full({32, 1}, 4, torch::kInt64), 2, "c"));
        QVERIFY_THROWS_EXCEPTION(Error, parse_gptq_format("gptq_v3"));
    }
};

QTEST_APPLESS_MAIN(TestGptqPack)
#include "test_gptq_pack.moc"
