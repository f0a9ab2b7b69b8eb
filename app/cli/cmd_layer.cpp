// `cloq layer`: quantize one linear layer and initialize its LoRA adapter from .npy files (issue 3's contract).
#include <torch/torch.h>

#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/timing.h"
#include "cloq/io/npy.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/lowrank/metrics_json.h"
#include "commands.h"

namespace fs = std::filesystem;

namespace cloq::cli {

namespace {

torch::Tensor load_matrix(const std::string& path, const char* what) {
    auto t = read_npy(path);
    if (t.dim() != 2) throw Error(path + ": " + what + " must be a 2-D array, got shape " + c10::str(t.sizes()));
    if (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kFloat64 && t.scalar_type() != torch::kHalf)
        throw Error(path + ": " + what + " must be float32 or float64, got " + c10::toString(t.scalar_type()));
    if (t.size(0) == 0 || t.size(1) == 0)
        throw Error(path + ": " + what + " is empty (shape " + c10::str(t.sizes()) + ")");
    if (!torch::isfinite(t).all().item<bool>()) throw Error(path + ": " + what + " contains NaN or Inf values");
    return t;
}

// metrics.json keeps nlohmann::json's sorted keys.
nlohmann::json to_json(const Discrepancy& d) { return nlohmann::json(discrepancy_json(d)); }

}  // namespace

int cmd_layer(const Args& args, std::ostream& out, std::ostream& err) {
    std::string weight_path, gram_path, acts_path, out_dir;
    bool json = false, save_codes = false;
    LayerSettings s;
    DeviceChoice device = DeviceChoice::Auto;
    ArgParser p("layer", "cloq layer --weight W.npy (--gram H.npy | --acts X.npy) --out DIR [options]",
                "Quantize one linear layer and initialize its LoRA adapter (CLoQ, LoftQ, zero or plain SVD).\n"
                "W.npy is [out, in], H.npy [in, in] (= XᵀX), X.npy [tokens, in], float32 or float64 in C order.\n"
                "DIR receives Q.npy [out, in], lora_A.npy [r, in], lora_B.npy [out, r] (effective weight\n"
                "Q + lora_B @ lora_A, no LoRA scaling) and metrics.json: fro, spec, fro_rel, spec_rel of\n"
                "||X (Q + B A - W)^T|| for the chosen init and the same for zero and svd on the same Q.");
    p.section("Input and output");
    p.option("weight", &weight_path, "W.npy", "the layer's weight [out, in]", true);
    p.option("gram", &gram_path, "H.npy", "Gram matrix of the calibration inputs XᵀX [in, in]");
    p.option("acts", &acts_path, "X.npy", "calibration inputs [tokens, in] (H = XᵀX is formed in float64)");
    p.option("out", &out_dir, "DIR", "new or empty output folder (written atomically)", true);
    p.flag("json", &json, "print metrics.json to standard output");
    p.flag("save-codes", &save_codes,
           "also write the INT quantization: codes.npy (uint8), scales.npy, zeros.npy (int32), g_idx.npy (int32)");
    add_quant_options(p, s);
    add_device_option(p, device);
    if (!p.parse(args, out)) return 0;
    if (gram_path.empty() == acts_path.empty()) throw UsageError("give exactly one of --gram H.npy or --acts X.npy");
    try {
        validate(s);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
    const bool out_exists = check_out_dir(out_dir);
    // The temporary output folder is made now: an unwritable --out fails before the work, as in quantize.
    AtomicDir dir(out_dir, /*replace_existing=*/out_exists);
    const Stopwatch t_total;
    nlohmann::json timings;

    // Inputs.
    Stopwatch t0;
    const torch::Device dev = resolve_device(device);
    auto W = load_matrix(weight_path, "the weight");
    torch::Tensor H;
    std::string h_name;
    if (!gram_path.empty()) {
        H = load_matrix(gram_path, "the Gram matrix");
        h_name = gram_path;
        if (H.size(0) != H.size(1) || H.size(0) != W.size(1))
            throw Error(gram_path + ": the Gram matrix must be [in, in] = [" + std::to_string(W.size(1)) + ", " +
                        std::to_string(W.size(1)) + "] for the weight " + weight_path + ", got " + c10::str(H.sizes()));
    } else {
        const auto X = load_matrix(acts_path, "the activations");
        h_name = acts_path;
        if (X.size(1) != W.size(1))
            throw Error(acts_path + ": the activations must be [tokens, " + std::to_string(W.size(1)) +
                        "] for the weight " + weight_path + ", got " + c10::str(X.sizes()));
        const auto Xd = X.to(dev, torch::kFloat64);
        H = Xd.t().mm(Xd);
    }
    if (s.rank > std::min(W.size(0), W.size(1)))
        throw UsageError("--rank " + std::to_string(s.rank) + " exceeds min(out, in) = " +
                         std::to_string(std::min(W.size(0), W.size(1))) + " of " + weight_path);
    timings["load"] = t0.seconds();

    // H is validated (and factored) before the progress bar starts, so a bad file gives exactly one line.
    t0.restart();
    auto hf = std::make_shared<const HessianFactor>(H.to(dev), h_name);
    timings["hessian"] = t0.seconds();
    LayerSolver solver(W.to(dev), hf, weight_path);
    TerminalProgress bar(err, "cloq layer");
    solver.update(s, bar.progress().slice(0.0, 0.75));
    solver.ensure(InitMethod::Svd, bar.progress().slice(0.75, 0.85));
    for (const auto& [k, v] : solver.timings()) timings[k] = v;

    // Metrics of the chosen init and the two baselines on the same Q.
    bar.progress()(0.85, "metrics");
    t0.restart();
    nlohmann::json j;
    j["init"] = to_string(s.init);
    j["out_features"] = W.size(0);
    j["in_features"] = W.size(1);
    const Discrepancy chosen = solver.metrics(s.init);
    const nlohmann::json chosen_json = to_json(chosen);  // a named object: items() must not outlive it
    for (const auto& [k, v] : chosen_json.items()) j[k] = v;
    if (s.init == InitMethod::Loftq) {
        // LoftQ sits on its own Q (requantized in its loop, or NF): the baselines are measured on that Q.
        const auto Qb = solver.base(InitMethod::Loftq);
        j["zero"] = to_json(discrepancy(W.to(dev), Qb, zero_init(W.size(0), W.size(1), s.rank), hf->H()));
        j["svd"] = to_json(discrepancy(W.to(dev), Qb, svd_init(W.to(dev), Qb, s.rank, s.split), hf->H()));
    } else {
        j["zero"] = to_json(s.init == InitMethod::Zero ? chosen : solver.metrics(InitMethod::Zero));
        j["svd"] = to_json(s.init == InitMethod::Svd ? chosen : solver.metrics(InitMethod::Svd));
    }
    j["cloq_optimal_hlambda"] = solver.cloq_optimal_value();  // sqrt(Σ_{i>r} S_i²), Algorithm 1's check
    j["lambda"] = hf->lambda();
    timings["metrics"] = t0.seconds();

    // Outputs, all or nothing.
    bar.progress()(0.95, "writing");
    t0.restart();
    const LowRank lr = solver.init(s.init, torch::kFloat32);
    write_npy(dir.file("Q.npy"), solver.base(s.init).to(torch::kCPU, torch::kFloat32));
    write_npy(dir.file("lora_A.npy"), lr.A.to(torch::kCPU));
    write_npy(dir.file("lora_B.npy"), lr.B.to(torch::kCPU));
    if (save_codes) {
        const QuantizedWeight* qw = &solver.quantized();
        if (s.init == InitMethod::Loftq) {
            const auto& lq = solver.loftq();
            qw = lq.int_weight ? &*lq.int_weight : nullptr;
        }
        if (!qw) throw Error("--save-codes: LoftQ with the NF quantizer has no INT codes (use --loftq-quant int)");
        write_npy(dir.file("codes.npy"), qw->codes.to(torch::kCPU));
        write_npy(dir.file("scales.npy"), qw->scales.to(torch::kCPU));
        write_npy(dir.file("zeros.npy"), qw->zeros.to(torch::kCPU));
        write_npy(dir.file("g_idx.npy"), qw->g_idx.to(torch::kCPU));
    }
    timings["write"] = t0.seconds();
    timings["total"] = t_total.seconds();
    j["settings"] = cloq::to_json(s);
    j["device"] = dev.str();
    j["timings_s"] = timings;
    write_file_atomic(dir.file("metrics.json"), j.dump(2) + "\n");
    dir.commit();
    bar.progress()(1.0, "done");
    bar.finish();

    if (json) {
        out << j.dump(2) << "\n";
    } else {
        out << std::fixed << std::setprecision(6);
        out << "cloq layer: " << W.size(0) << "x" << W.size(1) << ", " << s.quant.bits << "-bit g" << s.quant.group
            << " " << to_string(s.method) << ", rank " << s.rank << ", init " << to_string(s.init) << "\n";
        out << "  relative discrepancy ||X(Q+BA-W)^T|| / ||XW^T||   fro        spec\n";
        const auto row = [&](const std::string& name, const nlohmann::json& d) {
            out << "  " << std::left << std::setw(48) << name << std::right << d["fro_rel"].get<double>() << "   "
                << d["spec_rel"].get<double>() << "\n";
        };
        row(to_string(s.init) + " (chosen)", j);
        row("zero", j["zero"]);
        row("svd", j["svd"]);
        out << "  wrote " << out_dir << "/{Q,lora_A,lora_B}.npy and metrics.json in " << std::setprecision(2)
            << timings["total"].get<double>() << " s\n";
    }
    return 0;
}

}  // namespace cloq::cli
