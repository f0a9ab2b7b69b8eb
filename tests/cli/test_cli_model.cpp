// The model commands in-process through cloq::cli::run: info (and malformed folders: one line, non-zero exit),
// calibrate (cache reuse), eval (float perplexity = SOURCE.md; --json contract), analyze (report files).
#include <QtTest/QtTest>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_run.h"
#include "cloq/io/safetensors.h"
#include "test_support.h"

using nlohmann::json;
namespace fs = std::filesystem;
using cloq::test::cloq_run;
using cloq::test::last_line;
using Run = cloq::test::CliRun;

namespace {
json demo_config() {
    std::ifstream in(cloq::test::demo_model_dir() + "/config.json");
    return json::parse(in);
}
std::string copy_demo(const std::string& root, const std::string& name) {
    const std::string d = root + "/" + name;
    fs::create_directories(d);
    for (const char* f : {"config.json", "model.safetensors", "tokenizer.model"})
        fs::copy_file(cloq::test::demo_model_dir() + "/" + f, d + "/" + f);
    return d;
}
}  // namespace

class TestCliModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void infoDescribesTheModel() {
        const auto r = cloq_run({"info", "--model", cloq::test::demo_model_dir()});
        QCOMPARE(r.code, 0);
        QVERIFY(r.out.find("LlamaForCausalLM") != std::string::npos);
        QVERIFY(r.out.find("260032") != std::string::npos);
        QVERIFY(r.out.find("8 heads, 4 KV heads") != std::string::npos);
        const auto j = cloq_run({"info", "--model", cloq::test::demo_model_dir(), "--json"});
        const json info = json::parse(last_line(j.out));
        QCOMPARE(info["parameters"].get<int64_t>(), int64_t(260032));
        QCOMPARE(info["linear_layers"].get<int>(), 35);
        QVERIFY(info["tokenizer"].get<std::string>().find("none") == std::string::npos);
    }

    void malformedFoldersFailWithOneLine() {
        QTemporaryDir tmp;
        const std::string root = tmp.path().toStdString();
        std::vector<std::pair<std::string, std::string>> cases;  // folder, expected fragment
        {
            const auto d = copy_demo(root, "truncated");
            fs::resize_file(d + "/model.safetensors", fs::file_size(d + "/model.safetensors") / 2);
            cases.push_back({d, "truncated"});
        }
        {
            const auto d = copy_demo(root, "overlap");
            cloq::SafetensorsFile f(cloq::test::demo_model_dir() + "/model.safetensors");
            json h = json::object();
            std::string data;
            uint64_t off = 0;
            const auto names = f.names();
            for (size_t i = 0; i < names.size(); ++i) {
                const auto& info = f.info(names[i]);
                const uint64_t begin = i == 2 ? off - 8 : off;
                h[names[i]] = {
                    {"dtype", info.dtype}, {"shape", info.shape}, {"data_offsets", {begin, begin + info.nbytes()}}};
                data.append(reinterpret_cast<const char*>(f.bytes(names[i])), info.nbytes() - (i == 2 ? 8 : 0));
                off = begin + info.nbytes();
            }
            const std::string hs = h.dump();
            std::string len(8, '\0');
            for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((hs.size() >> (8 * i)) & 0xff);
            std::ofstream(d + "/model.safetensors", std::ios::binary) << len << hs << data;
            cases.push_back({d, "overlaps"});
        }
        {
            const auto d = copy_demo(root, "missing");
            cloq::SafetensorsFile f(cloq::test::demo_model_dir() + "/model.safetensors");
            std::vector<std::pair<std::string, torch::Tensor>> ts;
            for (const auto& n : f.names())
                if (n != "model.layers.4.self_attn.o_proj.weight") ts.emplace_back(n, f.tensor(n));
            fs::remove(d + "/model.safetensors");
            cloq::write_safetensors(d + "/model.safetensors", ts);
            cases.push_back({d, "tensor 'model.layers.4.self_attn.o_proj.weight' is missing"});
        }
        {
            const auto d = copy_demo(root, "shape");
            json c = demo_config();
            c["num_key_value_heads"] = 8;
            std::ofstream(d + "/config.json") << c.dump();
            cases.push_back(
                {d, "'model.layers.0.self_attn.k_proj.weight' has shape [32, 64] but the config implies [64, 64]"});
        }
        {
            const auto d = copy_demo(root, "arch");
            json c = demo_config();
            c["architectures"] = {"FalconForCausalLM"};
            std::ofstream(d + "/config.json") << c.dump();
            cases.push_back({d, "architecture 'FalconForCausalLM' is not supported (supported: LlamaForCausalLM"});
        }
        for (const auto& [dir, expected] : cases) {
            const auto r = cloq_run({"info", "--model", dir});
            QCOMPARE(r.code, 1);
            QVERIFY2(r.err.find(expected) != std::string::npos, r.err.c_str());
            QVERIFY2(r.err.rfind("cloq info: ", 0) == 0, r.err.c_str());
            QCOMPARE(std::count(r.err.begin(), r.err.end(), '\n'), 1L);  // exactly one line
            QVERIFY(r.out.empty());
        }
        // Wrong usage: exit code 2.
        QCOMPARE(cloq_run({"info"}).code, 2);
        QCOMPARE(cloq_run({"info", "--model", cloq::test::demo_model_dir(), "--bogus"}).code, 2);
    }

    void calibrateCachesAndReuses() {
        QTemporaryDir cache;
        const std::vector<std::string> args = {"calibrate",
                                               "--model",
                                               cloq::test::demo_model_dir(),
                                               "--calib",
                                               cloq::test::tinystories_path(),
                                               "--calib-nsamples",
                                               "8",
                                               "--calib-seqlen",
                                               "128",
                                               "--cache",
                                               cache.path().toStdString(),
                                               "--json"};
        const auto a = cloq_run(args);
        QCOMPARE(a.code, 0);
        const json ja = json::parse(last_line(a.out));
        QCOMPARE(ja["from_cache"].get<bool>(), false);
        QCOMPARE(ja["tokens"].get<int>(), 1024);
        const auto b = cloq_run(args);
        QCOMPARE(b.code, 0);
        const json jb = json::parse(last_line(b.out));
        QCOMPARE(jb["from_cache"].get<bool>(), true);
        QCOMPARE(jb["key"], ja["key"]);
        // seqlen above the context: capped with a notice
        auto capped = args;
        capped[8] = "4096";
        const auto c = cloq_run(capped);
        QCOMPARE(c.code, 0);
        QVERIFY2(c.err.find("capped at the model's context of 512") != std::string::npos, c.err.c_str());
        QCOMPARE(cloq_run({"calibrate", "--model", cloq::test::demo_model_dir()}).code, 2);  // --calib required
        const auto missing =
            cloq_run({"calibrate", "--model", cloq::test::demo_model_dir(), "--calib", "/no/such.txt", "--no-cache"});
        QCOMPARE(missing.code, 1);
        QVERIFY(missing.err.find("/no/such.txt") != std::string::npos);
    }

    void evalFloatPrintsJsonContract() {
        const auto r = cloq_run({"eval", "--model", cloq::test::demo_model_dir(), "--data",
                                 cloq::test::tinystories_path(), "--seqlen", "256", "--nsamples", "32", "--json"});
        QCOMPARE(r.code, 0);
        const std::string line = last_line(r.out);
        QVERIFY2(line.rfind("{\"ppl\":", 0) == 0, line.c_str());
        const json j = json::parse(line);
        QVERIFY(std::abs(j["ppl"].get<double>() - 4.0791) < 1e-4);  // SOURCE.md
        QCOMPARE(j["tokens"].get<int>(), 8160);
        QCOMPARE(cloq_run({"eval", "--model", cloq::test::demo_model_dir(), "--data", cloq::test::tinystories_path(),
                           "--calib-nsamples", "4"})
                     .code,
                 2);  // calibration options need a quantized eval
    }

    // --logits-json with --greedy: what the interop checks compare with transformers' logits and generate().
    void evalWritesLogitsAndGreedyTokens() {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("logits.json").toStdString();
        const auto r =
            cloq_run({"eval", "--model", cloq::test::demo_model_dir(), "--data", cloq::test::tinystories_path(),
                      "--seqlen", "64", "--nsamples", "1", "--logits-json", path, "--greedy", "5"});
        QVERIFY2(r.code == 0, r.err.c_str());
        std::ifstream in(path);
        const json j = json::parse(in);
        const auto ids = j["ids"].get<std::vector<int>>();
        QCOMPARE(ids.size(), size_t(64));
        QCOMPARE(j["logits"].size(), size_t(64));
        const auto prompt = j["greedy_prompt"].get<std::vector<int>>();
        QVERIFY(prompt == std::vector<int>(ids.begin(), ids.begin() + 32));
        const auto greedy = j["greedy"].get<std::vector<int>>();
        QCOMPARE(greedy.size(), size_t(5));
        // The first greedy token is the argmax of the window's logits after the same 32 tokens (causal model).
        const auto row = j["logits"][31].get<std::vector<double>>();
        QCOMPARE(greedy[0], static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin()));
        QCOMPARE(cloq_run({"eval", "--model", cloq::test::demo_model_dir(), "--data", cloq::test::tinystories_path(),
                           "--greedy", "3"})
                     .code,
                 2);  // nowhere to write the tokens
    }

    void evalQuantizedAndAnalyze() {
        QTemporaryDir tmp;
        const std::string cache = tmp.filePath("cache").toStdString();
        auto eval = [&](const std::string& init) {
            const auto r = cloq_run({"eval", "--model", cloq::test::demo_model_dir(), "--data",
                                     cloq::test::tinystories_path(), "--nsamples", "8", "--bits", "2", "--rank", "8",
                                     "--init", init, "--calib-nsamples", "16", "--cache", cache, "--json"});
            if (r.code != 0) qWarning("%s", r.err.c_str());
            return json::parse(last_line(r.out))["ppl"].get<double>();
        };
        const double zero = eval("zero"), cloq = eval("cloq");
        qInfo("2-bit g64 r8, 8 windows: zero %.3f, cloq %.3f", zero, cloq);
        QVERIFY(std::isfinite(zero) && std::isfinite(cloq));
        QVERIFY(cloq < zero);

        const std::string report = tmp.filePath("report.json").toStdString(),
                          csv = tmp.filePath("report.csv").toStdString();
        const auto r = cloq_run({"analyze", "--model", cloq::test::demo_model_dir(), "--calib",
                                 cloq::test::tinystories_path(), "--calib-nsamples", "16", "--cache", cache, "--bits",
                                 "2", "--rank", "8", "--layers", "layers\\.1\\.", "--out", report, "--csv", csv});
        QVERIFY2(r.code == 0, r.err.c_str());
        std::ifstream in(report);
        const json rep = json::parse(in);
        QCOMPARE(rep["layers"].size(), size_t(7));
        QVERIFY(rep["stages"]["calibration"]["peak_rss_mib"].get<double>() > 0);
        for (const auto& l : rep["layers"]) {
            QVERIFY(l["metrics"]["cloq"]["fro"].get<double>() <= l["metrics"]["zero"]["fro"].get<double>());
            QVERIFY(std::abs(l["hlambda_fro"]["cloq"].get<double>() - l["cloq_optimal"].get<double>()) <=
                    1e-6 * l["cloq_optimal"].get<double>());
        }
        std::ifstream cin(csv);
        std::string header;
        std::getline(cin, header);
        QVERIFY(header.rfind("layer,module,group,in,out,rank,init,fro", 0) == 0);
        QCOMPARE(
            cloq_run({"analyze", "--model", cloq::test::demo_model_dir(), "--calib", cloq::test::tinystories_path(),
                      "--no-cache", "--layers", "nothing_matches", "--out", report})
                .code,
            1);
    }
};

QTEST_APPLESS_MAIN(TestCliModel)
#include "test_cli_model.moc"
