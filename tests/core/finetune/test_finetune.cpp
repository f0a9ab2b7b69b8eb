// LoRA fine-tuning (cloq/finetune/finetune.h) on stories260K, 2-bit g64 r16:
//  - the gradients of every lora_A / lora_B equal a float64 plain-LibTorch forward written here (which shares
//    nothing with core/src/model/llama_model.cpp but the weight reader), itself checked by central differences;
//  - step 0 is the initialized model `cloq eval` measures: the training loss on the evaluation windows and the merged
//    evaluation equal quantized_perplexity()'s mean NLL, for zero, LoftQ and CLoQ;
//  - zero init is PEFT's (lora_B = 0, lora_A ~ U(±1/√in)); the schedule is transformers' cosine with warmup;
//  - training lowers the evaluation loss, the same seed gives the same curve, and the written adapter reads back;
//  - bfloat16 autocast (the mixed-precision path CUDA runs, on the CPU here) stays close to float32, with and
//    without checkpointing, and float16's loss scaler skips overflowed steps as PyTorch's GradScaler does.
#include <QtTest/QtTest>
#include <set>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <set>

#include "cloq/analysis/quantized_eval.h"
#include "cloq/base/error.h"
#include "cloq/finetune/finetune.h"
#include "cloq/finetune/layer_fit.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/model/model_files.h"
#include "cloq/model/perplexity.h"
#include "expect_error.h"
#include "export/peft_export.h"
#include "finetune/mixed_precision.h"
#include "test_support.h"
#include "tolerances.h"

using namespace cloq;
using torch::Tensor;

namespace {
// Float64 Llama forward with LoRA paths, from the formulas (HF semantics): RMSNorm, RoPE pairing (i, i + D/2),
// causal GQA softmax attention, SwiGLU, tied or untied head; loss = mean next-token NLL.
struct ReferenceLoraLlama {
    const ModelFiles& m;
    std::function<Tensor(const std::string&)> base;         // module -> frozen weight [out, in]
    std::map<std::string, std::pair<Tensor, Tensor>> lora;  // module -> (A, B) float64 leaves
    std::map<std::string, double> scaling;

    Tensor param(const std::string& name) const { return m.weights->load(name).to(torch::kFloat64); }
    static Tensor rms(const Tensor& x, const Tensor& w, double eps) {
        return x / torch::sqrt(x.square().mean(-1, true) + eps) * w;
    }
    Tensor lin(const std::string& module, const Tensor& x) const {
        Tensor y = torch::matmul(x, base(module).to(torch::kFloat64).t());
        const auto it = lora.find(module);
        if (it != lora.end())
            y = y + torch::matmul(torch::matmul(x, it->second.first.t()), it->second.second.t()) * scaling.at(module);
        return y;
    }
    Tensor loss(const Tensor& ids) const {
        const auto& c = m.config;
        const int64_t B = ids.size(0), T = ids.size(1), D = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
        const Tensor E = param("model.embed_tokens.weight");
        Tensor x = E.index_select(0, ids.reshape({-1})).view({B, T, c.hidden_size});
        // angle(t, i) = t · θ^(−2i/D), i < D/2
        const Tensor pos = torch::arange(T, torch::kFloat64).unsqueeze(1);
        const Tensor inv = torch::pow(c.rope_theta, -2.0 * torch::arange(D / 2, torch::kFloat64) / double(D));
        const Tensor ang = pos * inv.unsqueeze(0);  // [T, D/2]
        const Tensor cs = ang.cos().view({1, T, 1, D / 2}), sn = ang.sin().view({1, T, 1, D / 2});
        auto rope = [&](const Tensor& q) {
            const Tensor a = q.slice(-1, 0, D / 2), b = q.slice(-1, D / 2, D);
            return torch::cat({a * cs - b * sn, b * cs + a * sn}, -1);
        };
        const Tensor future = torch::ones({T, T}, torch::kBool).triu(1);
        for (int l = 0; l < c.num_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            const auto mod = [&](const char* name) { return p + name; };
            const Tensor xn = rms(x, param(p + "input_layernorm.weight"), c.rms_norm_eps);
            const Tensor q = rope(lin(mod("self_attn.q_proj"), xn).view({B, T, nh, D}));
            const Tensor k = rope(lin(mod("self_attn.k_proj"), xn).view({B, T, nkv, D}));
            const Tensor v = lin(mod("self_attn.v_proj"), xn).view({B, T, nkv, D});
            std::vector<Tensor> heads;
            for (int64_t h = 0; h < nh; ++h) {
                const int64_t kv = h / (nh / nkv);
                const Tensor qh = q.select(2, h), kh = k.select(2, kv), vh = v.select(2, kv);  // [B, T, D]
                Tensor s = torch::matmul(qh, kh.transpose(1, 2)) / std::sqrt(double(D));
                s = s.masked_fill(future, -std::numeric_limits<double>::infinity());
                heads.push_back(torch::matmul(torch::softmax(s, -1), vh));
            }
            x = x + lin(mod("self_attn.o_proj"), torch::cat(heads, -1));
            const Tensor yn = rms(x, param(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
            const Tensor g = lin(mod("mlp.gate_proj"), yn), u = lin(mod("mlp.up_proj"), yn);
            x = x + lin(mod("mlp.down_proj"), g / (1 + torch::exp(-g)) * u);
        }
        const Tensor head = c.tie_word_embeddings ? E : param("lm_head.weight");
        const Tensor logits = torch::matmul(rms(x, param("model.norm.weight"), c.rms_norm_eps), head.t());
        const Tensor lp = torch::log_softmax(logits.slice(1, 0, T - 1), -1);
        return -lp.gather(-1, ids.slice(1, 1, T).unsqueeze(-1)).mean();
    }
};

double rel_norm(const Tensor& a, const Tensor& b) {
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm().item<double>() /
           b.to(torch::kFloat64).norm().item<double>();
}

Tensor windows(const std::vector<int32_t>& tokens, int64_t n, int64_t T) {
    std::vector<int64_t> ids(tokens.begin(), tokens.begin() + n * T);
    return torch::tensor(ids, torch::kLong).view({n, T});
}
}  // namespace

class TestFinetune : public QObject {
    Q_OBJECT
    ModelFiles files_;
    ResolvedProfile profile_;
    Calibration cal_;
    std::vector<int32_t> train_, eval_;
    FineTuneOptions opt_;

