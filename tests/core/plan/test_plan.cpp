// The budget planner (cloq/plan): the allocator is optimal (against brute force on random instances, feasible in
// bytes when it rounds, never above its own Lagrangian bound's gap, never worse than the greedy baseline), the size
// model is the bytes the GPTQ packer writes, and on stories260K the plan's predicted objective is what
// `analyze --profile` of the written profile measures, and it is no worse than the uniform setting of the same size.
// cloq-test-timeout: 600
#include <torch/torch.h>

#include <QtTest/QtTest>
#include <random>

#include "cloq/analysis/analysis.h"
#include "cloq/base/error.h"
#include "cloq/export/gptq_pack.h"
#include "cloq/model/model_files.h"
#include "cloq/plan/allocator.h"
#include "cloq/plan/planner.h"
#include "cloq/quant/quant_int.h"
#include "demo_calibration.h"
#include "expect_error.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::expect_error;

namespace {

using Instance = std::vector<std::vector<PlanOption>>;

// The optimum by enumerating every combination.
double brute_force(const Instance& inst, int64_t budget, bool* feasible) {
    double best = std::numeric_limits<double>::infinity();
    std::vector<size_t> idx(inst.size(), 0);
    while (true) {
        int64_t bytes = 0;
        double obj = 0;
        for (size_t l = 0; l < inst.size(); ++l) bytes += inst[l][idx[l]].bytes, obj += inst[l][idx[l]].objective;
        if (bytes <= budget) best = std::min(best, obj);
        size_t l = 0;
        while (l < inst.size() && ++idx[l] == inst[l].size()) idx[l++] = 0;
        if (l == inst.size()) break;
    }
    *feasible = std::isfinite(best);
    return best;
}

Instance random_instance(std::mt19937& rng, int64_t scale) {
    std::uniform_int_distribution<int> nl(1, 5), no(1, 5);
    std::uniform_int_distribution<int64_t> cost(0, 50 * scale);
    std::uniform_real_distribution<double> obj(0.0, 1.0);
    Instance inst(static_cast<size_t>(nl(rng)));
    for (auto& opts : inst) {
        opts.resize(static_cast<size_t>(no(rng)));
        for (auto& o : opts) o.bytes = cost(rng), o.objective = obj(rng);
    }
    return inst;
}

int64_t total(const Instance& inst, const std::vector<int>& c) {
    int64_t b = 0;
    for (size_t l = 0; l < inst.size(); ++l) b += inst[l][static_cast<size_t>(c[l])].bytes;
    return b;
}

}  // namespace

class TestPlan : public QObject {
    Q_OBJECT
private Q_SLOTS:
    // Integer sizes, unit 1 byte: the DP is the optimum; the bound holds; greedy is never better.
    void exactMatchesBruteForce() {
        std::mt19937 rng(11);
        int feasible_cases = 0;
        for (int it = 0; it < 400; ++it) {
            const Instance inst = random_instance(rng, 1);
            int64_t most = 0;
            for (const auto& opts : inst) {
                int64_t m = 0;
                for (const auto& o : opts) m = std::max(m, o.bytes);
                most += m;
            }
            std::uniform_int_distribution<int64_t> b(0, most);
            const int64_t budget = b(rng);
            bool feasible = false;
            const double opt = brute_force(inst, budget, &feasible);
            const Allocation a = allocate_exact(inst, budget);
            QCOMPARE(a.feasible, feasible);
            if (!feasible) continue;
            ++feasible_cases;
            QVERIFY(a.bytes <= budget);
            QCOMPARE(a.bytes, total(inst, a.choice));
            QVERIFY2(std::abs(a.objective - opt) < 1e-12,
                     qPrintable(QString("case %1: %2 vs %3").arg(it).arg(a.objective).arg(opt)));
            QVERIFY(a.lower_bound <= opt + 1e-9);
            const Allocation g = allocate_greedy(inst, budget);
            QVERIFY(g.feasible && g.bytes <= budget);
            QVERIFY(g.objective >= opt - 1e-12);
        }
        qInfo("%d of 400 random instances feasible", feasible_cases);
        QVERIFY(feasible_cases > 150);
    }

