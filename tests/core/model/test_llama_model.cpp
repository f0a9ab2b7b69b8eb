// The forward pass against an independent float64 implementation written here from the formulas (plain loops
// over tokens and heads, Eigen for the matrix products), on the real stories260K checkpoint: logits, the inputs the
// hooks see, a substituted weight; and greedy generation against the reference run in SOURCE.md.
#include <QtTest/QtTest>

#include <cmath>

#include "cloq/model/llama_model.h"
#include "cloq/model/model_files.h"
#include "reference_llama.h"
#include "test_support.h"

using namespace cloq;
using cloq::test::MatrixXd;
using cloq::test::ReferenceLlama;
using cloq::test::to_eigen;

namespace {

double max_abs(const MatrixXd& a) { return a.cwiseAbs().maxCoeff(); }

// A short stretch of TinyStories-like ids (the reference greedy run) plus arbitrary ids across the vocabulary.
std::vector<int> sample_ids() {
    std::vector<int> ids = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338};
    for (int i = 0; i < 15; ++i) ids.push_back((i * 97 + 13) % 512);
    return ids;
}

torch::Tensor as_batch(const std::vector<int>& ids) {
    return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
}

}  // namespace

class TestLlamaModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void logitsMatchIndependentReference() {
        const auto m = open_model(cloq::test::demo_model_dir());
        LlamaModel model(m);
        const auto ids = sample_ids();
        ReferenceLlama ref{m};
        const MatrixXd want = ref.logits(ids);
        std::map<InputGroup, torch::Tensor> seen;
        auto hook = [&](int layer, InputGroup g, const torch::Tensor& x) {
            if (layer == ref.probe_layer) seen[g] = x.clone();
        };
        const MatrixXd got = to_eigen(model.forward(as_batch(ids), hook)[0]);
        const double err = max_abs(got - want), scale = max_abs(want);
        qInfo("max |logit - reference| = %.3g (logits up to %.3g)", err, scale);
        QVERIFY2(err <= 2e-4 * scale, "float32 forward within 2e-4 of the float64 reference");
        // The hooks see exactly the linear inputs of the reference.
        QCOMPARE(seen.size(), size_t(4));
        QVERIFY(max_abs(to_eigen(seen[InputGroup::AttnIn]) - ref.probe_attn_in) <= 1e-4 * max_abs(ref.probe_attn_in));
        QVERIFY(max_abs(to_eigen(seen[InputGroup::OProj]) - ref.probe_o) <= 1e-4 * max_abs(ref.probe_o));
        QVERIFY(max_abs(to_eigen(seen[InputGroup::MlpIn]) - ref.probe_mlp_in) <= 1e-4 * max_abs(ref.probe_mlp_in));
        QVERIFY(max_abs(to_eigen(seen[InputGroup::DownProj]) - ref.probe_down) <= 1e-4 * max_abs(ref.probe_down));
    }

    void batchedWindowsAreIndependent() {
        // Two different windows in one batch give the same logits as each alone (no leakage across the batch).
        LlamaModel model(open_model(cloq::test::demo_model_dir()));
        auto a = sample_ids(), b = sample_ids();
        std::reverse(b.begin(), b.end());
        auto both = torch::cat({as_batch(a), as_batch(b)}, 0);
        auto lb = model.forward(both);
        // Only float32 rounding differs (GEMM blocking depends on the batch size): logits are up to ~20.
        auto diff = [](const torch::Tensor& x, const torch::Tensor& y) { return (x - y).abs().max().item<double>(); };
        const double d0 = diff(lb[0], model.forward(as_batch(a))[0]), d1 = diff(lb[1], model.forward(as_batch(b))[0]);
        qInfo("batched vs single: %.3g %.3g", d0, d1);
        QVERIFY(d0 < 1e-4 && d1 < 1e-4);
        // Causality: logits at position t do not depend on later tokens.
        auto prefix = std::vector<int>(a.begin(), a.begin() + 10);
        QVERIFY(diff(model.forward(as_batch(prefix))[0], lb[0].slice(0, 0, 10)) < 1e-4);
    }

    void weightTransformSubstitutesLinears() {
        const auto m = open_model(cloq::test::demo_model_dir());
        LlamaModel model(m);
        int calls = 0;
        model.set_weight_transform([&](const LinearLayer& lin, const torch::Tensor& W) {
            ++calls;
            if (W.size(0) != lin.out || W.size(1) != lin.in) throw std::logic_error("shape");
            return W + 0.01;
        });
        const auto ids = sample_ids();
        const MatrixXd got = to_eigen(model.forward(as_batch(ids))[0]);
        QCOMPARE(calls, 7 * 5);
        ReferenceLlama ref{m, 0.01};
        const MatrixXd want = ref.logits(ids);
        QVERIFY(max_abs(got - want) <= 2e-4 * max_abs(want));
        // The substitution changed the output measurably (the check above is not trivially passing).
        ReferenceLlama plain{m};
        QVERIFY(max_abs(plain.logits(ids) - want) > 1e-2);
        // Cached blocks are rebuilt after a new transform; a wrong shape is refused.
        model.set_weight_transform([](const LinearLayer&, const torch::Tensor&) { return torch::zeros({2, 2}); });
        QVERIFY_THROWS_EXCEPTION(cloq::Error, model.forward(as_batch(ids)));
    }

    void greedyGenerationMatchesReferenceRun() {
        LlamaModel model(open_model(cloq::test::demo_model_dir()));
        // SOURCE.md: BOS + "Once upon a time" = [1, 403, 407, 261, 378], 40 greedy tokens.
        const std::vector<int32_t> want = {1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317,
                                           426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295,
                                           433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426};
        const auto got = model.generate_greedy({1, 403, 407, 261, 378}, 40);
        QCOMPARE(got, want);
    }

    void rejectsBadInput() {
        LlamaModel model(open_model(cloq::test::demo_model_dir()));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, model.forward(torch::tensor({{1, 600}}, torch::kLong)));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, model.load_block(5));
        QVERIFY_THROWS_EXCEPTION(cloq::Error, model.generate_greedy({}, 3));
    }
};

QTEST_APPLESS_MAIN(TestLlamaModel)
#include "test_llama_model.moc"