    LoraFineTuner tuner(InitMethod m, Split s = Split::Default, const FineTuneOptions* o = nullptr) const {
        return LoraFineTuner(files_, profile_, FineTuneInit{m, s}, cal_, o ? *o : opt_);
    }

private Q_SLOTS:
    void initTestCase() {
        files_ = open_model(cloq::test::demo_model_dir());
        QVERIFY(!files_.config.attention_bias);
        LayerSettings s;
        s.quant.bits = 2;
        s.quant.group = 64;
        s.rank = 16;
        profile_ = ResolvedProfile(s);
        // The protocol of docs/design.md: calibration, training and evaluation from disjoint parts of TinyStories.
        const auto tokens = tokenize_file(*files_.tokenizer, cloq::test::tinystories_path());
        LlamaModel model(files_);
        CalibrationRequest req;
        req.settings.nsamples = 16;
        req.settings.seqlen = 128;
        req.settings.part = parse_text_part("0.75:1");
        req.settings.text_path = cloq::test::tinystories_path();
        cal_ = calibrate(model, req);
        train_ = text_part_tokens(tokens, parse_text_part("0.25:0.75"), "train");
        eval_ = text_part_tokens(tokens, parse_text_part("0:0.25"), "eval");
        opt_.steps = 12;
        opt_.batch = 4;
        opt_.seqlen = 64;
        opt_.lr = 2e-3;
        opt_.eval_every = 6;
        opt_.eval_windows = 8;
    }

