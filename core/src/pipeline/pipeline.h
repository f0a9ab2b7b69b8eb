// The quantize-and-export pipeline (`cloq quantize`, the GUI's export): its state and its jobs, one file each.
//   quantize_pipeline.cpp  orchestration: checks, calibration, the blocks in model order, commit of OUT
//   resume.cpp             the resume folder: run key, finished blocks written and read back
//   module_solve.cpp       one block's modules: quantize, initialize, measure, the block's tensor file
//   assembly.cpp           OUT/base (GPTQ checkpoint or float16 model) and OUT/adapter from the block files
//   report.cpp             report.json / report.csv and the perplexity of what was written
// Private to core/src/pipeline.
#pragma once
#include <torch/torch.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "base/content_hash.h"
#include "cloq/analysis/calibration.h"
#include "cloq/base/atomic_file.h"
#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/export/exported_model.h"
#include "cloq/export/gptq_checkpoint.h"
#include "cloq/export/gptq_pack.h"
#include "cloq/io/safetensors.h"
#include "cloq/io/safetensors_stream.h"
#include "cloq/lowrank/factor_cache.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/layer_solver.h"
#include "cloq/lowrank/lowrank.h"
#include "cloq/lowrank/metrics.h"
#include "cloq/lowrank/metrics_json.h"
#include "cloq/model/llama_model.h"
#include "cloq/model/model_files.h"
#include "cloq/model/model_layout.h"
#include "cloq/model/perplexity.h"
#include "cloq/pipeline/quantize_pipeline.h"
#include "export/gguf_hf_export.h"
#include "export/peft_export.h"

namespace cloq::pipeline {

namespace fs = std::filesystem;

constexpr int kResumeVersion = 1;
inline constexpr const char* kAdapterPrefix = "base_model.model.";

inline bool is_adapter_tensor(const std::string& n) { return n.rfind(kAdapterPrefix, 0) == 0; }
inline nlohmann::ordered_json to_ordered(const nlohmann::json& j) { return nlohmann::ordered_json::parse(j.dump()); }

// resume.cpp
std::string block_stem(const std::string& resume, int layer);
nlohmann::ordered_json record_json(const ModuleRecord& r);
ModuleRecord record_from_json(const nlohmann::json& j, const std::string& where);

// module_solve.cpp
// PEFT's default LoRA init (lora_A Kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in); lora_B = 0) for modules
// whose adapter must not change the weight: a trainable adapter with product 0. Seeded by the module name (FNV-1a)
// so exports are reproducible.
LowRank product_zero_adapter(int64_t out, int64_t in, int64_t r, const std::string& module);
QuantizedWeight to_cpu(const QuantizedWeight& q);
// ‖X Dᵀ‖_F / ‖X Wᵀ‖_F from H, for what the files hold.
double export_rel(const torch::Tensor& eff, const torch::Tensor& W, const torch::Tensor& H);
// Non-linear tensors as the export stores them: copied in their stored dtype (gptq), or float16 (fp16).
torch::Tensor stored_other(const WeightSource& src, const std::string& name, BaseFormat f);

// The weights a model built from the export sees for non-linear tensors (fp16 rounds them).
class RoundedWeights : public WeightSource {
public:
    explicit RoundedWeights(std::shared_ptr<const WeightSource> b) : b_(std::move(b)) {}
    std::vector<std::string> names() const override { return b_->names(); }
    bool contains(const std::string& n) const override { return b_->contains(n); }
    std::vector<int64_t> shape(const std::string& n) const override { return b_->shape(n); }
    std::string dtype(const std::string&) const override { return "F16"; }
    torch::Tensor load(const std::string& n) const override {
        return b_->load(n).to(torch::kFloat16).to(torch::kFloat32);
    }
    std::string describe() const override { return b_->describe() + " rounded to float16"; }

private:
    std::shared_ptr<const WeightSource> b_;
};

struct Block {
    std::vector<ModuleRecord> records;
    std::map<std::string, torch::Tensor> eff;     // module -> what the files hold (Q_store + s·B·A), float32
    std::map<std::string, torch::Tensor> solved;  // module -> unrounded Q + B·A (only computed this run)
};

class Pipeline {
public:
    Pipeline(const QuantizeExportOptions& opt, const Progress& progress) : opt_(opt), progress_(progress) {}
    QuantizeExportResult run();

private:
    const QuantizeExportOptions& opt_;
    const Progress& progress_;
    QuantizeExportResult res_;
    ModelFiles mf_;
    std::vector<LinearLayer> layers_;
    std::map<std::string, LayerSettings> settings_;
    std::set<std::string> skipped_;
    std::string resume_, run_key_;
    bool keep_eval_ = false;
    torch::Device device_ = torch::kCPU;
    std::map<std::string, torch::Tensor> eff_, solved_;
    bool solved_complete_ = true;
    std::vector<std::string> finished_blocks_;
    // Notices about this run only (resumed blocks): printed, but kept out of report.json so that an interrupted and
    // resumed export writes the same files as an uninterrupted one (timings aside, which live under "timings").
    std::vector<std::string> run_notices_;
    int blocks_done_ = 0;
    Stopwatch t_layers_;
    double layer_seconds_ = 0;

    GptqFormat gptq_format() const { return opt_.format == BaseFormat::GptqV2 ? GptqFormat::V2 : GptqFormat::V1; }
    void progress(double f, const std::string& s) const { progress_(f, s); }
    Progress layer_progress(int layer) const {
        const double lo = 0.25 + 0.6 * layer / std::max<int64_t>(1, mf_.config.num_layers);
        return progress_.slice(lo, lo + 0.6 / std::max<int64_t>(1, mf_.config.num_layers));
    }

    void prepare_resume();
    bool load_finished_block(int layer, Block& b);
    Block process_block(int layer, const std::function<torch::Tensor(InputGroup)>& hessian, const Progress& p);
    void finish_block(int layer, Block&& b);
    void assemble(const std::string& dir, const Calibration& calib);
    std::string adapter_base_reference() const;  // base_model_name_or_path of the exported adapter
    nlohmann::ordered_json report_json(const Calibration& calib) const;
    std::string report_csv() const;
    void evaluate(const std::string& temp_out);
};

}  // namespace cloq::pipeline
