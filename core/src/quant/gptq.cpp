#include "quant/gptq.h"

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "cloq/base/error.h"

namespace cloq {

namespace {

// Columns inside a GPTQ block are processed in sub-blocks of this many: eager rank-1 updates inside a sub-block,
// one GEMM for the rest of the block at its end. Mathematically identical to the reference's eager update of the
// whole block row (only the summation order differs); it keeps the memory-bound rank-1 work small.
constexpr int64_t kSubBlock = 16;

void check_inputs(const torch::Tensor& W, const torch::Tensor& H, const GptqOptions& opt) {
    if (!W.defined() || W.dim() != 2 || W.size(0) == 0 || W.size(1) == 0)
        throw Error("GPTQ: the weight must be a non-empty 2-D [out, in] matrix");
    const int64_t in = W.size(1);
    if (!H.defined() || H.dim() != 2 || H.size(0) != in || H.size(1) != in)
        throw Error("GPTQ: H must be [" + std::to_string(in) + ", " + std::to_string(in) + "] to match the weight's " +
                    std::to_string(in) + " input features" +
                    (H.defined() && H.dim() == 2
                         ? ", got [" + std::to_string(H.size(0)) + ", " + std::to_string(H.size(1)) + "]"
                         : std::string()));
    if (!W.is_floating_point() || !H.is_floating_point()) throw Error("GPTQ: weight and H must be floating point");
    if (!torch::isfinite(W).all().item<bool>()) throw Error("GPTQ: the weight contains NaN or Inf");
    if (!torch::isfinite(H).all().item<bool>()) throw Error("GPTQ: H contains NaN or Inf");
    if (!(opt.damp > 0) || !std::isfinite(opt.damp)) throw Error("GPTQ: damp must be a positive number");
    if (opt.blocksize < 1) throw Error("GPTQ: block size must be positive");
}

// R upper triangular with H = R·Rᵀ (the Cholesky factor of H with rows and columns reversed), float64.
// Its inverse is the reference's U (UᵀU = H⁻¹, U upper): R⁻¹ᵀR⁻¹ = (RRᵀ)⁻¹. Returns undefined on failure.
torch::Tensor reversed_cholesky(const torch::Tensor& H) {
    auto [L, info] = torch::linalg_cholesky_ex(H.flip({0, 1}), /*upper=*/false, /*check_errors=*/false);
    if (info.item<int64_t>() != 0) return {};
    return L.flip({0, 1});
}

// Quantizes row i of W1 (one column of W) with the current group parameters, records code, dequantized value,
// scaled error err = (w' − q)/d and the plain difference δ = w₀ − q against the unmodified weight w₀.
// CPU: a plain loop with exactly quantize_codes/dequantize_codes's float32 operations (15 small tensor ops per
// column would dominate the run time); other devices: those functions themselves.
void quantize_column(const torch::Tensor& w, const torch::Tensor& w0, const torch::Tensor& scale,
                     const torch::Tensor& zero, int maxq, double d, torch::Tensor code_out, torch::Tensor q_out,
                     torch::Tensor err_out, torch::Tensor delta_out) {
    if (!w.is_cpu()) {
        const auto c = quantize_codes(w.to(torch::kFloat32), scale, zero, maxq);
        const auto q = dequantize_codes(c, scale, zero);
        code_out.copy_(c);
        q_out.copy_(q);
        const auto q64 = q.to(torch::kFloat64);
        torch::sub_out(err_out, w, q64).div_(d);
        torch::sub_out(delta_out, w0, q64);
        return;
    }
    const int64_t n = w.numel();
    const double* wp = w.data_ptr<double>();
    const double* w0p = w0.data_ptr<double>();
    const float* sp = scale.data_ptr<float>();
    const float* zp = zero.data_ptr<float>();
    float* cp = code_out.data_ptr<float>();
    float* qp = q_out.data_ptr<float>();
    double* ep = err_out.data_ptr<double>();
    double* dp = delta_out.data_ptr<double>();
    const float fmaxq = static_cast<float>(maxq);
    for (int64_t r = 0; r < n; ++r) {
        const float c = std::min(std::max(std::nearbyint(static_cast<float>(wp[r]) / sp[r]) + zp[r], 0.0f), fmaxq);
        const float q = sp[r] * (c - zp[r]);
        cp[r] = c;
        qp[r] = q;
        ep[r] = (wp[r] - q) / d;
        dp[r] = w0p[r] - q;
    }
}

}  // namespace

QuantizedWeight quantize_gptq(const torch::Tensor& W_in, const torch::Tensor& H_in, const IntQuantSpec& spec,
                              const GptqOptions& opt, const Progress& progress) {
    validate(spec);
    check_inputs(W_in, H_in, opt);
    progress(0.0, "GPTQ");
    const auto f64 = W_in.options().dtype(torch::kFloat64);
    const auto i64 = W_in.options().dtype(torch::kInt64);
    const auto W32 = W_in.to(torch::kFloat32);  // the reference's W.float()
    const int64_t out = W32.size(0), in = W32.size(1);
    const bool grouped = spec.group > 0;
    const int64_t g = spec.group_size(in), G = spec.num_groups(in);
    const int maxq = spec.maxq();

    auto H = H_in.to(torch::kFloat64).clone();
    const double asym = (H - H.t()).abs().max().item<double>();
    const double hmax = H.abs().max().item<double>();
    if (asym > 1e-4 * hmax) throw Error("GPTQ: H is not symmetric (max |H - Hᵀ| = " + std::to_string(asym) + ")");
    H = 0.5 * (H + H.t());  // a no-op for an exactly symmetric H; removes float32 accumulation noise otherwise

    // Per-channel parameters come from the whole W before the dead-column fix (the reference's first find_params).
    GroupParams channel_params;
    if (!grouped) channel_params = find_group_params(W32, spec);

    // Work on Wᵀ [in, out] so that a column of W is a contiguous row; float64 for the error feedback.
    auto Wt = W32.t().to(torch::kFloat64).contiguous();
    const auto dead = H.diagonal() == 0;
    H.diagonal().masked_fill_(dead, 1.0);
    Wt.index_put_({dead}, 0.0);

    std::vector<GroupParams> static_params;
    if (grouped && opt.static_groups) {
        const auto W_dead_fixed = Wt.t().to(torch::kFloat32);
        for (int64_t k = 0; k < G; ++k)
            static_params.push_back(find_group_params(W_dead_fixed.slice(1, k * g, std::min(in, (k + 1) * g)), spec));
    }

    torch::Tensor perm;  // perm[pos] = original column processed at position pos
    if (opt.act_order) {
        perm = std::get<1>(torch::sort(H.diagonal(), /*stable=*/true, /*dim=*/0, /*descending=*/true));
        Wt = Wt.index_select(0, perm);
        H = H.index_select(0, perm).index_select(1, perm);
    } else {
        perm = torch::arange(in, i64);
    }
    const auto perm_cpu = perm.cpu();
    const auto perm_a = perm_cpu.accessor<int64_t, 1>();

    // Damping: the reference's amount first. A Hessian XᵀX is positive semidefinite, so the damped one is
    // positive definite unless H is corrupt or numerically indefinite; then we retry with 10x and 100x the
    // damping (like GPTQModel's automatic damp increase) and give up with an error after that.
    const double mean_diag = H.diagonal().mean().item<double>();
    torch::Tensor R;
    double damp = opt.damp;
    for (int attempt = 0; attempt < 3 && !R.defined(); ++attempt, damp *= 10) {
        auto Hd = H.clone();
        Hd.diagonal().add_(damp * mean_diag);
        R = reversed_cholesky(Hd);
    }
    if (!R.defined())
        throw Error("GPTQ: H is not positive definite even with damping " + std::to_string(damp / 10) +
                    " x mean(diag H); the calibration matrix is corrupt (it must be XᵀX)");
    H = torch::Tensor();

    // How this computes the reference's quantities without forming H⁻¹ (one Cholesky instead of three O(n³)
    // factorizations; no explicit inverse, which also helps when cond(H) is large):
    // with U = R⁻¹ and the reference's err_k = (w'_k − q_k)/U_kk, the reference's updates give w₀ − q = err·U
    // (w₀: the weight before any feedback), i.e. err = δ·R with δ = w₀ − q. The reference's OUTER W at the start
    // of a block [i1, i2) is w₀ − err_{<i1}·U_{<i1,≥i1} = w₀ + (δ_{<i1}·R_{<i1,≥i1})·R_{≥i1,≥i1}⁻¹; restricted to
    // the block's columns only the block's own diagonal block of R is needed. Inside the block the reference's
    // Hinv1 = U[i1:i2, i1:i2] = R[i1:i2, i1:i2]⁻¹ drives exactly the reference's eager updates.
    auto Qt = torch::empty({in, out}, W32.options());     // dequantized, permuted order, transposed
    auto Ct = torch::empty({in, out}, W32.options());     // codes as float32, same layout
    auto Dt = torch::empty({in, out}, f64);               // δ = w₀ − q, same layout
    auto scales = torch::empty({G, out}, W32.options());  // per group index, [G, out] (transposed at the end)
    auto zeros = torch::empty({G, out}, W32.options());
    std::vector<int64_t> group_of_pos(in, 0);
    if (!grouped) {
        scales[0].copy_(channel_params.scale);
        zeros[0].copy_(channel_params.zero);
    }
    if (grouped && opt.static_groups)
        for (int64_t k = 0; k < G; ++k) {
            scales[k].copy_(static_params[k].scale);
            zeros[k].copy_(static_params[k].zero);
        }

    // The reference's outer W rows [i1, e) at the start of the block beginning at i1.
    auto outer_rows = [&](int64_t i1, int64_t e) {
        auto S = Wt.slice(0, i1, e).clone();
        if (i1 > 0) {
            const auto B = R.slice(0, 0, i1).slice(1, i1, e).t().mm(Dt.slice(0, 0, i1));
            S.add_(torch::linalg_solve_triangular(R.slice(0, i1, e).slice(1, i1, e).t(), B, /*upper=*/false));
        }
        return S;
    };

    torch::Tensor cur_scale = grouped ? torch::Tensor() : channel_params.scale.contiguous();
    torch::Tensor cur_zero = grouped ? torch::Tensor() : channel_params.zero.contiguous();
    const int64_t bs = opt.blocksize;
    for (int64_t i1 = 0; i1 < in; i1 += bs) {
        const int64_t i2 = std::min(i1 + bs, in), count = i2 - i1;
        const auto Hinv1 =
            torch::linalg_solve_triangular(R.slice(0, i1, i2).slice(1, i1, i2), torch::eye(count, f64), /*upper=*/true);
        const auto d_cpu = Hinv1.diagonal().cpu().contiguous();
        const double* d = d_cpu.data_ptr<double>();
        auto W1 = outer_rows(i1, i2);
        const auto W1_start = W1.clone();  // the outer W of this block, where group parameters come from
        auto Err1 = torch::empty({count, out}, f64);
        for (int64_t j1 = 0; j1 < count; j1 += kSubBlock) {
            const int64_t j2 = std::min(j1 + kSubBlock, count);
            for (int64_t i = j1; i < j2; ++i) {
                const int64_t col = i1 + i;
                if (grouped) {
                    if (!opt.static_groups) {
                        // parameters from the OUTER W, which has the feedback of finished blocks only
                        if (col % g == 0) {
                            const int64_t e = std::min(in, col + g);
                            const auto rows =
                                e <= i2 ? W1_start.slice(0, i, e - i1) : outer_rows(i1, e).slice(0, i, e - i1);
                            const auto p = find_group_params(rows.t().to(torch::kFloat32), spec);
                            cur_scale = p.scale.contiguous();
                            cur_zero = p.zero.contiguous();
                            scales[col / g].copy_(p.scale);
                            zeros[col / g].copy_(p.zero);
                        }
                        group_of_pos[col] = col / g;
                    } else {
                        const int64_t k = perm_a[col] / g;
                        cur_scale = static_params[k].scale.contiguous();
                        cur_zero = static_params[k].zero.contiguous();
                        group_of_pos[col] = k;
                    }
                }
                auto err = Err1[i];
                quantize_column(W1[i], Wt[col], cur_scale, cur_zero, maxq, d[i], Ct[col], Qt[col], err, Dt[col]);
                if (i + 1 < j2)
                    W1.slice(0, i + 1, j2).addr_(Hinv1[i].slice(0, i + 1, j2), err, /*beta=*/1, /*alpha=*/-1);
            }
            if (j2 < count)
                W1.slice(0, j2, count)
                    .addmm_(Hinv1.slice(0, j1, j2).slice(1, j2, count).t(), Err1.slice(0, j1, j2), 1, -1);
        }
        progress(static_cast<double>(i2) / static_cast<double>(in), "GPTQ");
    }

    auto g_idx = torch::from_blob(group_of_pos.data(), {in}, torch::kInt64).clone().to(W32.device());
    if (opt.act_order) {
        const auto invperm = torch::argsort(perm);
        Qt = Qt.index_select(0, invperm);
        Ct = Ct.index_select(0, invperm);
        g_idx = g_idx.index_select(0, invperm);
    }
    QuantizedWeight qw;
    qw.spec = spec;
    qw.Q = Qt.t().contiguous();
    qw.codes = Ct.t().to(torch::kUInt8).contiguous();
    qw.scales = scales.t().contiguous();
    qw.zeros = zeros.t().to(torch::kInt32).contiguous();
    qw.g_idx = g_idx.to(torch::kInt32);
    return qw;
}

}  // namespace cloq