    // Large sizes with a coarse budget grid: every allocation still fits in bytes, and its distance from the true
    // optimum is within the rounding's reach (checked against brute force).
    void roundingStaysFeasible() {
        std::mt19937 rng(5);
        double worst = 0;
        for (int it = 0; it < 200; ++it) {
            const Instance inst = random_instance(rng, 100000);
            std::uniform_int_distribution<int64_t> b(0, 16000000);
            const int64_t budget = b(rng);
            bool feasible = false;
            const double opt = brute_force(inst, budget, &feasible);
            const Allocation a = allocate_exact(inst, budget, 64);
            QCOMPARE(a.feasible, feasible);
            if (!feasible) continue;
            QVERIFY(a.bytes <= budget);
            QVERIFY(a.objective >= opt - 1e-12);
            QVERIFY(a.lower_bound <= opt + 1e-9);
            worst = std::max(worst, a.objective - opt);
        }
        qInfo("64 budget units: worst excess over the optimum %.3g (objectives in [0, 1] per layer)", worst);
    }

    // The size model is the bytes pack_gptq writes (every bit width, grouped and per channel), plus the adapter.
    void sizesAreThePackedBytes() {
        auto gen = at::detail::createCPUGenerator(3);
        const torch::Tensor W = torch::randn({96, 256}, gen);
        for (int bits : {2, 3, 4, 8})
            for (int group : {32, 64, 128, -1}) {
                IntQuantSpec spec;
                spec.bits = bits;
                spec.group = group;
                const GptqTensors t = pack_gptq(quantize_rtn(W, spec), GptqFormat::V2, "w");
                int64_t bytes = 0;
                for (const torch::Tensor& x : {t.qweight, t.qzeros, t.scales, t.g_idx})
                    bytes += x.numel() * static_cast<int64_t>(x.element_size());
                QCOMPARE(gptq_linear_bytes(96, 256, bits, group), bytes);
            }
        QCOMPARE(adapter_bytes(96, 256, 8, 2), int64_t(8 * (96 + 256) * 2));
    }

    void badOptionsAreRefused() {
        PlanOptions o;
        o.budget_mib = 1;
        validate_plan_options(o);
        PlanOptions b = o;
        b.bits = {5};
        expect_error([&] { validate_plan_options(b); }, {"bit width 5"});
        b = o;
        b.budget_bits = 3;
        expect_error([&] { validate_plan_options(b); }, {"exactly one"});
        b = o;
        b.mode = PlanMode::RanksOnly;
        expect_error([&] { validate_plan_options(b); }, {"one bit width"});
        b = o;
        b.ranks = {8, -1};
        expect_error([&] { validate_plan_options(b); }, {"negative"});
        expect_error([&] { parse_plan_mode("all"); }, {"all", "ranks"});
    }

