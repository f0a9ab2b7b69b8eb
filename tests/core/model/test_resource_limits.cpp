// Memory budget and the peak-memory estimates that let calibration and analysis refuse oversized settings with a
// message instead of being killed (cloq/resource_limits.h). The expected byte counts are recomputed here from the
// list of tensors each step holds, written out per tensor, for the demo model and for Llama-2-7B.
#include <QtTest/QtTest>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "cloq/base/error.h"
#include "cloq/model/resource_limits.h"

namespace {

cloq::ModelConfig stories260k() {
    cloq::ModelConfig c;
    c.hidden_size = 64, c.intermediate_size = 172, c.num_layers = 5, c.num_heads = 8, c.num_kv_heads = 4;
    c.head_dim = 8, c.vocab_size = 512, c.max_position_embeddings = 512, c.tie_word_embeddings = true;
    return c;
}

cloq::ModelConfig llama2_7b() {
    cloq::ModelConfig c;
    c.hidden_size = 4096, c.intermediate_size = 11008, c.num_layers = 32, c.num_heads = 32, c.num_kv_heads = 32;
    c.head_dim = 128, c.vocab_size = 32000, c.max_position_embeddings = 4096, c.tie_word_embeddings = false;
    return c;
}

// The calibration peak, tensor by tensor (sizes in elements, then bytes).
double calibration_reference(const cloq::ModelConfig& c, double nsamples, double seqlen) {
    const double h = c.hidden_size, i = c.intermediate_size, nh = c.num_heads, nkv = c.num_kv_heads, hd = c.head_dim,
                 V = c.vocab_size;
    double f32 = 0, f64 = 0;
    // one decoder block's linear weights
    f32 += (nh * hd) * h;   // q_proj [nh*hd, h]
    f32 += (nkv * hd) * h;  // k_proj
    f32 += (nkv * hd) * h;  // v_proj
    f32 += h * (nh * hd);   // o_proj [h, nh*hd]
    f32 += i * h;           // gate_proj
    f32 += i * h;           // up_proj
    f32 += h * i;           // down_proj
    // embeddings, and the head when untied
    f32 += V * h;
    if (!c.tie_word_embeddings) f32 += V * h;
    // hidden states entering and leaving the block for every calibration token
    f32 += 2 * nsamples * seqlen * h;
    // one sample's activations inside the block: q, k, v, attention output, residual, normed input; gate, up, act
    f32 += seqlen * (nh * hd + nkv * hd + nkv * hd);
    f32 += seqlen * (3 * h);
    f32 += seqlen * (3 * i);
    f32 += 2 * nh * seqlen * seqlen;  // scores and their softmax
    // float64 Gram matrices of the block's four input groups
    f64 += h * h;                  // attn_in (q/k/v)
    f64 += (nh * hd) * (nh * hd);  // o_proj input
    f64 += h * h;                  // mlp_in (gate/up)
    f64 += i * i;                  // down_proj input
    return 4 * f32 + 8 * f64;
}

uint64_t meminfo_kb(const std::string& key) {
    std::ifstream in("/proc/meminfo");
    std::string k;
    uint64_t v = 0;
    std::string unit;
    while (in >> k >> v >> unit)
        if (k == key + ":") return v;
    return 0;
}

}  // namespace

