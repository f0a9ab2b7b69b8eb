// Named tolerances for the suites' numerical comparisons, each with the reason it is that size. A check states
// which one it uses, so that a reader sees what kind of agreement is claimed (llama.cpp's test-backend-ops declares
// its error bound next to each op in the same spirit).
#pragma once

namespace cloq::test::tol {

// The same computation reached through two paths (the GUI and the CLI, a cached and a fresh solver): float64
// results that may differ only in summation order.
constexpr double kSamePath = 1e-12;
// The same model evaluated through two front ends: a float32 forward pass whose reductions may be ordered
// differently (perplexity, mean NLL).
constexpr double kSameForward = 1e-9;
// An independent float64 reference (Eigen, a plain-LibTorch forward) against the engine's float64 code.
constexpr double kFloat64Reference = 1e-10;
// The engine's float32 path against a float64 reference.
constexpr double kFloat32Reference = 1e-5;

}  // namespace cloq::test::tol