    void gradientsEqualPlainLibTorchReference() {
        for (const Split split : {Split::Default, Split::UVs}) {
            LoraFineTuner t = tuner(InitMethod::Cloq, split);
            const Tensor ids = windows(eval_, 2, 48);
            const Tensor loss = t.loss(ids);
            loss.backward();

            ReferenceLoraLlama ref{files_, [&](const std::string& m) { return t.base_weight(m); }, {}, {}};
            std::vector<std::string> modules;
            for (const auto& l : linear_layers(files_.config)) {
                const LoraPath& p = t.path(l.name());
                ref.lora[l.name()] = {p.A.detach().to(torch::kFloat64).requires_grad_(true),
                                      p.B.detach().to(torch::kFloat64).requires_grad_(true)};
                ref.scaling[l.name()] = p.scaling;
                modules.push_back(l.name());
            }
            const Tensor ref_loss = ref.loss(ids);
            ref_loss.backward();
            QVERIFY2(
                cloq::test::rel_diff(loss.item<double>(), ref_loss.item<double>()) < cloq::test::tol::kFloat32Reference,
                qPrintable(QString("loss %1 vs reference %2").arg(loss.item<double>()).arg(ref_loss.item<double>())));
            double worst = 0;
            std::string where;
            for (const auto& m : modules) {
                const LoraPath& p = t.path(m);
                QVERIFY(p.A.grad().defined() && p.B.grad().defined());
                for (const auto& [ours, theirs, which] : {std::tuple{p.A.grad(), ref.lora[m].first.grad(), "A"},
                                                          std::tuple{p.B.grad(), ref.lora[m].second.grad(), "B"}}) {
                    QVERIFY(theirs.norm().item<double>() > 0);
                    const double e = rel_norm(ours, theirs);
                    if (e > worst) worst = e, where = m + " lora_" + which;
                }
            }
            qInfo("split %s: loss %.9g (reference %.9g), worst relative gradient error %.3g (%s)",
                  to_string(split).c_str(), loss.item<double>(), ref_loss.item<double>(), worst, where.c_str());
            QVERIFY2(
                worst < cloq::test::tol::kFloat32Reference,
                qPrintable(QString("worst gradient error %1 at %2").arg(worst).arg(QString::fromStdString(where))));

            // The reference's own autograd against central differences along a random unit direction.
            torch::manual_seed(1);
            std::map<std::string, std::pair<Tensor, Tensor>> dir;
            double norm2 = 0;
            for (const auto& m : modules) {
                auto& [A, B] = ref.lora[m];
                dir[m] = {torch::randn_like(A), torch::randn_like(B)};
                norm2 += dir[m].first.square().sum().item<double>() + dir[m].second.square().sum().item<double>();
            }
            double directional = 0;
            for (const auto& m : modules) {
                auto& [A, B] = ref.lora[m];
                dir[m].first /= std::sqrt(norm2);
                dir[m].second /= std::sqrt(norm2);
                directional +=
                    (A.grad() * dir[m].first).sum().item<double>() + (B.grad() * dir[m].second).sum().item<double>();
            }
            auto shifted = [&](double eps) {
                ReferenceLoraLlama r = ref;
                for (const auto& m : modules)
                    r.lora[m] = {ref.lora[m].first.detach() + eps * dir[m].first,
                                 ref.lora[m].second.detach() + eps * dir[m].second};
                torch::NoGradGuard ng;
                return r.loss(ids).item<double>();
            };
            const double eps = 1e-4;
            const double fd = (shifted(eps) - shifted(-eps)) / (2 * eps);
            QVERIFY2(cloq::test::rel_diff(fd, directional) < 1e-6,
                     qPrintable(QString("central difference %1 vs autograd %2").arg(fd).arg(directional)));
        }
    }

    // Gradient checkpointing recomputes each block in the backward: the same loss and the same gradients (up to
    // float32 summation order), and training steps that follow the same path.
    void gradientCheckpointingGivesTheSameGradients() {
        FineTuneOptions ck = opt_;
        ck.grad_checkpoint = true;
        LoraFineTuner plain = tuner(InitMethod::Cloq), checkpointed = tuner(InitMethod::Cloq, Split::Default, &ck);
        const Tensor ids = windows(eval_, 2, 48);
        const Tensor l0 = plain.loss(ids), l1 = checkpointed.loss(ids);
        // The checkpointed graph holds one recomputing node per decoder block and the plain one none.
        auto checkpoint_nodes = [](const Tensor& loss) {
            std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
            std::set<torch::autograd::Node*> seen;
            int found = 0;
            while (!todo.empty()) {
                torch::autograd::Node* n = todo.back();
                todo.pop_back();
                if (!n || !seen.insert(n).second) continue;
                if (n->name().find("CheckpointedBlock") != std::string::npos) ++found;
                for (const auto& e : n->next_edges()) todo.push_back(e.function.get());
            }
            return found;
        };
        QCOMPARE(checkpoint_nodes(l1), static_cast<int>(files_.config.num_layers));
        QCOMPARE(checkpoint_nodes(l0), 0);
        l0.backward();
        l1.backward();
        QVERIFY(cloq::test::rel_diff(l0.item<double>(), l1.item<double>()) < 1e-6);
        const auto p0 = plain.parameters(), p1 = checkpointed.parameters();
        QCOMPARE(p0.size(), p1.size());
        double worst = 0;
        for (size_t i = 0; i < p0.size(); ++i) {
            QVERIFY(p1[i].grad().defined() && p1[i].grad().norm().item<double>() > 0);
            worst = std::max(worst, rel_norm(p1[i].grad(), p0[i].grad()));
        }
        qInfo("checkpointed gradients: worst relative difference %.3g over %zu factors", worst, p0.size());
        QVERIFY2(worst < 1e-5, qPrintable(QString::number(worst)));
        for (int t = 1; t <= 3; ++t)
            QVERIFY(cloq::test::rel_diff(plain.train_step(ids, t), checkpointed.train_step(ids, t)) < 1e-5);
    }

