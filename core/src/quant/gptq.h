// GPTQ / OPTQ (Frantar et al. 2022), numerically the reference algorithm (IST-DASLab gptq.py `fasterquant`),
// in nn.Linear layout: W [out, in], H = XᵀX [in, in].
//
// What is reproduced exactly (docs/design.md, Quantizers):
//  * dead columns (diag H == 0) get H_ii = 1 and W[:, i] = 0;
//  * damp = opt.damp · mean(diag H) added to the diagonal (after the dead-column fix, as the reference);
//  * U = upper Cholesky factor of H⁻¹ drives the error feedback; columns processed in blocks of `blocksize`,
//    eager updates inside a block, the rest of W updated only at block ends;
//  * group parameters are taken from the OUTER W at the first column of each group; the outer W receives the error
//    feedback only at block ends, so a group that starts inside a block sees the state at that block's start
//    (also for groups not aligned to blocks and a ragged last group);
//  * group -1: per-channel parameters from the whole W before the dead-column fix (the reference's first
//    find_params call);
//  * act-order: columns permuted by descending diag H (stable sort), static groups: parameters computed from the
//    unpermuted W up front, and g_idx[j] = the group whose parameters quantized original column j
//    (= j / g with static groups, = position of j in the permutation / g without them, like AutoGPTQ).
// Numerics: everything but the quantization itself is float64 (robust for cond(H) ≥ 1e6). Instead of the
// reference's three O(n³) steps (cholesky, cholesky_inverse, cholesky) it factors H once, H = R·Rᵀ with R upper
// (U = R⁻¹), and gets the reference's block-end state of W from the accumulated quantization differences with one
// GEMM + a small triangular solve per block (derivation in gptq.cpp): the same quantities, about 2x less work and
// no explicit inverse. Quantization (parameters and codes) is float32 with quant_int.h's rule, as the reference,
// so codes equal the reference's computed in float64.
#pragma once
#include <torch/types.h>

#include "cloq/base/progress.h"
#include "cloq/quant/quant_int.h"

namespace cloq {

struct GptqOptions {
    double damp = 0.01;          // fraction of mean(diag H) added to the diagonal
    int blocksize = 128;         // lazy-batch block size (changes results: group parameters see block-end updates)
    bool act_order = false;      // desc_act: process columns by descending diag H
    bool static_groups = false;  // group parameters from the unquantized W before any error feedback
};

// W [out, in] (any float dtype), H [in, in] (float64 preferred; any float dtype, symmetric).
// Returns codes/scales/zeros/g_idx/Q like quantize_rtn. Throws cloq::Error on shape mismatch, NaN/Inf in W or H,
// bad options, or an H that stays non-positive-definite after increased damping.
QuantizedWeight quantize_gptq(const torch::Tensor& W, const torch::Tensor& H, const IntQuantSpec& spec,
                              const GptqOptions& opt, const Progress& progress = {});

}  // namespace cloq
