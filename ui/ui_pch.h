// Precompiled header of cloq_ui (see ui/CMakeLists.txt): LibTorch and the Qt modules every widget uses.
#pragma once
#include <torch/torch.h>
#include <QtCharts>
#include <QtWidgets>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>
