// config.json parsing and open_model on HF folders: the real stories260K folder, the other supported families,
// and malformed folders (truncated safetensors, overlapping offsets, missing tensors, shape mismatch, unsupported
// architecture, missing config), each a one-line cloq::Error naming the file and the problem.
#include <QtTest/QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cloq/base/error.h"
#include "cloq/io/safetensors.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"
#include "test_support.h"

using namespace cloq;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
json demo_config() {
    std::ifstream in(cloq::test::demo_model_dir() + "/config.json");
    return json::parse(in);
}
// A copy of the demo folder whose files a test may then damage.
std::string copy_demo(const QTemporaryDir& dir) {
    const std::string d = dir.filePath("model").toStdString();
    fs::create_directories(d);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"})
        fs::copy_file(cloq::test::demo_model_dir() + "/" + f, d + "/" + f);
    return d;
}
void write_text(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }
std::string open_error(const std::string& path) {
    try {
        open_model(path);
        return "";
    } catch (const cloq::Error& e) {
        return e.what();
    }
}
// Rewrites model.safetensors keeping all tensors except `drop`, optionally with raw header edits.
void rewrite_weights(const std::string& dir, const std::string& drop) {
    SafetensorsFile f(cloq::test::demo_model_dir() + "/model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (const auto& n : f.names())
        if (n != drop) ts.emplace_back(n, f.tensor(n));
    write_safetensors(dir + "/model.safetensors", ts, {{"format", "pt"}});
}
}  // namespace