    void stepZeroIsTheInitializedModel() {
        PerplexityOptions po;
        po.seqlen = 64;
        po.nsamples = 8;
        for (const InitMethod m : {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq}) {
            const LoraFineTuner t = tuner(m);
            const PerplexityResult expected = quantized_perplexity(files_, profile_, m, cal_, eval_, po);
            const PerplexityResult merged = t.evaluate(eval_, po);
            torch::NoGradGuard ng;
            const double loss = t.loss(windows(eval_, 8, 64)).item<double>();
            const QString what = QString::fromStdString(to_string(m));
            // Zero init has a random lora_A but lora_B = 0: its model is exactly the quantized base.
            QVERIFY2(cloq::test::rel_diff(merged.mean_nll, expected.mean_nll) < cloq::test::tol::kFloat32Reference,
                     qPrintable(what + QString(": merged %1 vs eval %2").arg(merged.mean_nll).arg(expected.mean_nll)));
            QVERIFY2(cloq::test::rel_diff(loss, expected.mean_nll) < cloq::test::tol::kFloat32Reference,
                     qPrintable(what + QString(": loss %1 vs eval %2").arg(loss).arg(expected.mean_nll)));
        }
    }

    void zeroInitIsPeftDefault() {
        const LoraFineTuner t = tuner(InitMethod::Zero);
        const LinearLayer l = linear_layers(files_.config).front();
        const LoraPath& p = t.path(l.name());
        QCOMPARE(p.B.abs().max().item<double>(), 0.0);
        const double bound = 1.0 / std::sqrt(static_cast<double>(l.in));
        QVERIFY(p.A.abs().max().item<double>() <= bound);
        QVERIFY(p.A.abs().max().item<double>() > 0.9 * bound);  // uniform over the whole range, not a tiny scale
        QCOMPARE(p.A.size(0), int64_t(16));
        QCOMPARE(p.scaling, 16.0 / 16.0);
        // Splits leave the initialized model alone (same product) but not the factors.
        const LoraFineTuner a = tuner(InitMethod::Cloq, Split::Default), b = tuner(InitMethod::Cloq, Split::Sqrt);
        QVERIFY(!torch::allclose(a.path(l.name()).B, b.path(l.name()).B));
        const Tensor pa = torch::matmul(a.path(l.name()).B, a.path(l.name()).A);
        const Tensor pb = torch::matmul(b.path(l.name()).B, b.path(l.name()).A);
        QVERIFY(rel_norm(pa, pb) < 1e-5);
    }

    void scheduleIsTransformersCosine() {
        FineTuneOptions o;
        o.steps = 100;
        o.lr = 1e-3;
        o.warmup_ratio = 0.03;  // ceil(3.0) = 3 warmup steps
        QCOMPARE(cosine_lr(o, 0), 0.0);
        QVERIFY(std::abs(cosine_lr(o, 1) - 1e-3 / 3) < 1e-15);
        QVERIFY(std::abs(cosine_lr(o, 3) - 1e-3) < 1e-15);
        QVERIFY(std::abs(cosine_lr(o, 50) - 1e-3 * 0.5 * (1 + std::cos(M_PI * 47.0 / 97.0))) < 1e-15);
        QVERIFY(cosine_lr(o, 99) > 0 && cosine_lr(o, 99) < 1e-5);
        o.warmup_ratio = 0;
        QCOMPARE(cosine_lr(o, 0), 1e-3);
    }

