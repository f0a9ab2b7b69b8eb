// The batch export (cloq quantize) on the real stories260K model: the files are complete and valid, what they hold
// equals what was evaluated in memory (perplexity from the files == in-memory perplexity), an independent reading
// of the packed base + adapter reproduces the effective weights, profiles pick per-module settings, and every failure
// mode (existing OUT, unwritable folder, full disk, cancellation) leaves no partial OUT; --resume continues from the
// finished blocks and gives byte-identical files.
// cloq-test-labels: slow
// cloq-test-timeout: 900
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "base/content_hash.h"
#include "cli.h"
#include "cloq/base/error.h"
#include "cloq/export/exported_model.h"
#include "cloq/export/gptq_checkpoint.h"
#include "cloq/io/safetensors.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/perplexity.h"
#include "cloq/pipeline/quantize_pipeline.h"
#include "cloq/settings/profile.h"
#include "export/peft_export.h"
#include "test_gguf_writer.h"
#include "test_support.h"

using namespace cloq;
namespace fs = std::filesystem;

namespace {

struct CliResult {
    int rc = 0;
    std::string out, err;
    double seconds = 0;
};

CliResult run_cli(const std::vector<std::string>& args) {
    std::ostringstream out, err;
    CliResult r;
    const auto t0 = std::chrono::steady_clock::now();
    r.rc = cloq::cli::run(args, out, err);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.out = out.str();
    r.err = err.str();
    return r;
}

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// No temporary siblings (OUT.tmp-*, *.tmp-*) left anywhere under `dir`.
bool no_temporaries(const fs::path& dir) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) return false;
    return true;
}

// Unpacks a GPTQ qweight/qzeros column by column straight from the format description (bit offset b·j in a
// little-endian stream of 32-bit words), independently of the library's packer.
std::vector<int64_t> unpack_stream(const torch::Tensor& words_col /* int32 [n] */, int bits, int64_t count) {
    std::vector<int64_t> out(count);
    const auto w = words_col.contiguous();
    const auto* p = w.data_ptr<int32_t>();
    for (int64_t j = 0; j < count; ++j) {
        int64_t v = 0;
        for (int b = 0; b < bits; ++b) {
            const int64_t bit = j * bits + b;
            v |= static_cast<int64_t>((static_cast<uint32_t>(p[bit / 32]) >> (bit % 32)) & 1u) << b;
        }
        out[j] = v;
    }
    return out;
}

}  // namespace