class TestModelFiles : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void opensDemoModel() {
        const auto m = open_model(cloq::test::demo_model_dir());
        QCOMPARE(m.format, std::string("hf"));
        const auto& c = m.config;
        QCOMPARE(c.architecture, std::string("LlamaForCausalLM"));
        QCOMPARE(c.hidden_size, int64_t(64));
        QCOMPARE(c.intermediate_size, int64_t(172));
        QCOMPARE(c.num_layers, int64_t(5));
        QCOMPARE(c.num_heads, int64_t(8));
        QCOMPARE(c.num_kv_heads, int64_t(4));
        QCOMPARE(c.head_dim, int64_t(8));
        QCOMPARE(c.vocab_size, int64_t(512));
        QCOMPARE(c.max_position_embeddings, int64_t(512));
        QCOMPARE(c.rms_norm_eps, 1e-5);
        QVERIFY(c.tie_word_embeddings);
        QCOMPARE(c.num_parameters(), int64_t(260032));  // SOURCE.md
        int64_t stored = 0;
        for (const auto& n : m.weights->names()) {
            int64_t k = 1;
            for (auto d : m.weights->shape(n)) k *= d;
            stored += k;
        }
        QCOMPARE(stored, c.num_parameters());
        QCOMPARE(linear_layers(c).size(), size_t(35));
        QCOMPARE(linear_layers(c)[6].name(), std::string("model.layers.0.mlp.down_proj"));
        QCOMPARE(linear_layers(c)[6].in, int64_t(172));
        QCOMPARE(m.weights->fingerprint().size(), size_t(32));
    }

    void configRoundTripsAndOtherFamilies() {
        const auto c = model_config_from_hf_json(demo_config(), "config.json");
        const auto back = model_config_from_hf_json(model_config_to_hf_json(c), "round trip");
        QCOMPARE(back.num_parameters(), c.num_parameters());
        QCOMPARE(back.num_kv_heads, c.num_kv_heads);
        QCOMPARE(back.tie_word_embeddings, c.tie_word_embeddings);

        json q = demo_config();
        q["architectures"] = {"Qwen2ForCausalLM"};
        q["model_type"] = "qwen2";
        q["head_dim"] = 16;  // explicit head_dim different from hidden/heads
        const auto qc = model_config_from_hf_json(q, "qwen.json");
        QVERIFY(qc.attention_bias);
        QCOMPARE(qc.head_dim, int64_t(16));
        QCOMPARE(qc.q_out(), int64_t(128));
        bool has_bias = false;
        for (const auto& [n, s] : expected_tensors(qc)) has_bias |= n == "model.layers.0.self_attn.k_proj.bias";
        QVERIFY(has_bias);

        json mi = demo_config();
        mi.erase("architectures");
        mi["model_type"] = "mistral";
        mi["sliding_window"] = 4096;
        QCOMPARE(model_config_from_hf_json(mi, "m.json").sliding_window, int64_t(4096));
        // eos as a list (Llama 3), bos null
        json l3 = demo_config();
        l3["eos_token_id"] = {128001, 128008};
        l3["bos_token_id"] = nullptr;
        const auto l3c = model_config_from_hf_json(l3, "l3.json");
        QCOMPARE(l3c.eos_token_id, int64_t(128001));
        QCOMPARE(l3c.bos_token_id, int64_t(-1));
    }

    void llama3RopeScalingMatchesFormula() {
        json j = demo_config();
        j["rope_theta"] = 500000.0;
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", 8.0},
                             {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0},
                             {"original_max_position_embeddings", 64}};
        const auto c = model_config_from_hf_json(j, "l3.json");
        const auto f = rope_inv_freq(c);
        QCOMPARE(f.size(), size_t(4));
        // transformers' _compute_llama3_parameters, written out per frequency
        for (size_t i = 0; i < f.size(); ++i) {
            const double base = 1.0 / std::pow(500000.0, 2.0 * i / 8.0), wl = 2 * M_PI / base;
            double want = base;
            if (wl > 64.0 / 1.0)
                want = base / 8.0;
            else if (wl >= 64.0 / 4.0) {
                const double s = (64.0 / wl - 1.0) / (4.0 - 1.0);
                want = (1 - s) * base / 8.0 + s * base;
            }
            QVERIFY(std::abs(f[i] - want) <= 1e-15 * want);
        }
        j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
        QVERIFY_THROWS_EXCEPTION(cloq::Error, model_config_from_hf_json(j, "y.json"));
    }

    void rejectsBadConfigs_data() {
        QTest::addColumn<QString>("patch");  // JSON merge-patch applied to the demo config
        QTest::addColumn<QString>("expected");
        QTest::newRow("architecture") << R"({"architectures":["GPT2LMHeadModel"]})"
                                      << "architecture 'GPT2LMHeadModel' is not supported (supported: LlamaForCausalLM";
        QTest::newRow("missing field") << R"({"hidden_size":null})"
                                       << "missing \"hidden_size\"";
        QTest::newRow("wrong type") << R"({"num_hidden_layers":"five"})"
                                    << "\"num_hidden_layers\" must be an integer";
        QTest::newRow("heads") << R"({"num_key_value_heads":3})"
                               << "not a multiple of num_key_value_heads";
        QTest::newRow("hidden/heads") << R"({"num_attention_heads":7,"num_key_value_heads":7})"
                                      << "not a multiple of 7 heads";
        QTest::newRow("activation") << R"({"hidden_act":"gelu"})"
                                    << "hidden_act 'gelu' is not supported";
        QTest::newRow("zero size") << R"({"intermediate_size":0})"
                                   << "intermediate_size must be positive";
        QTest::newRow("bias") << R"({"attention_bias":true})"
                              << "attention_bias";
    }
    void rejectsBadConfigs() {
        QFETCH(QString, patch);
        QFETCH(QString, expected);
        json j = demo_config();
        j.merge_patch(json::parse(patch.toStdString()));
        // merge_patch deletes keys set to null; put an explicit null back for the "missing" case
        try {
            model_config_from_hf_json(j, "cfg/config.json");
            QFAIL("must throw");
        } catch (const cloq::Error& e) {
            const std::string msg = e.what();
            QVERIFY2(msg.find(expected.toStdString()) != std::string::npos, msg.c_str());
            QVERIFY2(msg.rfind("cfg/config.json", 0) == 0, "the message starts with the file");
        }
    }

    void rejectsMalformedFolders() {
        QTemporaryDir dir;
        // unsupported architecture
        std::string d = copy_demo(dir);
        json c = demo_config();
        c["architectures"] = {"MambaForCausalLM"};
        write_text(d + "/config.json", c.dump());
        std::string msg = open_error(d);
        QVERIFY2(msg.find("config.json: architecture 'MambaForCausalLM' is not supported") != std::string::npos,
                 msg.c_str());

        // shape mismatch with the config
        c = demo_config();
        c["intermediate_size"] = 128;
        write_text(d + "/config.json", c.dump());
        msg = open_error(d);
        QVERIFY2(
            msg.find("'model.layers.0.mlp.gate_proj.weight' has shape [172, 64] but the config implies [128, 64]") !=
                std::string::npos,
            msg.c_str());
        write_text(d + "/config.json", demo_config().dump());
        QCOMPARE(open_error(d), std::string());

        // untied config without lm_head
        c = demo_config();
        c["tie_word_embeddings"] = false;
        write_text(d + "/config.json", c.dump());
        msg = open_error(d);
        QVERIFY2(msg.find("'lm_head.weight' is missing") != std::string::npos, msg.c_str());
        write_text(d + "/config.json", demo_config().dump());

        // missing tensor
        rewrite_weights(d, "model.layers.2.mlp.up_proj.weight");
        msg = open_error(d);
        QVERIFY2(msg.find("tensor 'model.layers.2.mlp.up_proj.weight' is missing") != std::string::npos, msg.c_str());

        // truncated safetensors
        fs::copy_file(cloq::test::demo_model_dir() + "/model.safetensors", d + "/model.safetensors",
                      fs::copy_options::overwrite_existing);
        fs::resize_file(d + "/model.safetensors", fs::file_size(d + "/model.safetensors") - 1000);
        msg = open_error(d);
        QVERIFY2(msg.find("model.safetensors") != std::string::npos && msg.find("truncated") != std::string::npos,
                 msg.c_str());

        // overlapping offsets: the second tensor in the buffer starts inside the first
        {
            SafetensorsFile f(cloq::test::demo_model_dir() + "/model.safetensors");
            json h = json::object();
            std::string data;
            uint64_t off = 0;
            const auto names = f.names();
            for (size_t i = 0; i < names.size(); ++i) {
                const auto& info = f.info(names[i]);
                const uint64_t begin = i == 1 ? off - 4 : off;  // overlap by one float
                h[names[i]] = {
                    {"dtype", info.dtype}, {"shape", info.shape}, {"data_offsets", {begin, begin + info.nbytes()}}};
                data.append(reinterpret_cast<const char*>(f.bytes(names[i])), info.nbytes() - (i == 1 ? 4 : 0));
                off = begin + info.nbytes();
            }
            std::string hs = h.dump();
            std::string len(8, '\0');
            for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
            write_text(d + "/model.safetensors", len + hs + data);
        }
        msg = open_error(d);
        QVERIFY2(msg.find("overlaps") != std::string::npos && msg.find("model.safetensors") != std::string::npos,
                 msg.c_str());

        // no config.json / no weights / not a folder
        fs::remove(d + "/config.json");
        msg = open_error(d);
        QVERIFY2(msg.find("no config.json") != std::string::npos, msg.c_str());
        write_text(d + "/config.json", demo_config().dump());
        fs::remove(d + "/model.safetensors");
        msg = open_error(d);
        QVERIFY2(msg.find("no model.safetensors") != std::string::npos, msg.c_str());
        msg = open_error(dir.filePath("nowhere").toStdString());
        QVERIFY2(msg.find("no such file or folder") != std::string::npos, msg.c_str());
        write_text(d + "/config.json", "{\"architectures\": [");
        msg = open_error(d);
        QVERIFY2(msg.find("config.json: not valid JSON") != std::string::npos, msg.c_str());
    }
};

QTEST_APPLESS_MAIN(TestModelFiles)
#include "test_model_files.moc"
