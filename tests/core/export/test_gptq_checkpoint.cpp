// GPTQ checkpoints: config keys, the `dynamic` map (per-module bits/groups, "-:" for unquantized modules) with
// GPTQModel's matching semantics, a streamed model.safetensors that the strict reader accepts, and the reader
// (GptqCheckpointWeights) dequantizing exactly what was packed; malformed checkpoints give clear errors.
#include <torch/torch.h>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cloq/base/error.h"
#include "cloq/export/gptq_checkpoint.h"
#include "cloq/io/safetensors.h"
#include "cloq/quant/quant_int.h"
#include "expect_error.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::expect_error;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    std::map<std::string, QuantizedWeight> quantized;  // module -> stored (fp16-scale) quantization
    torch::Tensor down_w, embed;
};

// One block: q (2-bit g64), k (3-bit g32 via dynamic), v (4-bit per-channel), down_proj unpackable (in 172).
Fixture write_checkpoint(const std::string& dir, GptqFormat fmt) {
    auto gen = at::detail::createCPUGenerator(17);
    Fixture fx;
    std::vector<GptqModuleInfo> infos;
    std::vector<SafetensorsEntry> entries;
    fx.embed = torch::randn({16, 64}, gen);
    entries.push_back({"model.embed_tokens.weight", torch::kFloat32, {16, 64}, [e = fx.embed] { return e; }});
    struct Spec {
        const char* module;
        int64_t out, in;
        int bits, group;
    };
    for (const Spec& s : {Spec{"model.layers.0.self_attn.q_proj", 64, 64, 2, 64},
                          Spec{"model.layers.0.self_attn.k_proj", 32, 64, 3, 32},
                          Spec{"model.layers.0.self_attn.v_proj", 32, 64, 4, -1}}) {
        IntQuantSpec spec;
        spec.bits = s.bits;
        spec.group = s.group;
        auto qw = round_scales_to_fp16(quantize_rtn(torch::randn({s.out, s.in}, gen), spec));
        for (auto& e : gptq_entries(s.module, pack_gptq(qw, fmt, s.module))) entries.push_back(e);
        fx.quantized[s.module] = qw;
        infos.push_back({s.module, true, s.bits, s.group});
    }
    fx.down_w = torch::randn({64, 172}, gen);
    entries.push_back(
        {"model.layers.0.mlp.down_proj.weight", torch::kFloat32, {64, 172}, [w = fx.down_w] { return w; }});
    infos.push_back({"model.layers.0.mlp.down_proj", false, 2, 64});
    GptqExportConfig g;
    g.bits = 2;
    g.group_size = 64;
    g.format = fmt;
    const auto q = gptq_quantization_config(g, infos);
    nlohmann::ordered_json src = {
        {"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"torch_dtype", "float32"}};
    write_gptq_checkpoint(dir, src, q, entries);
    return fx;
}
}  // namespace

class TestGptqCheckpoint : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void configAndDynamic() {
        GptqExportConfig g;
        g.bits = 2;
        g.group_size = 64;
        g.format = GptqFormat::V2;
        const auto q = gptq_quantization_config(g, {{"model.layers.0.self_attn.q_proj", true, 2, 64},
                                                    {"model.layers.0.mlp.down_proj", true, 3, 64},
                                                    {"model.layers.1.mlp.down_proj", true, 3, 64},
                                                    {"model.layers.10.mlp.down_proj", true, 2, 64},
                                                    {"model.layers.1.mlp.up_proj", false, 2, 64}});
        QCOMPARE(q["bits"].get<int>(), 2);
        QCOMPARE(q["group_size"].get<int>(), 64);
        QCOMPARE(q["desc_act"].get<bool>(), false);
        QCOMPARE(q["sym"].get<bool>(), false);
        QCOMPARE(q["damp_percent"].get<double>(), 0.01);
        QCOMPARE(q["quant_method"].get<std::string>(), std::string("gptq"));
        QCOMPARE(q["checkpoint_format"].get<std::string>(), std::string("gptq_v2"));
        QCOMPARE(q["format"].get<std::string>(), std::string("gptq_v2"));  // GPTQModel's key
        QCOMPARE(q["meta"]["quantizer"][0].get<std::string>(), std::string("cloq:") + CLOQ_VERSION);
        QCOMPARE(q["meta"]["damp_percent"].get<double>(), 0.01);
        QCOMPARE(q["meta"]["true_sequential"].get<bool>(), true);
        QCOMPARE(q["meta"]["static_groups"].get<bool>(), false);
        // transformers + optimum read only modules_in_block_to_quantize: it lists the suffixes quantized in every
        // block; up_proj (float in block 1) is not there, so those loaders leave it nn.Linear.
        QCOMPARE(q["modules_in_block_to_quantize"].dump(), std::string(R"([["self_attn.q_proj","mlp.down_proj"]])"));
        QVERIFY(q["dynamic"].is_object());
        auto lookup = [&](const std::string& m, int& bits, int& group) {
            bits = 2;
            group = 64;
            return gptq_dynamic_lookup(q["dynamic"], m, bits, group, "cfg");
        };
        int b = 0, gs = 0;
        QVERIFY(lookup("model.layers.0.mlp.down_proj", b, gs));
        QCOMPARE(b, 3);
        QVERIFY(lookup("model.layers.1.mlp.down_proj", b, gs));
        QCOMPARE(b, 3);
        QVERIFY(lookup("model.layers.10.mlp.down_proj", b, gs));  // not confused with layers.1
        QCOMPARE(b, 2);
        QVERIFY(lookup("model.layers.0.self_attn.q_proj", b, gs));
        QCOMPARE(b, 2);
        QVERIFY(!lookup("model.layers.1.mlp.up_proj", b, gs));
        QVERIFY(lookup("model.layers.11.mlp.up_proj", b, gs));
        // GPTQModel's semantics: the first matching pattern decides; re.match anchors at the start only.
        const nlohmann::ordered_json dyn = {{"-:.*down_proj", nlohmann::ordered_json::object()},
                                            {"+:model\\.layers\\.0\\.", {{"bits", 4}}},
                                            {".*mlp", {{"group_size", 128}}}};
        b = 2, gs = 64;
        QVERIFY(!gptq_dynamic_lookup(dyn, "model.layers.0.mlp.down_proj", b, gs, "cfg"));
        QVERIFY(gptq_dynamic_lookup(dyn, "model.layers.0.mlp.up_proj", b, gs, "cfg"));
        QCOMPARE(b, 4);
        QCOMPARE(gs, 64);
        b = 2, gs = 64;
        QVERIFY(gptq_dynamic_lookup(dyn, "model.layers.3.mlp.up_proj", b, gs, "cfg"));
        QCOMPARE(b, 2);
        QCOMPARE(gs, 128);
        b = 2, gs = 64;
        QVERIFY(gptq_dynamic_lookup(dyn, "xmodel.layers.0.self_attn.q_proj", b, gs, "cfg"));
        QCOMPARE(b, 2);  // "+:model..." must match at the start
        expect_error(
            [&] {
                gptq_dynamic_lookup({{"+:(", {{"bits", 3}}}}, "m", b, gs, "config.json");
            },
            {"config.json", "regular expression"});
        // A suffix quantized in one block and float in another cannot be said to optimum: it is left out of the list
        // (never quantized by those loaders) and a notice names it and the loaders that do read it.
        std::vector<std::string> notices;
        const auto mixed = gptq_quantization_config(
            g, {{"model.layers.0.mlp.up_proj", true, 2, 64}, {"model.layers.1.mlp.up_proj", false, 2, 64}}, &notices);
        QCOMPARE(mixed["modules_in_block_to_quantize"].dump(), std::string("[[]]"));
        QCOMPARE(notices.size(), size_t(1));
        QVERIFY(notices[0].find("mlp.up_proj") != std::string::npos);
        QVERIFY(notices[0].find("GPTQModel") != std::string::npos);
        // Nothing differs -> no dynamic key; a module with act-order when the rest has none gets "desc_act".
        QVERIFY(!gptq_quantization_config(g, {{"a", true, 2, 64}}).contains("dynamic"));
        const auto d = gptq_quantization_config(g, {{"a", true, 2, 64, false, true}})["dynamic"];
        QCOMPARE(d.size(), size_t(1));
        QCOMPARE(d.begin().value()["desc_act"].get<bool>(), true);
        QVERIFY(!d.begin().value().contains("sym"));
    }

    void writeAndReadBack_data() {
        QTest::addColumn<QString>("format");
        QTest::newRow("gptq") << "gptq";
        QTest::newRow("gptq_v2") << "gptq_v2";
    }
    void writeAndReadBack() {
        QFETCH(QString, format);
        const auto fmt = parse_gptq_format(format.toStdString());
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        const auto fx = write_checkpoint(dir, fmt);
        // Byte-valid safetensors (the strict reader re-validates offsets, sizes, dtypes) with metadata format pt.
        SafetensorsFile f(dir + "/model.safetensors");
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
        QCOMPARE(f.info("model.layers.0.self_attn.k_proj.qweight").dtype, std::string("I32"));
        QCOMPARE(f.info("model.layers.0.self_attn.k_proj.qweight").shape, (std::vector<int64_t>{6, 32}));
        QCOMPARE(f.info("model.layers.0.self_attn.k_proj.qzeros").shape, (std::vector<int64_t>{2, 3}));
        QCOMPARE(f.info("model.layers.0.self_attn.v_proj.scales").dtype, std::string("F16"));
        // config.json keeps the source keys and adds quantization_config; quantize_config.json has the same object.
        std::ifstream cin(dir + "/config.json");
        const auto cfg = nlohmann::json::parse(cin);
        QCOMPARE(cfg["hidden_size"].get<int>(), 64);
        QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("float16"));
        QCOMPARE(cfg["quantization_config"]["checkpoint_format"].get<std::string>(), format.toStdString());
        std::ifstream qin(dir + "/quantize_config.json");
        QCOMPARE(nlohmann::json::parse(qin), cfg["quantization_config"]);

        GptqCheckpointWeights w(dir);
        QCOMPARE(w.quantized_modules().size(), size_t(3));
        QCOMPARE(w.quantized_modules().at("model.layers.0.self_attn.k_proj").bits, 3);
        QCOMPARE(w.quantized_modules().at("model.layers.0.self_attn.k_proj").group_size, 32);
        QCOMPARE(w.quantized_modules().at("model.layers.0.self_attn.v_proj").bits, 4);
        auto names = w.names();
        std::sort(names.begin(), names.end());
        QCOMPARE(names, (std::vector<std::string>{"model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight",
                                                  "model.layers.0.self_attn.k_proj.weight",
                                                  "model.layers.0.self_attn.q_proj.weight",
                                                  "model.layers.0.self_attn.v_proj.weight"}));
        for (const auto& [module, qw] : fx.quantized) {
            QVERIFY2(torch::equal(w.load(module + ".weight"), qw.Q), module.c_str());
            QCOMPARE(w.shape(module + ".weight"), qw.Q.sizes().vec());
            const auto back = w.unpack(module);
            QVERIFY(torch::equal(back.codes, qw.codes));
            QVERIFY(torch::equal(back.zeros, qw.zeros));
        }
        QVERIFY(torch::equal(w.load("model.layers.0.mlp.down_proj.weight"), fx.down_w));
        QVERIFY(torch::equal(w.load("model.embed_tokens.weight"), fx.embed));
        QVERIFY(w.contains("model.layers.0.self_attn.q_proj.weight"));
        QVERIFY(!w.contains("model.layers.0.self_attn.o_proj.weight"));
    }

    void rejectsMalformed() {
        QTemporaryDir tmp;
        const std::string dir = tmp.path().toStdString();
        write_checkpoint(dir, GptqFormat::V2);
        const auto cfg = read_json_file(dir + "/config.json");
        auto with_qcfg = [&](const std::function<void(nlohmann::ordered_json&)>& edit) {
            auto c = cfg;
            edit(c["quantization_config"]);
            write_json_file_atomic(dir + "/config.json", c);
        };
        with_qcfg([](auto& q) { q["quant_method"] = "awq"; });
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"config.json", "awq"});
        with_qcfg([](auto& q) { q["checkpoint_format"] = "marlin"; });
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"config.json", "marlin"});
        // GPTQModel reads `format`, transformers `checkpoint_format`: a file where they disagree is refused.
        with_qcfg([](auto& q) { q["format"] = "gptq"; });
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"config.json", "disagree"});
        with_qcfg([](auto& q) { q.erase("checkpoint_format"); });  // `format` alone (GPTQModel's files) is read
        GptqCheckpointWeights format_only(dir);
        with_qcfg([](auto& q) {
            q["bits"] = 4;
            q.erase("dynamic");
        });  // q_proj holds 2-bit packing
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"model.safetensors", "q_proj", "4 bits"});
        with_qcfg([](auto& q) { q["dynamic"] = {{"-:.*q_proj", nlohmann::ordered_json::object()}}; });
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"q_proj", "excludes"});
        with_qcfg([](auto& q) { q.erase("bits"); });
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"config.json", "bits"});
        write_json_file_atomic(dir + "/config.json", cfg);
        GptqCheckpointWeights ok(dir);
        // A checkpoint missing one packed tensor.
        SafetensorsWeights st(dir);
        std::vector<std::pair<std::string, torch::Tensor>> tensors;
        for (const auto& n : st.names())
            if (n != "model.layers.0.self_attn.q_proj.qzeros") tensors.emplace_back(n, st.tensor(n));
        write_safetensors(dir + "/model.safetensors", tensors);
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"model.safetensors", "q_proj", "qzeros"});
        expect_error([&] { GptqCheckpointWeights w(dir + "/nope"); }, {"nope", "does not exist"});
        fs::remove(dir + "/config.json");
        fs::remove(dir + "/quantize_config.json");
        expect_error([&] { GptqCheckpointWeights w(dir); }, {"quantize_config.json"});
    }

    void copiesTokenizerFiles() {
        QTemporaryDir src, dst;
        std::ofstream(src.filePath("tokenizer.model").toStdString()) << "spm";
        std::ofstream(src.filePath("tokenizer_config.json").toStdString()) << "{}";
        std::ofstream(src.filePath("unrelated.txt").toStdString()) << "x";
        const auto copied = copy_tokenizer_files(src.path().toStdString(), dst.path().toStdString());
        QCOMPARE(copied, (std::vector<std::string>{"tokenizer.model", "tokenizer_config.json"}));
        QVERIFY(QFile::exists(dst.filePath("tokenizer.model")));
        QVERIFY(!QFile::exists(dst.filePath("unrelated.txt")));
    }

    // A folder with only a SentencePiece model (stories260K) gets a tokenizer_config.json naming Llama's tokenizer
    // and its special pieces, read from the model: without it transformers 5 builds a generic tokenizer whose ids
    // differ from the first word (no dummy-prefix space).
    void writesTokenizerConfigForABareSentencePieceModel() {
        QTemporaryDir dst;
        const std::string src = cloq::test::demo_model_dir();
        const auto copied = copy_tokenizer_files(src, dst.path().toStdString());
        QCOMPARE(copied, (std::vector<std::string>{"tokenizer.model", "tokenizer_config.json"}));
        std::ifstream in(dst.filePath("tokenizer_config.json").toStdString());
        const auto cfg = nlohmann::json::parse(in);
        QCOMPARE(cfg["tokenizer_class"].get<std::string>(), std::string("LlamaTokenizer"));
        QCOMPARE(cfg["bos_token"].get<std::string>(), std::string("<s>"));
        QCOMPARE(cfg["eos_token"].get<std::string>(), std::string("</s>"));
        QCOMPARE(cfg["unk_token"].get<std::string>(), std::string("<unk>"));
        QVERIFY(cfg["add_bos_token"].get<bool>() && cfg["legacy"].get<bool>());
    }
};

QTEST_APPLESS_MAIN(TestGptqCheckpoint)
#include "test_gptq_checkpoint.moc"
