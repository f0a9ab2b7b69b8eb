// The demo calibration every model-level test uses: 32 random windows of 256 tokens of TinyStories (seed 0, no
// cache), as in the README's perplexity tables and the GUI's default.
#pragma once
#include "cloq/analysis/calibration.h"
#include "test_support.h"

namespace cloq::test {

inline CalibrationRequest tinystories_calibration() {
    CalibrationRequest req;
    req.settings.text_path = tinystories_path();
    req.settings.nsamples = 32;
    req.settings.seqlen = 256;
    return req;
}

}  // namespace cloq::test
