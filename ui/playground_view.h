// The teaching playground: a synthetic layer whose size, activation condition number and outliers the user
// sets, with CLoQ, LoftQ, SVD and zero init solved live by the engine and a short text explaining why (and by
// how much) the calibrated solution wins. It has its own worker thread, so it runs with or without a model.
#pragma once
#include <QWidget>

#include "layer_report.h"
#include "synthetic_layer.h"

class QComboBox;
class QLabel;
class QSlider;
class QSpinBox;
class QTimer;

namespace cloq::ui {

class LayerWorker;
class RankSweepChart;
class DiscrepancyChart;
class GradientFitChart;

class PlaygroundView : public QWidget {
    Q_OBJECT
public:
    explicit PlaygroundView(QWidget* parent = nullptr);
    ~PlaygroundView() override;

    SyntheticSpec spec() const;
    LayerSettings settings() const;
    void setSpec(const SyntheticSpec& spec);
    void start();  // first computation (deferred until the tab is shown, or called explicitly)
    bool hasReport() const { return hasReport_; }
    bool isComputing() const;
    const LayerReport& report() const { return report_; }
    QString explanation() const;
    LayerWorker* worker() const { return worker_; }
    GradientFitChart* gradientFit() const { return fit_; }
    void cancel();

    // log10 slider for the condition number: position p -> 10^(p/10)
    QSlider* condSlider() const { return cond_; }
    QComboBox* sizeBox() const { return size_; }
    QSpinBox* outliersSpin() const { return outliers_; }
    QSpinBox* rankSpin() const { return rank_; }
    QComboBox* bitsBox() const { return bits_; }

    static QString explain(const LayerReport& r, const SyntheticSpec& s);

Q_SIGNALS:
    void reportShown();  // a final report (with LoftQ) is on screen
    void busyChanged(bool busy);

protected:
    void showEvent(QShowEvent* e) override;

private:
    void schedule();  // debounce control changes into one request
    void submit();
    void onReport(const LayerReport& r);

    LayerWorker* worker_ = nullptr;
    QTimer* debounce_ = nullptr;
    QComboBox *size_ = nullptr, *bits_ = nullptr, *group_ = nullptr, *quantizer_ = nullptr;
    QSlider* cond_ = nullptr;
    QLabel* condLabel_ = nullptr;
    QSpinBox *outliers_ = nullptr, *outlierScale_ = nullptr, *rank_ = nullptr, *seed_ = nullptr;
    QLabel* text_ = nullptr;
    QLabel* state_ = nullptr;
    DiscrepancyChart* bars_ = nullptr;
    RankSweepChart* sweep_ = nullptr;
    GradientFitChart* fit_ = nullptr;
    LayerReport report_;
    bool hasReport_ = false;
    bool started_ = false;
    bool busy_ = false;
};

}  // namespace cloq::ui
