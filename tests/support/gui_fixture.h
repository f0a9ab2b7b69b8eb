// What every GUI suite does around its main window: the shared folder and a private calibration cache in the
// environment, a real MainWindow at 1280×800 in the light theme, and an orderly close (jobs cancelled, the pool
// drained) so no worker outlives the window. GUI suites only (it links cloq_ui).
#pragma once
#include <QByteArray>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <memory>

#include "background_job.h"
#include "main_window.h"
#include "theme.h"

namespace cloq::test {

// Call in the suite's constructor: QtTest's watchdog thread reads the environment at every test function, and a
// setenv while another thread reads it is a data race (it crashed a suite once).
inline void set_gui_environment(const QTemporaryDir& home) {
    qputenv("CLOQ_SHARED_DIR", QByteArray(CLOQ_SHARED_DIR));
    qputenv("CLOQ_CACHE_DIR", home.path().toUtf8() + "/cache");  // empty: the GUI calibrates and caches itself
}

// A shown main window; recent files and settings go to QStandardPaths' test location.
inline std::unique_ptr<ui::MainWindow> show_main_window() {
    QStandardPaths::setTestModeEnabled(true);
    ui::apply_theme(*qApp, ui::Theme::Light);
    auto w = std::make_unique<ui::MainWindow>();
    w->resize(1280, 800);
    w->show();
    return w;
}

// Opens the demo model and waits until it is open and calibrated; with `analysed`, also until the automatic analysis
// of the small model has finished. False on a failure or after the timeouts.
inline bool open_demo(ui::MainWindow& w, bool analysed = false) {
    QSignalSpy opened(&w, &ui::MainWindow::modelOpened);
    QSignalSpy done(&w, &ui::MainWindow::analysisFinished);
    if (!w.openDemo() || !opened.wait(120000)) return false;
    return !analysed || !done.isEmpty() || done.wait(300000);
}

inline void close_main_window(std::unique_ptr<ui::MainWindow>& w) {
    if (!w) return;
    w->cancelJobs();
    ui::BackgroundJob::jobPool()->waitForDone();
    w.reset();
}

}  // namespace cloq::test
