// The application around the main window: options, theme, font and icon, the --screenshot flow, and a clean
// shutdown that cancels and waits for background work.
#pragma once

class QApplication;

namespace cloq::ui {

// Parses the command line of `app`, shows the main window (or runs the headless screenshot) and runs the event
// loop. Returns the process exit code.
int run_studio(QApplication& app);

}  // namespace cloq::ui
