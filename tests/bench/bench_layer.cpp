// bench_layer: time each stage of a layer solve (what `cloq layer` and the GUI do) at the sizes of issue 3 —
// 768², 2048², 4096² and 11008×4096, 2-bit, group 64, rank 64 — and write JSON plus a markdown table into the
// `<!-- bench_layer -->` section of docs/benchmarks.md. Targets on a 2-core CPU: the whole CLoQ init of a 4096²
// layer (GPTQ + factorization + spectrum) under 20 s; a rank or split change on a cached 4096² layer under 50 ms.
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/lowrank/layer_solver.h"
#include "markdown_section.h"

using namespace cloq;

namespace {

struct Shape {
    int64_t out, in;
    std::string name() const { return std::to_string(out) + "x" + std::to_string(in); }
};

// Calibration-like inputs: column scales spread over two decades and correlated columns (as in the tests).
torch::Tensor make_gram(int64_t in, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    const int64_t tokens = in;  // enough for a full-rank H; how H was made does not change any stage's cost
    auto X = torch::randn({tokens, in}, gen, torch::kFloat32) * torch::logspace(0, 2, in, 10.0, torch::kFloat32);
    X = X.mm(torch::eye(in) + 0.3f * torch::randn({in, in}, gen, torch::kFloat32) / std::sqrt(float(in)));
    auto Xd = X.to(torch::kFloat64);
    return Xd.t().mm(Xd);
}

nlohmann::json bench_shape(const Shape& sh, bool paper_route) {
    std::cerr << "== " << sh.name() << "\n";
    auto gen = at::detail::createCPUGenerator(7);
    const auto W = torch::randn({sh.out, sh.in}, gen, torch::kFloat32) * 0.02f;
    const auto H = make_gram(sh.in, 11);
    nlohmann::json r;
    r["shape"] = sh.name();
    nlohmann::json t;
    LayerSettings s;  // 2-bit, g64, r64, GPTQ, CLoQ default split
    s.quant.bits = 2;
    s.quant.group = 64;
    s.rank = 64;

    Stopwatch t0;
    auto hf = std::make_shared<const HessianFactor>(H, "H");
    t["hessian_cholesky"] = t0.seconds();
    LayerSolver solver(W, hf, "W");
    t0.restart();
    solver.update(s);
    const double update = t0.seconds();
    const auto st = solver.timings();
    t["gptq"] = st.at("quantize");
    t["gram"] = st.at("gram");
    t["eigensolve"] = st.at("eigensolve");
    t["vectors"] = st.at("vectors");
    t0.restart();
    const auto lr = solver.init(InitMethod::Cloq, torch::kFloat32);
    t["factors"] = t0.seconds();
    t["cloq_init_total"] = t["hessian_cholesky"].get<double>() + update + t["factors"].get<double>();
    std::cerr << "  CLoQ init " << t["cloq_init_total"].get<double>() << " s\n";

    t0.restart();
    const auto m_fro = solver.metrics(InitMethod::Cloq, false);
    t["metrics_fro"] = t0.seconds();
    t0.restart();
    const auto m = solver.metrics(InitMethod::Cloq, true);
    t["metrics_fro_spec"] = t0.seconds();
    r["cloq_fro_rel"] = m.fro_rel;
    r["cloq_spec_rel"] = m.spec_rel;

    // The GUI's layer view first draws the rank sweep 0..max(256, 2r) (which computes those singular vectors once),
    // then the user drags the rank slider and flips the split: each move is update() + init() on the cached solver.
    t0.restart();
    (void)solver.rank_sweep(InitMethod::Cloq, 256);
    t["rank_sweep_0_256"] = t0.seconds();
    const auto change = [&](LayerSettings ns) {
        const Stopwatch c0;
        solver.update(ns);
        (void)solver.init(InitMethod::Cloq, torch::kFloat32);
        return c0.seconds();
    };
    auto s2 = s;
    s2.rank = 32;
    t["rank_change_64_to_32"] = change(s2);
    s2.rank = 128;
    t["rank_change_32_to_128"] = change(s2);
    s2.split = Split::Sqrt;
    t["split_change"] = change(s2);
    s2.split = Split::Default;
    s2.rank = 64;
    t["rank_change_128_to_64"] = change(s2);
    t0.restart();
    (void)solver.metrics(InitMethod::Cloq, false);
    t["metrics_fro_after_change"] = t0.seconds();
    // Past the cached vectors (only when the layer has that many): new vectors from the cached tridiagonal form.
    if (std::min(sh.out, sh.in) >= 512) {
        s2.rank = 512;
        t["rank_change_64_to_512"] = change(s2);
        solver.update(s);  // back to rank 64 for the svd baseline below
    }
    t0.restart();
    solver.ensure(InitMethod::Svd);
    t["svd_baseline"] = t0.seconds();
    r["svd_fro_rel"] = solver.metrics(InitMethod::Svd, false).fro_rel;
    r["zero_fro_rel"] = solver.metrics(InitMethod::Zero, false).fro_rel;
    (void)lr;
    (void)m_fro;

    if (paper_route) {
        // For comparison: Algorithm 1 literally — full eigh of H_λ and a full float64 SVD of R·ΔWᵀ.
        const auto dW = W.to(torch::kFloat64) - solver.quantized().Q.to(torch::kFloat64);
        t0.restart();
        auto [sig, U] = torch::linalg::eigh(hf->H_lambda(), "L");
        t["paper_eigh"] = t0.seconds();
        t0.restart();
        auto M = (sig.sqrt().unsqueeze(1) * U.t()).mm(dW.t());
        auto svd = torch::linalg::svd(M, false, c10::nullopt);
        t["paper_svd"] = t0.seconds();
    }
    r["seconds"] = t;
    return r;
}

std::string fmt(double s) {
    char b[32];
    if (s < 1)
        std::snprintf(b, sizeof b, "%.1f ms", s * 1e3);
    else
        std::snprintf(b, sizeof b, "%.2f s", s);
    return b;
}

std::string markdown(const nlohmann::json& all) {
    std::ostringstream md;
    md << "### `bench_layer`: one layer, 2-bit, group 64, rank 64, GPTQ + CLoQ (float64 spectrum)\n\n";
    md << "Machine: " << all["machine"].get<std::string>() << ". Generated by `tests/bench/bench_layer` on "
       << all["date"].get<std::string>() << ".\n\n";
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"hessian_cholesky", "Cholesky of H_λ (shared by q/k/v)"},
        {"gptq", "GPTQ (2-bit, g64)"},
        {"gram", "R·ΔWᵀ and its Gram matrix"},
        {"eigensolve", "eigenvalues (tridiagonal + all S)"},
        {"vectors", "top singular vectors + factors"},
        {"factors", "init(): lora_A/lora_B"},
        {"cloq_init_total", "**whole CLoQ init**"},
        {"metrics_fro", "metrics: Frobenius"},
        {"metrics_fro_spec", "metrics: Frobenius + spectral"},
        {"rank_sweep_0_256", "rank sweep r = 0..256 (fro; computes 256 vectors once)"},
        {"rank_change_64_to_32", "rank 64→32 + init (cached)"},
        {"rank_change_32_to_128", "rank 32→128 + init (cached)"},
        {"split_change", "split default→sqrt + init (cached)"},
        {"rank_change_128_to_64", "rank 128→64 + init (cached)"},
        {"metrics_fro_after_change", "metrics (fro) after a change"},
        {"rank_change_64_to_512", "rank 64→512 + init (new vectors)"},
        {"svd_baseline", "plain-SVD baseline (ensure(svd))"},
        {"paper_eigh", "for comparison: full eigh(H_λ)"},
        {"paper_svd", "for comparison: full SVD of R·ΔWᵀ"},
    };
    md << "| stage |";
    for (const auto& r : all["results"]) md << " " << r["shape"].get<std::string>() << " |";
    md << "\n|---|";
    for (size_t i = 0; i < all["results"].size(); ++i) md << "---:|";
    md << "\n";
    for (const auto& [key, label] : rows) {
        bool any = false;
        for (const auto& r : all["results"]) any = any || r["seconds"].contains(key);
        if (!any) continue;
        md << "| " << label << " |";
        for (const auto& r : all["results"])
            md << " " << (r["seconds"].contains(key) ? fmt(r["seconds"][key].get<double>()) : std::string("–")) << " |";
        md << "\n";
    }
    md << "| relative discrepancy fro: CLoQ / svd / zero |";
    for (const auto& r : all["results"]) {
        char b[96];
        std::snprintf(b, sizeof b, " %.4f / %.4f / %.4f |", r["cloq_fro_rel"].get<double>(),
                      r["svd_fro_rel"].get<double>(), r["zero_fro_rel"].get<double>());
        md << b;
    }
    md << "\n";
    return md.str();
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<Shape> shapes = {{768, 768}, {2048, 2048}, {4096, 4096}, {11008, 4096}};
    std::string json_path, md_path, machine;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--json")
            json_path = next();
        else if (a == "--markdown")
            md_path = next();
        else if (a == "--machine")
            machine = next();
        else if (a == "--sizes") {
            shapes.clear();
            std::stringstream ss(next());
            for (std::string tok; std::getline(ss, tok, ',');) {
                const auto x = tok.find('x');
                const int64_t o = std::stoll(tok.substr(0, x)),
                              n = x == std::string::npos ? o : std::stoll(tok.substr(x + 1));
                shapes.push_back({o, n});
            }
        } else {
            std::cerr
                << "usage: bench_layer [--sizes 768,2048,4096,11008x4096] [--json FILE] [--markdown docs/benchmarks.md]"
                   " [--machine TEXT]\n";
            return a == "--help" ? 0 : 2;
        }
    }
    if (machine.empty())
        machine =
            std::to_string(std::thread::hardware_concurrency()) + "-core CPU, LibTorch " TORCH_VERSION " + OpenBLAS";
    nlohmann::json all;
    all["machine"] = machine;
    {
        const std::time_t now = std::time(nullptr);
        char b[32];
        std::strftime(b, sizeof b, "%Y-%m-%d", std::gmtime(&now));
        all["date"] = b;
    }
    all["results"] = nlohmann::json::array();
    for (const auto& sh : shapes) all["results"].push_back(bench_shape(sh, sh.out * sh.in <= 2048 * 2048));
    std::cout << all.dump(2) << "\n";
    if (!json_path.empty()) write_file_atomic(json_path, all.dump(2) + "\n");
    if (!md_path.empty()) bench::write_markdown_section(md_path, "bench_layer", markdown(all));
    return 0;
}