class TestResourceLimits : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void budget_from_environment() {
        // CLOQ_MEMORY_LIMIT's values, passed as memory_budget() would read them (the test does not change the
        // environment: QtTest's watchdog thread reads it concurrently).
        {
            const auto b = cloq::memory_budget("1536M");
            QCOMPARE(b.available_bytes, uint64_t{1536} << 20);
            QCOMPARE(QString::fromStdString(b.source), QString("CLOQ_MEMORY_LIMIT"));
        }
        QCOMPARE(cloq::memory_budget("8G").available_bytes, uint64_t{8} << 30);
        QCOMPARE(cloq::memory_budget("123456").available_bytes, uint64_t{123456});
        for (const char* bad : {"lots", "-5G", "0", "12Q", "1e400"}) {
            try {
                (void)cloq::memory_budget(bad);
                QFAIL(qPrintable(QString("CLOQ_MEMORY_LIMIT=%1 was accepted").arg(bad)));
            } catch (const cloq::Error& e) {
                QVERIFY2(std::string(e.what()).find("CLOQ_MEMORY_LIMIT='" + std::string(bad) + "'") == 0, e.what());
            }
        }
    }

    void budget_from_meminfo() {
        const auto b = cloq::memory_budget(nullptr);  // CLOQ_MEMORY_LIMIT not set
        const uint64_t avail = meminfo_kb("MemAvailable") * 1024, total = meminfo_kb("MemTotal") * 1024;
        QVERIFY(avail > 0 && total > 0);
        QVERIFY2(b.available_bytes <= total, b.source.c_str());
        // MemAvailable moves while other processes run; a container limit can only lower it.
        QVERIFY2(b.available_bytes <= avail + (avail / 4) + (256u << 20), b.source.c_str());
        QVERIFY(b.available_bytes > (16u << 20));
        QVERIFY(b.source.find("MemAvailable") != std::string::npos || b.source.find("cgroup") != std::string::npos);
    }

    void calibration_estimate_matches_tensor_count() {
        for (const auto& [c, ns, sl] : {std::tuple{stories260k(), 32, 256}, std::tuple{llama2_7b(), 128, 2048},
                                        std::tuple{llama2_7b(), 1, 4096}}) {
            cloq::CalibSettings s;
            s.nsamples = ns, s.seqlen = sl;
            const double expect = calibration_reference(c, ns, sl);
            QCOMPARE(static_cast<double>(cloq::estimate_calibration_bytes(c, s)), std::floor(expect));
        }
        // The 7B paper setting: 2 x 128 x 2048 x 4096 float32 hidden states dominate (8 GiB), ~13.6 GiB in all.
        cloq::CalibSettings paper;
        paper.nsamples = 128, paper.seqlen = 2048;
        const double gib = cloq::estimate_calibration_bytes(llama2_7b(), paper) / double(1u << 30);
        QVERIFY2(gib > 12 && gib < 15, qPrintable(QString::number(gib)));
    }

    void layer_estimate_counts_float64_factors() {
        cloq::LayerSettings s;
        s.rank = 64;
        const double out = 11008, in = 4096, k = 4096;
        const double expect = 4 * (out * in) * 2      // W, Q
                              + 8 * (in * in) * 3     // H, eigenvectors, R
                              + 8 * (out * in) * 2    // ΔW, R·ΔWᵀ
                              + 8 * (in + out) * k    // singular vectors
                              + 4 * 64 * (in + out);  // lora_A, lora_B
        QCOMPARE(static_cast<double>(cloq::estimate_layer_solve_bytes(11008, 4096, s)), expect);
        // Analysis: the largest layer of a 7B block is down_proj [4096, 11008] (in = 11008).
        const double down = cloq::estimate_layer_solve_bytes(4096, 11008, s);
        QVERIFY(down > cloq::estimate_layer_solve_bytes(11008, 4096, s));
        QVERIFY(cloq::estimate_analysis_bytes(llama2_7b(), s) > down);
    }

    void hostile_sizes_saturate_instead_of_wrapping() {
        cloq::ModelConfig c = stories260k();
        c.hidden_size = int64_t{1} << 40;
        c.intermediate_size = std::numeric_limits<int64_t>::max();
        cloq::CalibSettings s;
        s.nsamples = std::numeric_limits<int>::max(), s.seqlen = std::numeric_limits<int>::max();
        QCOMPARE(cloq::estimate_calibration_bytes(c, s), std::numeric_limits<uint64_t>::max());
        QCOMPARE(cloq::estimate_analysis_bytes(c, cloq::LayerSettings{}), std::numeric_limits<uint64_t>::max());
        // Negative sizes (a config.json that validation has not seen yet) count as zero, not as huge.
        cloq::ModelConfig neg = stories260k();
        neg.hidden_size = -64;
        QVERIFY(cloq::estimate_calibration_bytes(neg, cloq::CalibSettings{}) <
                cloq::estimate_calibration_bytes(stories260k(), cloq::CalibSettings{}));
    }

    void refuses_with_a_message_naming_the_settings() {
        cloq::CalibSettings s;
        s.nsamples = 1000000, s.seqlen = 2048;
        try {
            cloq::check_calibration_memory(llama2_7b(), s, cloq::memory_budget("1G"));
            QFAIL("a 2-trillion-token calibration was accepted with 1 GiB");
        } catch (const cloq::Error& e) {
            const std::string m = e.what();
            QVERIFY2(m.find("calibration with 1000000 x 2048 tokens needs about ") == 0, e.what());
            QVERIFY2(m.find("but only 1.0 GiB is available (CLOQ_MEMORY_LIMIT); lower --nsamples or --seqlen") !=
                         std::string::npos,
                     e.what());
        }
        // The demo settings fit comfortably in 1 GiB.
        const auto one_gib = cloq::memory_budget("1G");
        cloq::CalibSettings demo;
        demo.nsamples = 32, demo.seqlen = 256;
        cloq::check_calibration_memory(stories260k(), demo, one_gib);
        QVERIFY(cloq::estimate_calibration_bytes(stories260k(), demo) < (16u << 20));
        cloq::check_analysis_memory(stories260k(), cloq::LayerSettings{}, one_gib);
        QVERIFY_THROWS_EXCEPTION(cloq::Error, cloq::check_analysis_memory(llama2_7b(), cloq::LayerSettings{}, one_gib));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, cloq::check_layer_memory(100000, 100000, cloq::LayerSettings{}, one_gib));
    }

    void formats_sizes_for_people() {
        QCOMPARE(QString::fromStdString(cloq::format_bytes(512)), QString("1 KiB"));
        QCOMPARE(QString::fromStdString(cloq::format_bytes(uint64_t{300} << 20)), QString("300 MiB"));
        QCOMPARE(QString::fromStdString(cloq::format_bytes((uint64_t{123} << 30) / 10)), QString("12.3 GiB"));
        QCOMPARE(QString::fromStdString(cloq::format_bytes(uint64_t{3} << 40)), QString("3.0 TiB"));
    }
};

QTEST_APPLESS_MAIN(TestResourceLimits)
#include "test_resource_limits.moc"