class TestQuantizePipeline : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    fs::path root_;
    std::string model_ = test::demo_model_dir();
    std::string text_ = test::tinystories_path();
    std::map<std::string, std::string> model_hashes_;

    fs::path p(const std::string& rel) const { return root_ / rel; }
    std::vector<std::string> small_run(const std::string& out, const std::string& format) const {
        return {"quantize",
                "--model",
                model_,
                "--calib",
                text_,
                "--calib-nsamples",
                "8",
                "--calib-seqlen",
                "128",
                "--cache",
                p("cache").string(),
                "--bits",
                "2",
                "--group",
                "64",
                "--rank",
                "16",
                "--format",
                format,
                "--no-compare",
                "--no-spectral",
                "--out",
                out};
    }
    QuantizeExportOptions small_options(const std::string& out) const {
        QuantizeExportOptions o;
        o.model_path = model_;
        o.out_dir = out;
        o.calib.text_path = text_;
        o.calib.nsamples = 8;
        o.calib.seqlen = 128;
        o.calib.cache_dir = p("cache").string();
        o.profile.global.quant.bits = 2;
        o.profile.global.quant.group = 64;
        o.profile.global.rank = 16;
        o.compare = false;
        o.spectral = false;
        o.device = DeviceChoice::Cpu;
        return o;
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY(tmp_.isValid());
        root_ = tmp_.path().toStdString();
        for (const auto& e : fs::directory_iterator(model_))
            model_hashes_[e.path().string()] = hash_file(e.path().string());
    }

    void endToEndGptq() {
        const std::string out = p("gptq").string();
        const auto r = run_cli({"quantize",
                                "--model",
                                model_,
                                "--calib",
                                text_,
                                "--calib-nsamples",
                                "32",
                                "--calib-seqlen",
                                "256",
                                "--cache",
                                p("cache32").string(),
                                "--bits",
                                "2",
                                "--group",
                                "64",
                                "--rank",
                                "16",
                                "--format",
                                "gptq",
                                "--eval",
                                text_,
                                "--eval-nsamples",
                                "32",
                                "--eval-seqlen",
                                "256",
                                "--out",
                                out,
                                "--json"});
        QVERIFY2(r.rc == 0, r.err.c_str());
        qInfo("whole export (2-bit g64 r16, calib 32x256, zero+LoftQ comparison, 4 perplexities): %.1f s", r.seconds);
        for (const char* f : {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "base/config.json",
                              "base/quantize_config.json", "base/model.safetensors", "base/tokenizer.model",
                              "profile.json", "report.json", "report.csv"})
            QVERIFY2(fs::is_regular_file(fs::path(out) / f), f);
        QVERIFY(!fs::exists(resume_dir_for(out)));
        QVERIFY(no_temporaries(root_));

        const auto rep = read_json(fs::path(out) / "report.json");
        QCOMPARE(nlohmann::json::parse(r.out)["format"], rep["format"]);
        const auto& ppl = rep["perplexity"];
        const double pf = ppl["float"], ps = ppl["solved_fp32"], pe = ppl["export_in_memory"],
                     pfiles = ppl["from_files"];
        qInfo("ppl: float %.4f, solved %.4f, export in memory %.6f, from files %.6f", pf, ps, pe, pfiles);
        QVERIFY2(test::rel_diff(pf, 4.0791) < 2e-4, qPrintable(QString::number(pf)));  // SOURCE.md, 32 x 256
        QCOMPARE(pfiles, pe);                    // the files hold exactly what was evaluated
        QVERIFY(test::rel_diff(ps, pe) < 1e-2);  // fp16 scales move it only slightly
        QVERIFY(pe > pf);                        // 2-bit attention is not free

        // 35 modules; attention packed, MLP (172 features) left in float and listed as "-:" in `dynamic`.
        QCOMPARE(rep["modules"].size(), size_t(35));
        int quantized = 0;
        for (const auto& m : rep["modules"]) {
            const std::string name = m["module"];
            const bool mlp = name.find(".mlp.") != std::string::npos;
            QCOMPARE(m["quantized"].get<bool>(), !mlp);
            if (mlp) {
                QVERIFY(m["note"].get<std::string>().find("172") != std::string::npos);
                continue;
            }
            ++quantized;
            const double cloq = m["metrics"]["cloq"]["fro_rel"], zero = m["metrics"]["zero"]["fro_rel"];
            QVERIFY2(cloq < zero, name.c_str());
            QVERIFY(m["metrics"]["loftq"]["spec_rel"].get<double>() > 0);
        }
        QCOMPARE(quantized, 20);
        const auto cfg = read_json(fs::path(out) / "base/config.json");
        const auto& q = cfg["quantization_config"];
        QCOMPARE(q["bits"].get<int>(), 2);
        QCOMPARE(q["group_size"].get<int>(), 64);
        QCOMPARE(q["checkpoint_format"].get<std::string>(), std::string("gptq"));
        QCOMPARE(q["quant_method"].get<std::string>(), std::string("gptq"));
        QCOMPARE(q["dynamic"].size(), size_t(1));
        const std::string neg = q["dynamic"].begin().key();
        QVERIFY(neg.rfind("-:", 0) == 0);
        const std::regex re(neg.substr(2));
        QVERIFY(std::regex_search("model.layers.3.mlp.up_proj", re));
        QVERIFY(!std::regex_search("model.layers.3.self_attn.q_proj", re));
        QCOMPARE(cfg["hidden_size"].get<int>(), 64);  // the source config is kept

        // Independent reading of one module: packed codes + fp16 scales + zero-1 storage, plus s·B·A (Eigen, f64).
        const std::string mod = "model.layers.2.self_attn.k_proj";
        SafetensorsFile base((fs::path(out) / "base/model.safetensors").string());
        SafetensorsFile ad((fs::path(out) / "adapter/adapter_model.safetensors").string());
        const auto qweight = base.tensor(mod + ".qweight"), qzeros = base.tensor(mod + ".qzeros");
        const auto scales = base.tensor(mod + ".scales").to(torch::kFloat64), g_idx = base.tensor(mod + ".g_idx");
        const int64_t in = 64, out_f = 32;
        test::MatrixXd Q(out_f, in);
        for (int64_t o = 0; o < out_f; ++o) {
            const auto codes = unpack_stream(qweight.select(1, o), 2, in);
            for (int64_t i = 0; i < in; ++i) {
                const int64_t g = g_idx[i].item<int32_t>();
                const auto zs = unpack_stream(qzeros.select(0, g), 2, out_f);
                Q(o, i) = scales[g][o].item<double>() * (codes[i] - (zs[o] + 1));
            }
        }
        const auto A = test::to_eigen(ad.tensor(peft_tensor_name(mod, 'A')));
        const auto B = test::to_eigen(ad.tensor(peft_tensor_name(mod, 'B')));
        const test::MatrixXd eff = Q + (16.0 / 16.0) * B * A;  // lora_alpha 16, r 16
        const auto files =
            open_exported_model(model_, (fs::path(out) / "base").string(), (fs::path(out) / "adapter").string());
        const auto loaded = test::to_eigen(files.weights->load(mod + ".weight"));
        QVERIFY2((loaded - eff).norm() / eff.norm() < 1e-6,
                 qPrintable(QString::number((loaded - eff).norm() / eff.norm())));

        // The files evaluated through the readers give the reported perplexity.
        const auto tokens = tokenize_file(*files.tokenizer, text_);
        LlamaModel lm(files);
        PerplexityOptions po;
        po.seqlen = 256;
        po.nsamples = 32;
        QCOMPARE(perplexity(lm, tokens, po).ppl, pfiles);

        // The input model is never modified.
        for (const auto& [path, h] : model_hashes_) QCOMPARE(hash_file(path), h);
    }

    // An export of a GGUF model is a complete HF model folder: tokenizer files and generation defaults from the
    // GGUF metadata, a config whose modules_in_block_to_quantize keeps the 172-wide MLPs float for transformers +
    // optimum (which do not read dynamic), and an adapter whose base_model_name_or_path is the exported base.
    void ggufExportIsACompleteModelFolder() {
        const std::string gguf = p("stories260K.gguf").string();
        { std::ofstream(gguf, std::ios::binary) << cloq::test::stories260k_gguf(); }
        const std::string out = p("from-gguf").string();
        auto args = small_run(out, "gptq");
        args[2] = gguf;
        const auto r = run_cli(args);
        QVERIFY2(r.rc == 0, r.err.c_str());
        for (const char* f : {"tokenizer.model", "tokenizer_config.json", "generation_config.json", "config.json",
                              "quantize_config.json", "model.safetensors"})
            QVERIFY2(fs::is_regular_file(fs::path(out) / "base" / f), f);
        const auto gen = read_json(fs::path(out) / "base/generation_config.json");
        QCOMPARE(gen["bos_token_id"].get<int>(), 1);
        QCOMPARE(gen["eos_token_id"].get<int>(), 2);
        const auto tok = read_json(fs::path(out) / "base/tokenizer_config.json");
        QCOMPARE(tok["bos_token"].get<std::string>(), std::string("<s>"));
        const auto q = read_json(fs::path(out) / "base/quantize_config.json");
        QCOMPARE(q["format"].get<std::string>(), std::string("gptq"));
        QCOMPARE(q["modules_in_block_to_quantize"].dump(),
                 std::string(R"([["self_attn.q_proj","self_attn.k_proj","self_attn.v_proj","self_attn.o_proj"]])"));
        QVERIFY(q["dynamic"].begin().key().rfind("-:", 0) == 0);  // the MLPs, for GPTQModel
        const auto a = read_json(fs::path(out) / "adapter/adapter_config.json");
        QCOMPARE(a["base_model_name_or_path"].get<std::string>(), (fs::absolute(out) / "base").string());
    }

    void dequantizeCommand() {
        const std::string base = p("gptq/base").string(), out = p("deq").string();
        auto r = run_cli({"dequantize", base, "--out", out});
        QVERIFY2(r.rc == 0, r.err.c_str());
        SafetensorsWeights fp16(out);
        GptqCheckpointWeights gptq(base);
        for (const auto& n : fp16.names()) {
            QCOMPARE(fp16.dtype(n), std::string("F16"));
            QVERIFY2(torch::equal(fp16.tensor(n), gptq.load(n).to(torch::kFloat16)), n.c_str());
        }
        QVERIFY(!read_json(fs::path(out) / "config.json").contains("quantization_config"));
        QVERIFY(fs::exists(fs::path(out) / "tokenizer.model"));
        r = run_cli({"dequantize", base, "--out", out});
        QCOMPARE(r.rc, 1);
        QVERIFY2(r.err.find("already exists") != std::string::npos, r.err.c_str());
    }

    void fp16WithProfile() {
        const std::string profile = p("profile.json").string();
        std::ofstream(profile) << nlohmann::json{
            {"global", {{"bits", 2}, {"group", 64}, {"rank", 16}}},
            {"overrides",
             {{{"match", "mlp\\.down_proj"}, {"bits", 3}},
              {{"match", "layers\\.[01]\\."}, {"rank", 32}},
              {{"match", "layers\\.4\\.self_attn\\.o_proj"},
               {"skip", true}}}}}.dump(2);
        const std::string out = p("fp16").string();
        const auto r = run_cli({"quantize",
                                "--model",
                                model_,
                                "--calib",
                                text_,
                                "--calib-nsamples",
                                "8",
                                "--calib-seqlen",
                                "128",
                                "--cache",
                                p("cache").string(),
                                "--profile",
                                profile,
                                "--lora-alpha",
                                "32",
                                "--format",
                                "fp16",
                                "--adapter-dtype",
                                "float16",
                                "--no-compare",
                                "--no-spectral",
                                "--eval",
                                text_,
                                "--eval-nsamples",
                                "8",
                                "--eval-seqlen",
                                "128",
                                "--out",
                                out});
        QVERIFY2(r.rc == 0, r.err.c_str());
        const auto rep = read_json(fs::path(out) / "report.json");
        QCOMPARE(rep["perplexity"]["from_files"].get<double>(), rep["perplexity"]["export_in_memory"].get<double>());
        SafetensorsWeights base((fs::path(out) / "base").string());
        for (const auto& n : base.names()) QCOMPARE(base.dtype(n), std::string("F16"));
        const auto cfg = read_json(fs::path(out) / "base/config.json");
        QVERIFY(!cfg.contains("quantization_config"));
        QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("float16"));
        // Per-module settings as the profile says; everything quantized in fp16 format except the skipped module.
        for (const auto& m : rep["modules"]) {
            const std::string name = m["module"];
            const bool down = name.find("down_proj") != std::string::npos;
            const bool early =
                name.find("layers.0.") != std::string::npos || name.find("layers.1.") != std::string::npos;
            QCOMPARE(m["settings"]["bits"].get<int>(), down ? 3 : 2);
            QCOMPARE(m["settings"]["rank"].get<int>(), early ? 32 : 16);
            QCOMPARE(m["settings"]["lora_alpha"].get<double>(), 32.0);
            QCOMPARE(m["quantized"].get<bool>(), name != "model.layers.4.self_attn.o_proj");
        }
        const auto ac = read_json(fs::path(out) / "adapter/adapter_config.json");
        QCOMPARE(ac["r"].get<int>(), 16);
        QCOMPARE(ac["lora_alpha"].get<double>(), 32.0);
        QCOMPARE(ac["rank_pattern"]["layers.0.self_attn.q_proj"].get<int>(), 32);
        QVERIFY(ac["target_modules"].is_string());  // o_proj of block 4 has no adapter: an exact regex
        SafetensorsFile af((fs::path(out) / "adapter/adapter_model.safetensors").string());
        QVERIFY(!af.contains(peft_tensor_name("model.layers.4.self_attn.o_proj", 'A')));
        QCOMPARE(af.info(peft_tensor_name("model.layers.0.mlp.down_proj", 'A')).dtype, std::string("F16"));
        // OUT/profile.json reproduces the settings used.
        const auto used = load_profile((fs::path(out) / "profile.json").string());
        for (const auto& m : rep["modules"]) {
            const auto s = used.for_module(m["module"].get<std::string>());
            QCOMPARE(s.quant.bits, m["settings"]["bits"].get<int>());
            QCOMPARE(s.rank, m["settings"]["rank"].get<int>());
        }
    }

    void refusesExistingAndUnwritable() {
        const fs::path out = p("existing");
        fs::create_directories(out);
        std::ofstream(out / "keep.txt") << "mine";
        auto r = run_cli(small_run(out.string(), "gptq"));
        QCOMPARE(r.rc, 1);
        QVERIFY2(r.err.find("already exists") != std::string::npos, r.err.c_str());
        QCOMPARE(read_bytes(out / "keep.txt"), std::string("mine"));
        // An unwritable parent folder. Root ignores permission bits, so it uses a read-only file system instead.
        fs::path parent = p("readonly");
        fs::create_directories(parent);
        fs::permissions(parent, fs::perms::owner_read | fs::perms::owner_exec);
        std::string target = (parent / "out").string();
        if (::access(parent.c_str(), W_OK) == 0) target = "/sys/cloq-test-out";
        r = run_cli(small_run(target, "gptq"));
        fs::permissions(parent, fs::perms::owner_all);
        QCOMPARE(r.rc, 1);
        QVERIFY2(r.err.find("cannot create folder " + target) != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(target));
        QVERIFY(!fs::exists(resume_dir_for(target)));
    }

    void cancelThenResume() {
        const std::string out = p("resumed").string(), fresh = p("fresh").string();
        auto opt = small_options(out);
        Progress cancel_after_two;
        cancel_after_two.report = [tok = cancel_after_two.cancel](double, const std::string& step) {
            if (step.find("block 2/5 done") != std::string::npos) tok.cancel();
        };
        QVERIFY_THROWS_EXCEPTION(Cancelled, run_quantize_export(opt, cancel_after_two));
        QVERIFY(!fs::exists(out));
        QVERIFY(no_temporaries(root_));
        const std::string resume = resume_dir_for(out);
        QVERIFY(fs::exists(fs::path(resume) / "block_0000.json"));
        QVERIFY(fs::exists(fs::path(resume) / "block_0001.json"));
        QVERIFY(!fs::exists(fs::path(resume) / "block_0002.json"));
        // Without --resume the leftover is not silently reused or deleted.
        try {
            run_quantize_export(opt);
            QFAIL("reused a resume folder without being asked");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("--resume"), e.what());
        }
        // Other settings cannot resume from these blocks.
        auto other = opt;
        other.resume = true;
        other.profile.global.rank = 8;
        try {
            run_quantize_export(other);
            QFAIL("resumed with other settings");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("other") || QString(e.what()).contains("another"), e.what());
        }
        opt.resume = true;
        const auto res = run_quantize_export(opt);
        QCOMPARE(res.resumed_blocks, 2);
        QVERIFY(!fs::exists(resume));
        // Byte-identical to an uninterrupted run.
        run_quantize_export(small_options(fresh));
        for (const char* f : {"base/model.safetensors", "adapter/adapter_model.safetensors",
                              "adapter/adapter_config.json", "base/config.json", "report.csv", "profile.json"})
            QVERIFY2(read_bytes(fs::path(out) / f) == read_bytes(fs::path(fresh) / f), f);
        // report.json too, but for its "timings" (durations, cache use, resumed blocks: what differs between runs).
        auto rep_resumed = read_json(fs::path(out) / "report.json"),
             rep_fresh = read_json(fs::path(fresh) / "report.json");
        QCOMPARE(rep_resumed["timings"]["resumed_blocks"].get<int>(), 2);
        QCOMPARE(rep_fresh["timings"]["resumed_blocks"].get<int>(), 0);
        rep_resumed.erase("timings");
        rep_fresh.erase("timings");
        QVERIFY(rep_resumed == rep_fresh);
    }

    void loftqAloneMatchesTheSolver() {
        // `--init loftq` without the comparison runs LoftQ alone, without a LayerSolver (whose GPTQ base and CLoQ
        // eigensolve LoftQ never uses): the files are byte-identical to the solver path's, the metrics agree.
        auto alone = small_options(p("loftq_alone").string());
        alone.profile.global.init = InitMethod::Loftq;
        alone.spectral = true;
        auto with = alone;
        with.out_dir = p("loftq_compare").string();
        with.compare = true;
        const auto ra = run_quantize_export(alone), rw = run_quantize_export(with);
        for (const char* f : {"base/model.safetensors", "adapter/adapter_model.safetensors"})
            QVERIFY2(read_bytes(fs::path(alone.out_dir) / f) == read_bytes(fs::path(with.out_dir) / f), f);
        QCOMPARE(ra.modules.size(), rw.modules.size());
        int quantized = 0;
        for (size_t i = 0; i < ra.modules.size(); ++i) {
            const auto &a = ra.modules[i], &w = rw.modules[i];
            if (!a.quantized) continue;
            QVERIFY(!a.has_zero && !a.has_loftq && w.has_zero && w.has_loftq);
            ++quantized;
            const QString what = QString::fromStdString(a.module) + QString(": %1 vs %2");
            QVERIFY2(test::rel_diff(a.init.fro, w.init.fro) < 1e-9, qPrintable(what.arg(a.init.fro).arg(w.init.fro)));
            QVERIFY2(test::rel_diff(a.init.fro_rel, w.init.fro_rel) < 1e-9,
                     qPrintable(what.arg(a.init.fro_rel).arg(w.init.fro_rel)));
            QVERIFY2(test::rel_diff(a.init.spec_rel, w.init.spec_rel) < 1e-6,
                     qPrintable(what.arg(a.init.spec_rel).arg(w.init.spec_rel)));
        }
        QCOMPARE(quantized, 20);

        // The CLI's summary line names each init once: the chosen one, then the comparisons that are not it.
        auto args = small_run(p("loftq_cli").string(), "gptq");
        args.erase(std::find(args.begin(), args.end(), "--no-compare"));
        args.insert(args.end(), {"--init", "loftq"});
        const auto r = run_cli(args);
        QVERIFY2(r.rc == 0, r.err.c_str());
        const std::regex summary(R"(mean relative \S+: loftq [0-9.]+, zero [0-9.]+\n)");
        QVERIFY2(std::regex_search(r.out, summary), r.out.c_str());
    }

    void ctrlCInTheCli() {
        // A real SIGINT while `cloq quantize` runs (as Ctrl-C sends it): it stops within the block in progress,
        // says so, writes no OUT and keeps the finished blocks for --resume.
        const std::string out = p("ctrlc").string();
        const fs::path first_block = fs::path(resume_dir_for(out)) / "block_0000.json";
        auto previous = std::signal(SIGINT, [](int) {});  // a late signal must not end the test process
        std::atomic<bool> done{false};
        std::thread interrupter([&] {
            for (int i = 0; i < 6000 && !done.load() && !fs::exists(first_block); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!done.load()) ::kill(::getpid(), SIGINT);
        });
        const auto r = run_cli(small_run(out, "gptq"));
        done.store(true);
        interrupter.join();
        std::signal(SIGINT, previous);
        QCOMPARE(r.rc, 130);
        QVERIFY2(r.err.find("cancelled; " + out + " was not written") != std::string::npos, r.err.c_str());
        QVERIFY2(r.err.find("rerun with --resume") != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(out));
        QVERIFY(no_temporaries(root_));
        QVERIFY(fs::exists(first_block));
        QVERIFY(!fs::exists(fs::path(resume_dir_for(out)) / "block_0004.json"));
        fs::remove_all(resume_dir_for(out));
    }

    void fullDisk() {
        // A file size limit stands in for a full disk: the block checkpoints (~200 KB) fit, the assembled base
        // (~800 KB) does not. The export fails with the system's reason, no OUT and no temporary are left, the
        // finished blocks stay, and --resume finishes once there is room.
        const std::string out = p("full").string();
        auto opt = small_options(out);
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit old{};
        QCOMPARE(getrlimit(RLIMIT_FSIZE, &old), 0);
        rlimit lim = old;
        lim.rlim_cur = 400 * 1024;
        QCOMPARE(setrlimit(RLIMIT_FSIZE, &lim), 0);
        std::string msg;
        try {
            run_quantize_export(opt);
        } catch (const Error& e) {
            msg = e.what();
        }
        QCOMPARE(setrlimit(RLIMIT_FSIZE, &old), 0);
        QVERIFY2(msg.find("File too large") != std::string::npos && msg.find("model.safetensors") != std::string::npos,
                 msg.c_str());
        QVERIFY(!fs::exists(out));
        QVERIFY(no_temporaries(root_));
        QVERIFY(fs::exists(fs::path(resume_dir_for(out)) / "block_0004.json"));
        opt.resume = true;
        QCOMPARE(run_quantize_export(opt).resumed_blocks, 5);
        QVERIFY(fs::exists(fs::path(out) / "base/model.safetensors"));
    }

    void usageErrors() {
        auto r = run_cli({"quantize", "--model", model_, "--calib", text_});
        QCOMPARE(r.rc, 2);
        QVERIFY2(r.err.find("--out") != std::string::npos, r.err.c_str());
        auto args = small_run(p("bad").string(), "gptq_v9");
        r = run_cli(args);
        QCOMPARE(r.rc, 2);
        QVERIFY2(r.err.find("gptq_v9") != std::string::npos, r.err.c_str());
        args = small_run(p("z").string(), "gptq");
        args.insert(args.end(), {"--zip", p("z.zip").string()});
#ifdef CLOQ_HAVE_ZIP
        r = run_cli(args);
        QVERIFY2(r.rc == 0, r.err.c_str());
        QVERIFY(fs::exists(p("z.zip")));
#else
        r = run_cli(args);
        QCOMPARE(r.rc, 2);
        QVERIFY2(r.err.find("unavailable") != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(p("z")));
#endif
        r = run_cli({"quantize", "--model", p("no-such-model").string(), "--calib", text_, "--out", p("x").string()});
        QCOMPARE(r.rc, 1);
        QVERIFY2(r.err.find("no-such-model") != std::string::npos, r.err.c_str());
        QVERIFY(!fs::exists(p("x")));
        QVERIFY(no_temporaries(root_));
    }
};

QTEST_APPLESS_MAIN(TestQuantizePipeline)
#include "test_quantize_pipeline.moc"
