// The playground's fine-tuning in miniature: from zero init, LoftQ and CLoQ on the synthetic layer, gradient steps on
// the adapter factors that minimize the calibrated output error (cloq/finetune/layer_fit.h), one line per init.
// CLoQ starts where the others are heading; the chart shows how many steps they need to get there. A fit belongs to
// the layer and settings it ran on: a later control change greys it as stale until Fit runs again.
#pragma once
#include <QPointer>
#include <QVector>

#include "chart_panel.h"
#include "cloq/settings/settings.h"
#include "synthetic_layer.h"

class QChart;
class QLabel;
class QLineSeries;
class QLogValueAxis;
class QPushButton;
class QValueAxis;

namespace cloq::ui {

class BackgroundJob;

class GradientFitChart : public ChartPanel {
    Q_OBJECT
public:
    explicit GradientFitChart(QWidget* parent = nullptr);
    ~GradientFitChart() override;
    void restyle() override;

    // Runs the fit for `spec` and `settings` in the background (a running fit is cancelled first).
    void fit(const SyntheticSpec& spec, const LayerSettings& settings, int steps = 200);
    void markStale();  // the controls changed since the shown fit
    void cancel();
    bool isRunning() const;
    bool isStale() const { return stale_; }

    QPushButton* fitButton() const { return button_; }
    QLineSeries* series(InitMethod m) const;
    QLabel* stateLabel() const { return state_; }

Q_SIGNALS:
    void fitRequested();  // the button: the playground answers with fit(spec, settings)
    void fitShown();

private:
    QChart* chart_ = nullptr;
    QValueAxis* x_ = nullptr;
    QLogValueAxis* y_ = nullptr;
    QLineSeries *zero_ = nullptr, *loftq_ = nullptr, *cloq_ = nullptr;
    QPushButton* button_ = nullptr;
    QLabel* state_ = nullptr;
    QPointer<BackgroundJob> job_;
    bool stale_ = false;
};

}  // namespace cloq::ui
