// Tab 3: singular values of R·ΔWᵀ (what CLoQ truncates: the quantization error as the calibration data sees it)
// against those of ΔW = W − Q (what LoftQ truncates), each divided by its largest value, on a log axis.
// The faster the curve falls, the more of the error the first r singular directions capture.
#pragma once
#include "chart_panel.h"
#include "layer_report.h"

class QChart;
class QLabel;
class QLineSeries;
class QLogValueAxis;
class QValueAxis;

namespace cloq::ui {

class SpectrumChart : public ChartPanel {
    Q_OBJECT
public:
    explicit SpectrumChart(QWidget* parent = nullptr);
    void setReport(const LayerReport& report);
    void clear();
    void restyle() override;

    QLineSeries* cloqSeries() const { return cloq_; }    // σ_i(R·ΔWᵀ)/σ_1 against i = 1..n
    QLineSeries* deltaSeries() const { return delta_; }  // σ_i(ΔW)/σ_1
    QLineSeries* rankMarker() const { return marker_; }
    // Share of ‖·‖_F² held by the first r singular values.
    static double energyKept(const std::vector<double>& sv, int r);

private:
    void setDecadeRange(double bottom);  // the y axis from the decade `bottom` (a power of 10) up to 1, all labelled

    QChart* chart_ = nullptr;
    QLineSeries *cloq_ = nullptr, *delta_ = nullptr, *marker_ = nullptr;
    QValueAxis* x_ = nullptr;
    QLogValueAxis* y_ = nullptr;
    QLabel* caption_ = nullptr;
};

}  // namespace cloq::ui
