// `cloq`: the command-line twin of CLoQ Studio. All work happens in core/ (cloq_cli).
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
    return cloq::cli::run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
