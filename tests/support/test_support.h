// Helpers shared by the test suites: where the shared models/data live, temporary folders,
// and conversions to Eigen for the independent float64 reference implementations.
#pragma once
#include <torch/torch.h>

#include <Eigen/Dense>
#include <QTemporaryDir>
#include <cstdlib>
#include <string>

namespace cloq::test {

using MatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline std::string shared_path(const std::string& rel) { return std::string(CLOQ_SHARED_DIR) + "/" + rel; }
inline std::string demo_model_dir() { return shared_path("models/stories260K"); }
inline std::string tinystories_path() { return shared_path("data/tinystories-valid.txt"); }
inline std::string wikitext_path() { return shared_path("data/wikitext-2-test.txt"); }
inline std::string source_path(const std::string& rel) { return std::string(CLOQ_SOURCE_DIR) + "/" + rel; }
// SmolLM2-135M-Instruct (Q4_1 GGUF), where packaging/fetch-smollm2.sh puts it outside the repository; CI runs the
// fetch first and exports CLOQ_SMOLLM2_GGUF.
inline std::string smollm2_path() {
    if (const char* e = std::getenv("CLOQ_SMOLLM2_GGUF"); e && *e) return e;
    std::string dir;
    if (const char* d = std::getenv("CLOQ_SMOLLM2_DIR"); d && *d) {
        dir = d;
    } else {
        const char* home = std::getenv("HOME");
        dir = std::string(home ? home : "") + "/.cache/cloq-studio/smollm2";
    }
    return dir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// A tensor (any float dtype, 2-D) as a float64 Eigen matrix, and back.
inline MatrixXd to_eigen(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    return Eigen::Map<const MatrixXd>(c.data_ptr<double>(), c.size(0), c.size(1));
}
inline torch::Tensor from_eigen(const MatrixXd& m) {
    auto t = torch::empty({m.rows(), m.cols()}, torch::kFloat64);
    Eigen::Map<MatrixXd>(t.data_ptr<double>(), m.rows(), m.cols()) = m;
    return t;
}

// Random activations with a controlled spread of column scales (condition number of H about cond^2),
// the kind of anisotropy real LLM inputs have.
inline torch::Tensor anisotropic_acts(int64_t tokens, int64_t in, double cond, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto x = torch::randn({tokens, in}, gen, torch::kFloat64);
    auto scales = torch::logspace(0, std::log10(cond), in, 10.0, torch::kFloat64);
    auto mix = torch::randn({in, in}, gen, torch::kFloat64) / std::sqrt(static_cast<double>(in));
    return (x * scales).mm(torch::eye(in, torch::kFloat64) + 0.3 * mix);
}

inline double rel_diff(double a, double b) { return std::abs(a - b) / std::max({std::abs(a), std::abs(b), 1e-300}); }

}  // namespace cloq::test
