// cloq-studio: the desktop application. Boots Qt and hands over to ui/ (StudioApp); everything it computes is in
// core/. Before any QApplication exists it checks that Qt can show windows, because constructing one without a
// display aborts the process: it prints how to run headless instead (and picks the offscreen platform by itself
// for --screenshot runs, which need no screen).
#include <QApplication>
#include <QCoreApplication>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "studio_app.h"
#include "studio_options.h"

namespace {
bool wants_screenshot(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--screenshot") == 0 || std::strncmp(argv[i], "--screenshot=", 13) == 0) return true;
    return false;
}
bool wants_help_or_version(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        for (const char* f : {"--help", "-h", "--version", "-v", "--help-all"})
            if (std::strcmp(argv[i], f) == 0) return true;
    return false;
}
}  // namespace

int main(int argc, char** argv) {
    QCoreApplication::setOrganizationName("CLoQ");
    QCoreApplication::setApplicationName("CLoQ Studio");
    QCoreApplication::setApplicationVersion(CLOQ_VERSION);

    if (!cloq::ui::has_usable_platform(argc, argv)) {
        if (wants_help_or_version(argc, argv)) {
            QCoreApplication app(argc, argv);  // --help / --version need no display
            int code = 0;
            cloq::ui::parse_studio_options(QCoreApplication::arguments(), &code);
            return code;
        }
        if (!wants_screenshot(argc, argv)) {
            std::fputs(cloq::ui::headless_instructions().toLocal8Bit().constData(), stderr);
            return 2;
        }
        std::fputs("cloq-studio: no display; using QT_QPA_PLATFORM=offscreen for the screenshot\n", stderr);
        setenv("QT_QPA_PLATFORM", "offscreen", 1);
    }

    QApplication app(argc, argv);
    return cloq::ui::run_studio(app);
}