    // The whole planner on the real tiny Llama: what it predicts is what analysis measures under its profile;
    // at the size of a uniform setting it is no worse than that setting (which is one of the feasible plans); the
    // 172-wide MLPs stay float as the exporter keeps them; rank never helps less than it costs in theory.
    void plansStories260K() {
        const ModelFiles files = open_model(test::demo_model_dir());
        LlamaModel model(files);
        const Calibration cal = calibrate(model, test::tinystories_calibration());
        PlanOptions o;
        o.bits = {2, 3, 4};
        o.ranks = {0, 4, 8, 16};
        o.base.quant.group = 32;
        o.budget_like = std::make_pair(3, 8);
        const Plan p = plan_model(files, cal, o);
        QVERIFY(p.exact.feasible);
        QVERIFY(p.fixed_bytes + p.exact.bytes <= requested_budget_bytes(p));
        double uniform = -1;
        for (const PlanPoint& u : p.uniform)
            if (u.label == "3-bit r8") uniform = u.objective;
        QVERIFY(uniform > 0);
        QVERIFY2(p.exact.objective <= uniform + 1e-12,
                 qPrintable(QString("%1 vs %2").arg(p.exact.objective).arg(uniform)));
        QVERIFY(p.exact.objective <= p.greedy.objective + 1e-12);
        QVERIFY(p.exact.lower_bound <= p.exact.objective + 1e-12);
        qInfo("stories260K at the size of 3-bit r8: plan %.6g, greedy %.6g, uniform %.6g, bound %.6g",
              p.exact.objective, p.greedy.objective, uniform, p.exact.lower_bound);
        int plannable = 0;
        for (const LayerCurve& l : p.layers) {
            if (l.layer.short_name() == "gate_proj" || l.layer.short_name() == "up_proj" ||
                l.layer.short_name() == "down_proj") {
                QVERIFY2(!l.plannable, l.layer.name().c_str());  // 172 is not a multiple of 32
                continue;
            }
            QVERIFY(l.plannable);
            ++plannable;
            // For each bit width the objective falls with rank (CLoQ's optimum over a larger set), and more bits
            // cost more bytes.
            for (size_t i = 1; i < l.options.size(); ++i)
                if (l.options[i].bits == l.options[i - 1].bits) {
                    QVERIFY(l.options[i].objective <= l.options[i - 1].objective + 1e-15);
                    QVERIFY(l.options[i].bytes > l.options[i - 1].bytes);
                }
        }
        QCOMPARE(plannable, 20);
        // The profile says what the size counted: the MLPs are skipped (float, no adapter), so `eval` and
        // `analyze` do not quantize them in memory at the default bits with rank 0.
        QCOMPARE(p.profile.skipped.size(), size_t(15));
        for (const LayerCurve& l : p.layers) QCOMPARE(p.profile.is_skipped(l.layer.name()), !l.plannable);
        // Outside --layers, a packable module keeps the base settings, as fixed_bytes counts it.
        PlanOptions only0 = o;
        only0.layer_regex = "layers\\.0\\.self_attn";
        only0.base.quant.bits = 3;
        only0.base.rank = 4;
        const Plan p0 = plan_model(files, cal, only0);
        const LayerSettings& outside = p0.profile.settings_for("model.layers.1.self_attn.q_proj");
        QCOMPARE(outside.quant.bits, 3);
        QCOMPARE(outside.rank, 4);
        QVERIFY(p0.profile.is_skipped("model.layers.1.mlp.up_proj"));
        // The prediction is the measurement: analysis under the plan's profile, CLoQ init.
        AnalysisOptions a;
        a.profile = p.profile;
        a.inits = {InitMethod::Cloq};
        a.spectral = false;
        const ModelAnalysis m = analyze_model(model, cal, a);
        double measured = 0;
        for (const LayerAnalysis& l : m.layers) {
            const std::string k = l.layer.short_name();
            if (k == "gate_proj" || k == "up_proj" || k == "down_proj") continue;
            const double v = l.metrics.at(InitMethod::Cloq).fro_rel;
            measured += v * v;
        }
        QVERIFY2(
            std::abs(measured - p.exact.objective) < 1e-8 * p.exact.objective,
            qPrintable(
                QString("measured %1, predicted %2").arg(measured, 0, 'g', 12).arg(p.exact.objective, 0, 'g', 12)));
        // The front is monotone: more bytes never give a worse optimum.
        for (size_t i = 1; i < p.front.size(); ++i) QVERIFY(p.front[i].objective <= p.front[i - 1].objective + 1e-12);
        // An unreachable budget is refused with the sizes in the message.
        Plan tiny = p;
        expect_error([&] { solve_plan(tiny, p.fixed_bytes / 2); }, {"below the smallest plan", "MiB"});
    }
};

QTEST_MAIN(TestPlan)
#include "test_plan.moc"
