// The export written directly with core's writers (PEFT adapter, GPTQ checkpoint / float16 base, profile, report),
// used while core has no batch pipeline (cloq/quantize_pipeline.h). It holds the whole model's packed outputs in
// memory, which is fine for the demo and small models; the pipeline streams block by block.
#pragma once
#include <functional>
#include <string>

#include "cloq/profile.h"
#include "cloq/progress.h"

namespace cloq::ui {

class ModelSession;

struct DirectExportOptions {
    std::string out_dir;               // must not exist; built in a temporary sibling and renamed when complete
    std::string base_format = "gptq";  // gptq | gptq_v2 | fp16
    bool adapter_fp16 = true;
    bool write_adapter = true, write_base = true, write_profile = true, write_report = true;
    std::function<void(const std::string& temp_out)> add_files;  // e.g. the chart images, before the commit
};

// Throws cloq::Error / cloq::Cancelled; on failure nothing is left at out_dir.
void run_direct_export(const ModelSession& session, const SettingsProfile& profile, const DirectExportOptions& opt,
                       const Progress& progress);

}  // namespace cloq::ui
