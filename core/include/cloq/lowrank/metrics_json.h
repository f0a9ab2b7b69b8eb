// The one JSON form of a Discrepancy, used by `cloq layer`'s metrics.json, `cloq analyze`'s report and the export
// pipeline's report.json (which also reads it back for --resume): {"fro", "spec", "fro_rel", "spec_rel"}.
#pragma once
#include <nlohmann/json.hpp>

#include "cloq/lowrank/metrics.h"

namespace cloq {

inline nlohmann::ordered_json discrepancy_json(const Discrepancy& d) {
    return {{"fro", d.fro}, {"spec", d.spec}, {"fro_rel", d.fro_rel}, {"spec_rel", d.spec_rel}};
}

template <class Json>
Discrepancy discrepancy_from_json(const Json& j) {
    Discrepancy d;
    d.fro = j.at("fro").template get<double>();
    d.spec = j.at("spec").template get<double>();
    d.fro_rel = j.at("fro_rel").template get<double>();
    d.spec_rel = j.at("spec_rel").template get<double>();
    return d;
}

}  // namespace cloq
