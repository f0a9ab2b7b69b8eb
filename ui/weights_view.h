// Tab 4: the weight itself — histograms of W and of its quantized Q on shared bins, the histogram of the
// quantization error W − Q, and the per-group error heat map.
#pragma once
#include "chart_panel.h"
#include "layer_report.h"

class QChart;
class QLineSeries;
class QValueAxis;

namespace cloq::ui {

class HeatMapWidget;

class WeightsView : public ChartPanel {
    Q_OBJECT
public:
    explicit WeightsView(QWidget* parent = nullptr);
    void setReport(const LayerReport& report);
    void clear();
    void restyle() override;

    QLineSeries* wSeries() const { return w_; }
    QLineSeries* qSeries() const { return q_; }
    QLineSeries* errSeries() const { return err_; }
    HeatMapWidget* heatMap() const { return heat_; }

private:
    QChart *values_ = nullptr, *errors_ = nullptr;
    QLineSeries *w_ = nullptr, *q_ = nullptr, *err_ = nullptr;
    QValueAxis *vx_ = nullptr, *vy_ = nullptr, *ex_ = nullptr, *ey_ = nullptr;
    HeatMapWidget* heat_ = nullptr;
};

}  // namespace cloq::ui
