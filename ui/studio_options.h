// Command line of cloq-studio, where the bundled demo lives, and the headless check that runs before any
// QApplication exists (constructing one without a display aborts the process).
#pragma once
#include <QSize>
#include <QString>
#include <QStringList>
#include <optional>

namespace cloq::ui {

struct StudioOptions {
    QString model_dir;    // --model DIR (empty: start page, unless --demo)
    bool demo = false;    // --demo: open the bundled demo model with its text
    QString layer;        // --layer NAME: the module to select (default: the first)
    QString tab;          // --tab discrepancy|rank|spectrum|weights|overview|playground
    QSize size;           // --size WxH (invalid: default size)
    QString screenshot;   // --screenshot FILE.png: save the window once the view is computed, then exit
    QString theme;        // --theme light|dark
    QString profile;      // --profile FILE.json: settings profile to load after opening
    QString calib_text;   // --calib-text FILE (default: the demo's text or the first shared text)
    int nsamples = 0;     // --nsamples N (0: default)
    int seqlen = 0;       // --seqlen N (0: default)
    int timeout_s = 600;  // --timeout S: a screenshot run gives up after S seconds
};

// The tab names --tab accepts, in the order of the main window's tabs.
QStringList tab_names();

// Parses arguments (QCoreApplication must exist). On error or --help/--version, returns nullopt after printing
// to stdout/stderr and sets *exit_code.
std::optional<StudioOptions> parse_studio_options(const QStringList& args, int* exit_code);

// True when Qt can show windows: a DISPLAY or WAYLAND_DISPLAY, or QT_QPA_PLATFORM / -platform chosen explicitly.
bool has_usable_platform(int argc, char** argv);
// What to print when there is none.
QString headless_instructions();

// The shared folder with demo models and texts: $CLOQ_SHARED_DIR, else a `shared` folder next to or above the
// executable (build tree, install prefix), else the one next to the source tree. Empty when none is found.
QString find_shared_dir();
// The same with CLOQ_SHARED_DIR's value given (empty: not set), for tests: the environment must not change while
// QtTest's watchdog thread reads it.
QString find_shared_dir(const QByteArray& env);
// The demo: the smallest model folder in <shared>/models and its calibration text. Empty strings when absent.
struct DemoLocation {
    QString model_dir;
    QString text_path;
};
DemoLocation find_demo();

}  // namespace cloq::ui
