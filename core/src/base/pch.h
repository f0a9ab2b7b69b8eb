// Precompiled header for targets that include LibTorch: parsing torch/torch.h costs ~25 s per file.
#pragma once
#include <torch/torch.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
