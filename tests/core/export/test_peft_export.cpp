// PEFT adapter export: PEFT's effective weight s·lora_B·lora_A equals the solved B·A for any lora_alpha (checked in
// float64 with Eigen from the raw file bytes), only long-standing config keys, rank/alpha patterns that PEFT's two
// historical matchers resolve to exactly one module, byte-valid safetensors, and clear errors for bad adapters.
#include <torch/torch.h>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"
#include "expect_error.h"
#include "export/peft_export.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::expect_error;
namespace fs = std::filesystem;

namespace {
std::vector<std::string> all_modules(int layers) {
    std::vector<std::string> out;
    for (int l = 0; l < layers; ++l)
        for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
            out.push_back("model.layers." + std::to_string(l) + "." + m);
    return out;
}

LowRank random_lowrank(int64_t out, int64_t in, int64_t r, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    return {torch::randn({r, in}, gen, torch::kFloat32), torch::randn({out, r}, gen, torch::kFloat32)};
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
}  // namespace

class TestPeftExport : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void scalingCompensated_data() {
        QTest::addColumn<double>("alpha");
        QTest::addColumn<int>("rank");
        QTest::newRow("alpha 16 r 16 (s=1)") << 16.0 << 16;
        QTest::newRow("alpha 16 r 64 (s=1/4)") << 16.0 << 64;
        QTest::newRow("alpha 1 r 8") << 1.0 << 8;
        QTest::newRow("alpha 128 r 4") << 128.0 << 4;
    }
    void scalingCompensated() {
        QFETCH(double, alpha);
        QFETCH(int, rank);
        QTemporaryDir tmp;
        const auto solved = random_lowrank(96, 64, rank, 11);
        write_peft_adapter(tmp.path().toStdString(), {{"model.layers.0.self_attn.q_proj", solved, alpha}},
                           all_modules(1), "base");
        // Independent check from the raw file: s·B·A in float64 (Eigen) equals the solved B·A.
        SafetensorsFile f(tmp.filePath("adapter_model.safetensors").toStdString());
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
        const auto A = test::to_eigen(f.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
        const auto B = test::to_eigen(f.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"));
        QCOMPARE(A.rows(), static_cast<Eigen::Index>(rank));
        QCOMPARE(A.cols(), Eigen::Index(64));
        QCOMPARE(B.rows(), Eigen::Index(96));
        QCOMPARE(B.cols(), static_cast<Eigen::Index>(rank));
        const test::MatrixXd peft = (alpha / rank) * B * A;
        const test::MatrixXd want = test::to_eigen(solved.B) * test::to_eigen(solved.A);
        const double rel = (peft - want).norm() / want.norm();
        QVERIFY2(rel < 1e-6, qPrintable(QString::number(rel)));
        // And through the reader.
        const auto back = read_peft_adapter(tmp.path().toStdString());
        const auto d = test::to_eigen(back.delta("model.layers.0.self_attn.q_proj"));
        QVERIFY((d - want).norm() / want.norm() < 1e-6);
        QCOMPARE(back.modules.at("model.layers.0.self_attn.q_proj").scaling, alpha / rank);
    }

    void configKeysAreLongStanding() {
        QTemporaryDir tmp;
        std::vector<PeftModuleAdapter> mods;
        int seed = 0;
        for (const auto& m : all_modules(2)) mods.push_back({m, random_lowrank(32, 32, 8, ++seed), 16.0});
        write_peft_adapter(tmp.path().toStdString(), mods, all_modules(2), "/models/stories260K");
        std::ifstream in(tmp.filePath("adapter_config.json").toStdString());
        const auto c = nlohmann::json::parse(in);
        const std::set<std::string> allowed = {
            "peft_type",      "task_type",         "base_model_name_or_path", "r",
            "lora_alpha",     "lora_dropout",      "target_modules",          "bias",
            "fan_in_fan_out", "init_lora_weights", "inference_mode",          "modules_to_save"};
        for (const auto& [k, v] : c.items()) QVERIFY2(allowed.count(k), k.c_str());
        QCOMPARE(c["peft_type"].get<std::string>(), std::string("LORA"));
        QCOMPARE(c["task_type"].get<std::string>(), std::string("CAUSAL_LM"));
        QCOMPARE(c["r"].get<int>(), 8);
        QCOMPARE(c["lora_alpha"].get<double>(), 16.0);
        QCOMPARE(c["bias"].get<std::string>(), std::string("none"));
        QCOMPARE(c["fan_in_fan_out"].get<bool>(), false);
        QCOMPARE(c["init_lora_weights"].get<bool>(), true);
        QCOMPARE(c["base_model_name_or_path"].get<std::string>(), std::string("/models/stories260K"));
        const auto t = c["target_modules"].get<std::vector<std::string>>();
        QCOMPARE(std::set<std::string>(t.begin(), t.end()),
                 (std::set<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));
        SafetensorsFile f(tmp.filePath("adapter_model.safetensors").toStdString());
        QCOMPARE(f.names().size(), size_t(28));
    }

    void perLayerRanksAndPatterns() {
        // Block 0 gets rank 16 (and alpha 32 on its down_proj), block 1..2 rank 8; block 2 skips v_proj.
        std::vector<PeftModuleInfo> infos;
        for (const auto& m : all_modules(12)) {
            const bool first = m.find("layers.0.") != std::string::npos;
            const bool skip = m.find("layers.2.self_attn.v_proj") != std::string::npos;
            const bool down0 = m == "model.layers.0.mlp.down_proj";
            infos.push_back({m, skip ? 0 : (first ? 16 : 8), down0 ? 32.0 : 16.0});
        }
        const auto c = peft_adapter_config(infos, all_modules(12), "b");
        QCOMPARE(c["r"].get<int>(), 8);
        QVERIFY(c["rank_pattern"].is_object());
        QCOMPARE(c["rank_pattern"].size(), size_t(7));
        QCOMPARE(c["alpha_pattern"].size(), size_t(1));
        // target_modules must be a regex naming exactly the adapted modules (v_proj of block 2 is not).
        QVERIFY(c["target_modules"].is_string());
        const std::regex target(c["target_modules"].get<std::string>());
        for (const auto& i : infos) QCOMPARE(std::regex_match(i.module, target), i.rank > 0);
        // Both PEFT matchers, "(.*\.)?KEY$" (>= 0.7.1) and ".*\.KEY$" (0.6), resolve each key to exactly its module
        // (no layers.1 / layers.11 confusion).
        for (const auto& [key, v] : c["rank_pattern"].items()) {
            int new_hits = 0, old_hits = 0;
            std::string hit;
            for (const auto& m : all_modules(12)) {
                if (std::regex_match(m, std::regex("(.*\\.)?(" + key + ")"))) {
                    ++new_hits;
                    hit = m;
                }
                if (std::regex_match(m, std::regex(".*\\." + key))) ++old_hits;
            }
            QCOMPARE(new_hits, 1);
            QCOMPARE(old_hits, 1);
            QVERIFY(hit.find("layers.0.") != std::string::npos);
            QCOMPARE(v.get<int>(), 16);
        }
        // Written and read back: ranks and alphas per module resolved through the patterns.
        QTemporaryDir tmp;
        std::vector<PeftModuleAdapter> mods;
        int seed = 0;
        for (const auto& i : infos)
            mods.push_back({i.module, i.rank ? random_lowrank(32, 32, i.rank, ++seed) : LowRank{}, i.lora_alpha});
        write_peft_adapter(tmp.path().toStdString(), mods, all_modules(12), "b");
        const auto back = read_peft_adapter(tmp.path().toStdString());
        QCOMPARE(back.modules.size(), size_t(12 * 7 - 1));
        QCOMPARE(back.modules.at("model.layers.0.self_attn.q_proj").rank, int64_t(16));
        QCOMPARE(back.modules.at("model.layers.10.self_attn.q_proj").rank, int64_t(8));
        QCOMPARE(back.modules.at("model.layers.0.mlp.down_proj").lora_alpha, 32.0);
        QCOMPARE(back.modules.at("model.layers.1.mlp.down_proj").lora_alpha, 16.0);
        for (const auto& m : mods) {
            if (m.solved.rank() == 0) continue;
            const auto want = m.solved.B.to(torch::kFloat64).mm(m.solved.A.to(torch::kFloat64));
            const double rel = ((back.delta(m.module).to(torch::kFloat64) - want).norm() / want.norm()).item<double>();
            QVERIFY2(rel < 1e-6, m.module.c_str());
        }
    }

    void mergedWeights() {
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        auto gen = at::detail::createCPUGenerator(5);
        const auto W = torch::randn({32, 64}, gen);
        const auto E = torch::randn({10, 32}, gen);
        write_safetensors(dir + "/model.safetensors",
                          {{"model.layers.0.self_attn.q_proj.weight", W}, {"model.embed_tokens.weight", E}});
        fs::create_directory(dir + "/ad");
        const auto lr = random_lowrank(32, 64, 4, 6);
        write_peft_adapter(dir + "/ad", {{"model.layers.0.self_attn.q_proj", lr, 8.0}}, all_modules(1), "b");
        auto base = std::make_shared<SafetensorsWeights>(dir + "/model.safetensors");
        auto ad = std::make_shared<PeftAdapter>(read_peft_adapter(dir + "/ad"));
        AdapterMergedWeights merged(base, ad);
        const auto got = test::to_eigen(merged.load("model.layers.0.self_attn.q_proj.weight"));
        const test::MatrixXd want = test::to_eigen(W) + test::to_eigen(lr.B) * test::to_eigen(lr.A);
        QVERIFY((got - want).norm() / want.norm() < 1e-6);
        QVERIFY(torch::equal(merged.load("model.embed_tokens.weight"), E));
        // An adapter for a module the model does not have.
        fs::create_directory(dir + "/ad2");
        write_peft_adapter(dir + "/ad2", {{"model.layers.5.self_attn.q_proj", lr, 8.0}}, all_modules(1), "b");
        auto ad2 = std::make_shared<PeftAdapter>(read_peft_adapter(dir + "/ad2"));
        expect_error([&] { AdapterMergedWeights(base, ad2); }, {"ad2", "model.layers.5.self_attn.q_proj"});
    }

    void rejectsBadAdapters() {
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        expect_error([&] { read_peft_adapter((dir / "none").string()); }, {"none", "does not exist"});
        write_peft_adapter(dir.string(), {{"model.layers.0.self_attn.q_proj", random_lowrank(32, 32, 4, 1), 16.0}},
                           all_modules(1), "b");
        const std::string good_cfg = [&] {
            std::ifstream in(dir / "adapter_config.json");
            return std::string(std::istreambuf_iterator<char>(in), {});
        }();
        auto with_cfg = [&](const std::string& from, const std::string& to) {
            std::string s = good_cfg;
            const auto pos = s.find(from);
            QVERIFY2(pos != std::string::npos, from.c_str());
            s.replace(pos, from.size(), to);
            write_text(dir / "adapter_config.json", s);
        };
        with_cfg("\"LORA\"", "\"IA3\"");
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "LORA"});
        with_cfg("\"r\": 4", "\"r\": 8");
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", "rank 4", "r = 8"});
        with_cfg("\"fan_in_fan_out\": false", "\"fan_in_fan_out\": true");
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "fan_in_fan_out"});
        with_cfg("\"bias\": \"none\"", "\"bias\": \"none\", \"use_dora\": true");
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "DoRA"});
        write_text(dir / "adapter_config.json", "{ not json");
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_config.json", "not valid JSON"});
        write_text(dir / "adapter_config.json", good_cfg);
        // A lone lora_A, and NaN values.
        write_safetensors((dir / "adapter_model.safetensors").string(),
                          {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", torch::zeros({4, 32})}});
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", "only one of"});
        write_safetensors(
            (dir / "adapter_model.safetensors").string(),
            {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", torch::full({4, 32}, std::nan(""))},
             {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", torch::zeros({32, 4})}});
        expect_error([&] { read_peft_adapter(dir.string()); }, {"adapter_model.safetensors", "NaN"});
        // Nothing to export.
        expect_error(
            [&] {
                peft_adapter_config({{"model.layers.0.self_attn.q_proj", 0, 16}}, all_modules(1), "b");
            },
            {"rank"});
    }
};

QTEST_APPLESS_MAIN(TestPeftExport)
#include "test_peft_export.moc"