    void trainingLowersLossAndIsSeeded() {
        LoraFineTuner a = tuner(InitMethod::Cloq);
        const FineTuneCurve ca = finetune(a, train_, eval_, opt_);
        QCOMPARE(static_cast<int>(ca.train_loss.size()), opt_.steps);
        QCOMPARE(static_cast<int>(ca.eval_ppl.size()), 3);  // steps 0, 6, 12
        QCOMPARE(ca.eval_ppl.back().first, opt_.steps);
        QVERIFY2(ca.eval_ppl.back().second < ca.eval_ppl.front().second,
                 qPrintable(QString("ppl %1 -> %2").arg(ca.eval_ppl.front().second).arg(ca.eval_ppl.back().second)));
        QVERIFY(ca.seconds_per_step > 0 && ca.tokens_per_second > 0 && ca.peak_rss_bytes > 0);
        QCOMPARE(ca.trainable_parameters, a.trainable_parameters());

        LoraFineTuner b = tuner(InitMethod::Cloq);
        const FineTuneCurve cb = finetune(b, train_, eval_, opt_);
        QCOMPARE(cb.train_loss, ca.train_loss);
        FineTuneOptions other = opt_;
        other.seed = 7;
        LoraFineTuner c = tuner(InitMethod::Cloq, Split::Default, &other);
        QVERIFY(finetune(c, train_, eval_, other).train_loss != ca.train_loss);

        // The written adapter is the trained one, as PEFT saves it.
        QTemporaryDir dir;
        a.write_peft_adapter(dir.path().toStdString(), "stories260K");
        const PeftAdapter back = read_peft_adapter(dir.path().toStdString());
        const auto now = a.adapters();
        QCOMPARE(back.modules.size(), now.size());
        for (const auto& m : now) {
            const auto& r = back.modules.at(m.module);
            QVERIFY(rel_norm(r.A, m.lora_A) < 1e-7);
            QVERIFY(torch::equal(r.B, m.lora_B));
            QCOMPARE(r.scaling, m.lora_alpha / 16.0);
        }
    }

    // The playground's fit: every step lowers the calibrated error, zero init learns, and CLoQ starts at the value
    // the solver reports and hardly moves (it is the optimum of the λ-regularized objective).
    void layerFitDescendsFromEachInit() {
        torch::manual_seed(3);
        const Tensor W = torch::randn({48, 64}, torch::kFloat64) / 8;
        const Tensor X = cloq::test::anisotropic_acts(256, 64, 100.0, 5);
        const Tensor H = X.t().mm(X);
        LayerSolver solver(W.to(torch::kFloat32), H);
        LayerSettings s;
        s.quant.bits = 2;
        s.quant.group = 32;
        s.rank = 8;
        solver.update(s);
        solver.ensure(InitMethod::Loftq);
        LayerFitOptions o;
        o.steps = 60;
        for (const InitMethod m : {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq}) {
            const auto rel = fit_layer_adapter(solver.weight(), solver.base(m), H, solver.init(m), 8, o);
            QCOMPARE(static_cast<int>(rel.size()), o.steps + 1);
            for (size_t t = 1; t < rel.size(); ++t) QVERIFY2(rel[t] <= rel[t - 1] * (1 + 1e-12), to_string(m).c_str());
            if (m != InitMethod::Zero)
                QVERIFY(cloq::test::rel_diff(rel[0], solver.metrics(m, false).fro_rel) <
                        cloq::test::tol::kFloat32Reference);
            if (m == InitMethod::Zero) QVERIFY(rel.back() < 0.9 * rel.front());
            if (m == InitMethod::Cloq) QVERIFY(rel.back() > 0.99 * rel.front());
        }
        cloq::test::expect_error([&] { fit_layer_adapter(W, W, H, LowRank{}, 0, o); }, {"rank 1"});
    }

