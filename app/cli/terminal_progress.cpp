#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iomanip>
#include <mutex>
#include <ostream>
#include <sstream>

#include "cli.h"

namespace cloq::cli {

namespace {
// SIGINT can only reach a token through a static: the handler sets a flag, the token polls it.
std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted.store(true); }

std::string format_seconds(double s) {
    std::ostringstream o;
    if (s < 0 || !std::isfinite(s)) return "--:--";
    const int t = static_cast<int>(s + 0.5);
    if (t >= 3600)
        o << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << "m";
    else
        o << t / 60 << ":" << std::setw(2) << std::setfill('0') << t % 60;
    return o.str();
}
}  // namespace

struct TerminalProgress::State {
    std::ostream* err;
    std::string label;
    bool tty;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_draw{};
    std::mutex mutex;
    int last_percent = -1;
    bool drawn = false;
    void (*previous_handler)(int) = SIG_DFL;
};

TerminalProgress::TerminalProgress(std::ostream& err, std::string label) : state_(std::make_shared<State>()) {
    state_->err = &err;
    state_->label = std::move(label);
    state_->tty = isatty(STDERR_FILENO) == 1 && &err == &std::cerr;
    g_interrupted.store(false);
    state_->previous_handler = std::signal(SIGINT, on_sigint);
    auto st = state_;
    auto token = progress_.cancel;
    progress_.report = [st, token](double f, const std::string& step) {
        if (g_interrupted.load()) token.cancel();
        std::lock_guard<std::mutex> lock(st->mutex);
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - st->start).count();
        const int percent = static_cast<int>(f * 100.0);
        const double eta = f > 1e-6 ? elapsed * (1.0 - f) / f : -1.0;
        if (st->tty) {
            if (now - st->last_draw < std::chrono::milliseconds(100) && f < 1.0) return;
            st->last_draw = now;
            const int width = 30, filled = std::clamp(static_cast<int>(f * width), 0, width);
            *st->err << "\r" << st->label << " [" << std::string(filled, '#') << std::string(width - filled, '.')
                     << "] " << std::setw(3) << percent << "% " << format_seconds(elapsed) << " ETA "
                     << format_seconds(eta) << "  " << step.substr(0, 40) << "\x1b[K" << std::flush;
            st->drawn = true;
        } else if (percent / 10 != st->last_percent / 10) {
            // Not a terminal (logs, CI): a line every 10 %.
            st->last_percent = percent;
            *st->err << st->label << ": " << percent << "% (" << format_seconds(elapsed) << " elapsed, ETA "
                     << format_seconds(eta) << ") " << step << "\n";
        }
    };
}

void TerminalProgress::finish() {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->tty && state_->drawn) *state_->err << "\r\x1b[K" << std::flush;
    state_->drawn = false;
}

TerminalProgress::~TerminalProgress() {
    finish();
    std::signal(SIGINT, state_->previous_handler);
}

}  // namespace cloq::cli
