#include "layer_worker.h"

#include <torch/torch.h>

#include "cloq/base/error.h"
#include "cloq/base/timing.h"
#include "cloq/lowrank/hessian_factor.h"
#include "cloq/lowrank/layer_solver.h"
#include "layer_analysis.h"

namespace cloq::ui {

LayerWorker::LayerWorker(QObject* parent, int cached_layers)
    : QObject(parent),
      capacity_(cached_layers),
      factors_(FactorCache::Keep::Bounded, static_cast<size_t>(cached_layers)) {
    qRegisterMetaType<cloq::ui::LayerReport>();
    thread_ = std::thread([this] { run(); });
}

LayerWorker::~LayerWorker() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
        runningToken_.cancel();
    }
    wake_.notify_all();
    thread_.join();
}

uint64_t LayerWorker::request(const LayerSource& source, const LayerSettings& settings) {
    uint64_t gen;
    {
        std::lock_guard lock(mutex_);
        gen = ++generation_;
        pending_ = Request{source, settings, gen};
        // Cancel the running request when finishing it is wasted work. A running quantization for the same
        // layer and quantizer settings is kept: the next request reuses it and only re-truncates.
        if (running_) {
            const bool other_layer = running_->source.key != source.key;
            const bool other_quant = !same_quantization(running_->settings, settings);
            if (other_layer || other_quant || runningPhase2_) runningToken_.cancel();
        }
    }
    wake_.notify_all();
    return gen;
}

void LayerWorker::cancel() {
    std::lock_guard lock(mutex_);
    pending_.reset();
    runningToken_.cancel();
}

void LayerWorker::clearCache() {
    std::lock_guard lock(mutex_);
    clearRequested_ = true;
    pending_.reset();
    runningToken_.cancel();
    wake_.notify_all();
}

bool LayerWorker::isBusy() const {
    std::lock_guard lock(mutex_);
    return running_.has_value() || pending_.has_value();
}

uint64_t LayerWorker::latestGeneration() const {
    std::lock_guard lock(mutex_);
    return generation_;
}

void LayerWorker::run() {
    for (;;) {
        Request req;
        Progress progress;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stop_ || pending_.has_value() || clearRequested_; });
            if (stop_) return;
            if (clearRequested_) {
                clearRequested_ = false;
                solvers_.clear();
                factors_.clear();
                lru_.clear();
                lastReports_.clear();
                if (!pending_) continue;
            }
            req = std::move(*pending_);
            pending_.reset();
            running_ = req;
            runningPhase2_ = false;
            runningToken_ = CancelToken();
            progress.cancel = runningToken_;
        }
        Q_EMIT busyChanged(true, QString::fromStdString(req.source.key));
        try {
            process(req, progress);
        } catch (const Cancelled&) {
            Q_EMIT cancelled(req.generation, QString::fromStdString(req.source.key));
        } catch (const std::exception& e) {
            Q_EMIT failed(req.generation, QString::fromStdString(req.source.key),
                          QString::fromStdString(cloq::error_message(e)));
        }
        bool idle;
        {
            std::lock_guard lock(mutex_);
            running_.reset();
            idle = !pending_.has_value();
        }
        if (idle) Q_EMIT busyChanged(false, QString());
    }
}

LayerSolver& LayerWorker::solverFor(const Request& req, const Progress& progress) {
    const std::string& key = req.source.key;
    auto it = solvers_.find(key);
    if (it == solvers_.end()) {
        const auto factor = factors_.get(
            req.source.group_key, 0, [&] { return req.source.load_hessian(progress); }, progress);
        torch::Tensor W = req.source.load_weight(progress);
        it = solvers_.emplace(key, std::make_unique<LayerSolver>(W, factor, key)).first;
    }
    lru_.erase(std::remove(lru_.begin(), lru_.end(), key), lru_.end());
    lru_.push_back(key);
    while (static_cast<int>(lru_.size()) > capacity_) {
        solvers_.erase(lru_.front());
        lastReports_.erase(lru_.front());
        lru_.erase(lru_.begin());
    }
    return *it->second;
}

void LayerWorker::process(const Request& req, const Progress& progress) {
    const Stopwatch t0;
    const std::string& key = req.source.key;
    LayerSolver* solver = nullptr;
    try {
        solver = &solverFor(req, progress);
        solver->update(req.settings, progress);
        solver->ensure(InitMethod::Svd, progress);
    } catch (...) {
        // A cancelled or failed update may leave the solver half-updated: drop it (the factor stays cached).
        solvers_.erase(key);
        lru_.erase(std::remove(lru_.begin(), lru_.end(), key), lru_.end());
        lastReports_.erase(key);
        throw;
    }
    const LayerReport* same_q = nullptr;
    if (auto prev = lastReports_.find(key);
        prev != lastReports_.end() && same_quantization(prev->second.settings, req.settings))
        same_q = &prev->second;
    LayerReport report = build_report_phase1(*solver, key, same_q);
    report.generation = req.generation;
    // Until phase 2 finishes, show the previous LoftQ / spectral numbers of this layer (if any) instead of zeros.
    if (auto prev = lastReports_.find(key); prev != lastReports_.end()) {
        const LayerReport& p = prev->second;
        report.loftq = p.loftq;
        report.qera_exact = p.qera_exact;
        report.qera_approx = p.qera_approx;
        report.sweep_loftq = p.sweep_loftq;
        report.zero.spec = p.zero.spec, report.zero.spec_rel = p.zero.spec_rel;
        report.svd.spec = p.svd.spec, report.svd.spec_rel = p.svd.spec_rel;
        report.cloq.spec = p.cloq.spec, report.cloq.spec_rel = p.cloq.spec_rel;
    }
    report.total_ms = t0.ms();
    Q_EMIT reportReady(report);

    {
        std::lock_guard lock(mutex_);
        if (pending_) return;  // superseded: phase 2 of this request would be thrown away
        runningPhase2_ = true;
    }
    try {
        solver->ensure(InitMethod::Loftq, progress);
        // QERA (the published method closest to CLoQ): one eigh of the unregularized H per input group, shared.
        solver->ensure(InitMethod::QeraExact, progress);
        solver->ensure(InitMethod::QeraApprox, progress);
    } catch (...) {
        solvers_.erase(key);
        lru_.erase(std::remove(lru_.begin(), lru_.end(), key), lru_.end());
        lastReports_.erase(key);
        throw;
    }
    progress(1.0, "metrics");
    complete_report(report, *solver);
    report.total_ms = t0.ms();
    lastReports_[key] = report;
    Q_EMIT reportReady(report);
}

}  // namespace cloq::ui