    // bfloat16 autocast: the forward really runs in bfloat16 (the loss moves), stays within bfloat16's precision of
    // float32 (8 mantissa bits: relative 2^-8 per operation), the gradients point the same way, checkpointing
    // recomputes under the same autocast (the same gradients as without it), and the autocast state is restored.
    void bfloat16AutocastStaysCloseToFloat32() {
        FineTuneOptions bf = opt_;
        bf.autocast = Autocast::BFloat16;
        FineTuneOptions bf_ck = bf;
        bf_ck.grad_checkpoint = true;
        LoraFineTuner f32 = tuner(InitMethod::Cloq), b16 = tuner(InitMethod::Cloq, Split::Default, &bf),
                      b16_ck = tuner(InitMethod::Cloq, Split::Default, &bf_ck);
        const Tensor ids = windows(eval_, 2, 48);
        const Tensor l32 = f32.loss(ids), l16 = b16.loss(ids), l16_ck = b16_ck.loss(ids);
        QVERIFY(!at::autocast::is_cpu_enabled());
        QCOMPARE(l16.scalar_type(), torch::kFloat32);
        const double d = cloq::test::rel_diff(l32.item<double>(), l16.item<double>());
        qInfo("loss float32 %.6f, bfloat16 autocast %.6f (relative %.2g)", l32.item<double>(), l16.item<double>(), d);
        QVERIFY2(d > 1e-6 && d < 2e-2, qPrintable(QString::number(d)));  // it ran in bfloat16, and close
        l32.backward();
        l16.backward();
        l16_ck.backward();
        QVERIFY(!at::autocast::is_cpu_enabled());
        std::vector<Tensor> g32, g16, g16_ck;
        for (const auto& p : f32.parameters()) g32.push_back(p.grad().flatten());
        for (const auto& p : b16.parameters()) g16.push_back(p.grad().flatten());
        for (const auto& p : b16_ck.parameters()) g16_ck.push_back(p.grad().flatten());
        const Tensor a = torch::cat(g32), b = torch::cat(g16), c = torch::cat(g16_ck);
        const double cosine = (a * b).sum().item<double>() / (a.norm() * b.norm()).item<double>();
        qInfo("gradients: cosine %.5f, relative difference %.3g; checkpointed %.3g", cosine, rel_norm(b, a),
              rel_norm(c, b));
        QVERIFY2(cosine > 0.99, qPrintable(QString::number(cosine)));
        QVERIFY2(rel_norm(c, b) < 1e-5, qPrintable(QString::number(rel_norm(c, b))));
        // A few steps follow float32's path within bfloat16's precision.
        for (int t = 1; t <= 3; ++t)
            QVERIFY(cloq::test::rel_diff(f32.train_step(ids, t), b16.train_step(ids, t)) < 2e-2);
    }

    void float16AutocastNeedsCuda() {
        FineTuneOptions o = opt_;
        o.autocast = Autocast::Float16;
        cloq::test::expect_error([&] { tuner(InitMethod::Cloq, Split::Default, &o); }, {"float16", "CUDA"});
        QCOMPARE(parse_autocast("bf16"), Autocast::BFloat16);
        QCOMPARE(QString::fromStdString(to_string(parse_autocast("fp16"))), QString("float16"));
        cloq::test::expect_error([] { parse_autocast("int8"); }, {"int8", "bfloat16"});
    }

    // float16 autocast's dynamic loss scaling (GradScaler): a power-of-two scale is exact, an overflowed step is
    // reported (and skipped by train_step) with the scale halved, and the scale doubles after `interval` good steps.
    void lossScalerFollowsGradScaler() {
        LossScaler s(1024.0, 3);
        Tensor p = torch::tensor({1.0f, -2.0f}).set_requires_grad(true);
        (s.scale((p * torch::tensor({0.5f, 3.0f})).sum())).backward();
        QVERIFY(s.unscale({p}));
        QVERIFY(torch::equal(p.grad(), torch::tensor({0.5f, 3.0f})));  // exactly the unscaled gradient
        s.update(true);
        p.mutable_grad() = torch::tensor({std::numeric_limits<float>::infinity(), 1.0f});
        QVERIFY(!s.unscale({p}));
        s.update(false);
        QCOMPARE(s.value(), 512.0);
        QCOMPARE(s.skipped(), 1);
        for (int i = 0; i < 3; ++i) s.update(true);
        QCOMPARE(s.value(), 1024.0);
    }

    void rejectsBadOptionsAndShortTexts() {
        FineTuneOptions o = opt_;
        o.steps = 0;
        cloq::test::expect_error([&] { validate(o); }, {"--steps 0"});
        o = opt_;
        o.lr = -1;
        cloq::test::expect_error([&] { validate(o); }, {"--lr"});
        LoraFineTuner t = tuner(InitMethod::Zero);
        const std::vector<int32_t> few(train_.begin(), train_.begin() + 100);
        cloq::test::expect_error([&] { finetune(t, few, eval_, opt_); }, {"training text", "fewer than one batch"});
        const std::vector<int32_t> short_eval(eval_.begin(), eval_.begin() + 50);
        cloq::test::expect_error([&] { finetune(t, train_, short_eval, opt_); }, {"evaluation text", "window"});
        cloq::test::expect_error([] { parse_finetune_inits("cloq,bogus", "default"); }, {"bogus"});
        const auto runs = parse_finetune_inits("zero,loftq,cloq,cloq", "default,sqrt,u-vs");
        QCOMPARE(runs.size(), size_t(5));  // zero, loftq, cloq × 3 (duplicates dropped; splits only for cloq)
        QCOMPARE(QString::fromStdString(runs[3].label()), QString("cloq-sqrt"));
    }
};

QTEST_GUILESS_MAIN(TestFinetune)
#include "test_finetune.moc"
