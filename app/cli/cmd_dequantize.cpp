// `cloq dequantize BASE --out DIR`: a GPTQ checkpoint (or any exported base) as a plain float16 model.
#include <filesystem>
#include <ostream>

#include "cli.h"
#include "cloq/base/atomic_file.h"
#include "cloq/export/exported_model.h"
#include "cloq/export/gptq_checkpoint.h"
#include "commands.h"

namespace fs = std::filesystem;

namespace cloq::cli {

int cmd_dequantize(const Args& args, std::ostream& out, std::ostream& err) {
    std::string base, dir;
    ArgParser p("dequantize", "BASE --out DIR",
                "Reads a GPTQ checkpoint (e.g. OUT/base of 'cloq quantize') and writes it as a plain float16\n"
                "safetensors model (config.json without quantization_config, tokenizer files copied).\n"
                "DIR appears only when complete.");
    p.positional("BASE", &base, "GPTQ checkpoint folder");
    p.option("out", &dir, "DIR", "output folder (must not exist)", true);
    if (!p.parse(args, out)) return 0;
    if (!fs::is_directory(base)) throw Error("base folder " + base + " does not exist");
    const auto cfg_path = (fs::path(base) / "config.json").string();
    if (!fs::exists(cfg_path)) throw Error(base + ": no config.json");
    const auto weights = open_base_weights(base);
    AtomicDir target(dir);
    TerminalProgress tp(err, "dequantize");
    write_fp16_model(target.path(), *weights, read_json_file(cfg_path), tp.progress());
    copy_tokenizer_files(base, target.path());
    target.commit();
    tp.finish();
    out << "wrote " << dir << " (" << weights->describe() << " as float16)\n";
    return 0;
}

}  // namespace cloq::cli
