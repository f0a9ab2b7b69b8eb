#include <torch/torch.h>

#include <iostream>

#include "cli.h"
#include "commands.h"

namespace cloq::cli {

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        // {name, one-line summary, function}: one row per command, in the order `cloq --help` lists them
        {"layer", "quantize one layer (.npy) and initialize its LoRA adapter; report discrepancies", cmd_layer},
        {"info", "architecture, shapes, dtype, parameters and tokenizer of a model", cmd_info},
        {"calibrate", "compute and cache the calibration Gram matrices H = X^T X of a model", cmd_calibrate},
        {"analyze", "every linear layer: zero/svd/loftq/cloq discrepancies and timings (JSON + CSV)", cmd_analyze},
        {"eval", "perplexity of the float or quantized model (with an adapter init) on a text", cmd_eval},
        {"quantize", "quantize a whole model: PEFT adapter + GPTQ/fp16 base + profile + report", cmd_quantize},
        {"dequantize", "turn an exported GPTQ base into a plain float16 model", cmd_dequantize},
        {"finetune", "LoRA fine-tune the quantized model from each init: loss/perplexity curves + adapters",
         cmd_finetune},
        {"plan", "per-layer bits and ranks for a size budget (exact knapsack on the calibrated discrepancies)",
         cmd_plan},
    };
    return table;
}

namespace {
std::string top_help() {
    std::string h =
        "Usage: cloq COMMAND [OPTIONS]\n\n"
        "CLoQ Studio's command line: quantize Llama-family models and initialize LoRA adapters with CLoQ\n"
        "(calibrated closed form), LoftQ or zero init, measure the discrepancy ||X(Q + BA - W)||, and export\n"
        "PEFT adapters and GPTQ checkpoints.\n\nCommands:\n";
    for (const auto& c : commands()) {
        h += "  " + c.name + std::string(c.name.size() < 12 ? 12 - c.name.size() : 1, ' ') + c.summary + "\n";
    }
    h += "\nRun 'cloq COMMAND --help' for a command's options. 'cloq --version' prints versions.\n";
    return h;
}
}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        (args.empty() ? err : out) << top_help();
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version" || args[0] == "version") {
        out << "cloq " << CLOQ_VERSION << " (LibTorch " << TORCH_VERSION << ", "
            << (torch::cuda::is_available() ? "CUDA available" : "CPU") << ")\n";
        return 0;
    }
    for (const auto& c : commands()) {
        if (c.name != args[0]) continue;
        const std::vector<std::string> rest(args.begin() + 1, args.end());
        try {
            return c.run(rest, out, err);
        } catch (const UsageError& e) {
            err << "cloq " << c.name << ": " << e.what() << "\n";
            return 2;
        } catch (const Cancelled&) {
            err << "cloq " << c.name << ": cancelled; nothing was written\n";
            return 130;
        } catch (const std::exception& e) {
            err << "cloq " << c.name << ": " << error_message(e) << "\n";
            return 1;
        }
    }
    err << "cloq: unknown command '" << args[0] << "' (see 'cloq --help')\n";
    return 2;
}

}  // namespace cloq::cli
