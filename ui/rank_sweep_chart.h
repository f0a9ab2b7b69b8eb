// Tab 2: relative Frobenius discrepancy against LoRA rank 0…r_max for CLoQ, LoftQ and plain SVD on the same Q,
// the chosen rank marked. At rank 0 every method equals zero init (the quantization error alone).
#pragma once
#include "chart_panel.h"
#include "layer_report.h"

class QChart;
class QLabel;
class QLineSeries;
class QScatterSeries;
class QValueAxis;

namespace cloq::ui {

class RankSweepChart : public ChartPanel {
    Q_OBJECT
public:
    explicit RankSweepChart(QWidget* parent = nullptr);
    void setReport(const LayerReport& report);
    void clear();
    void restyle() override;

    QLineSeries* cloqSeries() const { return cloq_; }
    QLineSeries* loftqSeries() const { return loftq_; }
    QLineSeries* svdSeries() const { return svd_; }
    QLineSeries* rankMarker() const { return marker_; }  // vertical line at the chosen rank
    QScatterSeries* chosenPoints() const { return chosen_; }

private:
    QChart* chart_ = nullptr;
    QLineSeries *cloq_ = nullptr, *loftq_ = nullptr, *svd_ = nullptr, *marker_ = nullptr;
    QScatterSeries* chosen_ = nullptr;
    QValueAxis *x_ = nullptr, *y_ = nullptr;
    QLabel* caption_ = nullptr;
};

}  // namespace cloq::ui
