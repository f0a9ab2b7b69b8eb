// The layer view's engine thread. It owns the LayerSolvers (cached per layer, HessianFactors cached per input
// group so q/k/v share one) and answers requests "layer L with settings S" with LayerReports, newest first:
// a request replaces any pending one, and cancels the running one when that one's remaining work is useless
// (another layer, other quantizer settings, or the slow LoftQ phase of an outdated request). Rank and split
// changes therefore come back in milliseconds while bits/group changes compute here without blocking the UI.
#pragma once
#include <QObject>
#include <QString>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cloq/base/progress.h"
#include "cloq/lowrank/factor_cache.h"
#include "layer_report.h"

namespace cloq {
class HessianFactor;
class LayerSolver;
}  // namespace cloq

namespace cloq::ui {

// Where a layer's inputs come from. Loaders run on the worker thread and may throw cloq::Error.
struct LayerSource {
    std::string key;        // identifies W (layer name, or the synthetic layer's parameters)
    std::string group_key;  // identifies H (input group): layers with the same group_key share the factor
    std::function<torch::Tensor(const Progress&)> load_weight;   // W [out, in]
    std::function<torch::Tensor(const Progress&)> load_hessian;  // H [in, in]
};

class LayerWorker : public QObject {
    Q_OBJECT
public:
    explicit LayerWorker(QObject* parent = nullptr, int cached_layers = 8);
    ~LayerWorker() override;  // cancels and joins the thread

    // Queues "analyse `source` under `settings`"; returns the request's generation number.
    uint64_t request(const LayerSource& source, const LayerSettings& settings);
    void cancel();      // cancels the running request and drops the pending one
    void clearCache();  // forget solvers and factors (a new model or calibration)
    bool isBusy() const;
    uint64_t latestGeneration() const;

Q_SIGNALS:
    void reportReady(const cloq::ui::LayerReport& report);  // phase 1, then phase 2 (loftq_pending = false)
    void failed(quint64 generation, const QString& key, const QString& message);
    void cancelled(quint64 generation, const QString& key);
    void busyChanged(bool busy, const QString& what);

private:
    struct Request {
        LayerSource source;
        LayerSettings settings;
        uint64_t generation = 0;
    };
    void run();
    void process(const Request& req, const Progress& progress);
    LayerSolver& solverFor(const Request& req, const Progress& progress);

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::optional<Request> pending_;
    std::optional<Request> running_;
    bool runningPhase2_ = false;
    CancelToken runningToken_;
    bool stop_ = false;
    bool clearRequested_ = false;
    uint64_t generation_ = 0;
    int capacity_;
    // Owned by the worker thread only.
    // Factors are small next to solvers only for small layers: at most as many as solvers (made in the constructor).
    FactorCache factors_;
    std::map<std::string, std::unique_ptr<LayerSolver>> solvers_;
    std::vector<std::string> lru_;  // most recent last
    std::map<std::string, LayerReport> lastReports_;
    std::thread thread_;
};

}  // namespace cloq::ui
