// An independent float64 Llama forward pass for the tests, written from the formulas (plain loops over tokens and
// heads, Eigen for the products): RMSNorm, RoPE with HF's rotate_half pairing, causal GQA attention, SwiGLU, tied
// head. It shares nothing with core/src/model/llama_model.cpp but the weight reader.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "cloq/model/model_files.h"
#include "test_support.h"

namespace cloq::test {

// HF Llama forward in float64. `delta` is added to every linear weight (to check weight substitution).
struct ReferenceLlama {
    const ModelFiles& m;
    double delta = 0;
    // Inputs of layer `probe_layer`'s linear groups, recorded on the way.
    int probe_layer = 1;
    MatrixXd probe_attn_in, probe_o, probe_mlp_in, probe_down;

    MatrixXd W(const std::string& name) const { return to_eigen(m.weights->load(name)); }
    MatrixXd lin(const std::string& name) const { return (W(name).array() + delta).matrix(); }
    Eigen::RowVectorXd vec(const std::string& name) const {
        return to_eigen(m.weights->load(name).reshape({1, -1})).row(0);
    }
    static MatrixXd rms(const MatrixXd& x, const Eigen::RowVectorXd& w, double eps) {
        MatrixXd y(x.rows(), x.cols());
        for (int t = 0; t < x.rows(); ++t) {
            const double ms = x.row(t).squaredNorm() / static_cast<double>(x.cols());
            y.row(t) = x.row(t).cwiseProduct(w) / std::sqrt(ms + eps);
        }
        return y;
    }

    MatrixXd logits(const std::vector<int>& ids) {
        const auto& c = m.config;
        const int T = static_cast<int>(ids.size());
        const int64_t D = c.head_dim, nh = c.num_heads, nkv = c.num_kv_heads;
        const MatrixXd E = W("model.embed_tokens.weight");
        MatrixXd x(T, c.hidden_size);
        for (int t = 0; t < T; ++t) x.row(t) = E.row(ids[t]);
        for (int l = 0; l < c.num_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            const MatrixXd xn = rms(x, vec(p + "input_layernorm.weight"), c.rms_norm_eps);
            MatrixXd Q = xn * lin(p + "self_attn.q_proj.weight").transpose();
            MatrixXd K = xn * lin(p + "self_attn.k_proj.weight").transpose();
            const MatrixXd V = xn * lin(p + "self_attn.v_proj.weight").transpose();
            // RoPE, rotate_half pairing (i, i + D/2), angle t * theta^(-2i/D)
            auto rope = [&](MatrixXd& M, int64_t heads) {
                for (int t = 0; t < T; ++t)
                    for (int64_t h = 0; h < heads; ++h)
                        for (int64_t i = 0; i < D / 2; ++i) {
                            const double ang = t * std::pow(c.rope_theta, -2.0 * i / D);
                            const double a = M(t, h * D + i), b = M(t, h * D + i + D / 2);
                            M(t, h * D + i) = a * std::cos(ang) - b * std::sin(ang);
                            M(t, h * D + i + D / 2) = b * std::cos(ang) + a * std::sin(ang);
                        }
            };
            rope(Q, nh);
            rope(K, nkv);
            MatrixXd attn = MatrixXd::Zero(T, nh * D);
            for (int64_t h = 0; h < nh; ++h) {
                const int64_t kvh = h / (nh / nkv);
                for (int t = 0; t < T; ++t) {
                    std::vector<double> s(t + 1);
                    double mx = -1e300;
                    for (int u = 0; u <= t; ++u) {
                        s[u] = Q.row(t).segment(h * D, D).dot(K.row(u).segment(kvh * D, D)) / std::sqrt(double(D));
                        mx = std::max(mx, s[u]);
                    }
                    double z = 0;
                    for (auto& v : s) z += (v = std::exp(v - mx));
                    for (int u = 0; u <= t; ++u)
                        attn.row(t).segment(h * D, D) += s[u] / z * V.row(u).segment(kvh * D, D);
                }
            }
            x += attn * lin(p + "self_attn.o_proj.weight").transpose();
            const MatrixXd yn = rms(x, vec(p + "post_attention_layernorm.weight"), c.rms_norm_eps);
            const MatrixXd g = yn * lin(p + "mlp.gate_proj.weight").transpose();
            const MatrixXd u = yn * lin(p + "mlp.up_proj.weight").transpose();
            const MatrixXd a = (g.array() / (1.0 + (-g.array()).exp()) * u.array()).matrix();
            x += a * lin(p + "mlp.down_proj.weight").transpose();
            if (l == probe_layer) {
                probe_attn_in = xn;
                probe_o = attn;
                probe_mlp_in = yn;
                probe_down = a;
            }
        }
        const MatrixXd xf = rms(x, vec("model.norm.weight"), c.rms_norm_eps);
        return xf * E.transpose();  // tied head
    }
};

// Mean next-token NLL of one window under the reference.
inline double reference_mean_nll(ReferenceLlama& ref, const std::vector<int>& ids) {
    const MatrixXd lg = ref.logits(ids);
    double nll = 0;
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
        const double mx = lg.row(t).maxCoeff();
        const double lse = mx + std::log((lg.row(t).array() - mx).exp().sum());
        nll += lse - lg(t, ids[t + 1]);
    }
    return nll / static_cast<double>(ids.size() - 1);
}

}  // namespace cloq::test
