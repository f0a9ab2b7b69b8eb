// Tab 1: the discrepancy ‖X(Q + B·A − W)ᵀ‖ of each initialization on the same quantized Q, spectral and Frobenius,
// absolute and relative to ‖X Wᵀ‖ — the layer-level version of the paper's Figure 2.
#pragma once
#include <QList>
#include <array>

#include "chart_panel.h"
#include "layer_report.h"

class QBarSet;
class QBarSeries;
class QChart;
class QLabel;
class QValueAxis;

namespace cloq::ui {

class DiscrepancyChart : public ChartPanel {
    Q_OBJECT
public:
    explicit DiscrepancyChart(QWidget* parent = nullptr);
    void setReport(const LayerReport& report);
    void clear();
    void restyle() override;

    // The methods in bar order, and the bar value of `m` in chart `which` (0 spectral abs, 1 Frobenius abs,
    // 2 spectral rel, 3 Frobenius rel) — what tests compare with the engine.
    static const QList<InitMethod>& methods();
    double barValue(int which, InitMethod m) const;
    QString summaryText() const;

private:
    struct Panel {
        QChart* chart = nullptr;
        QBarSeries* series = nullptr;
        QValueAxis* axis = nullptr;
        QList<QBarSet*> sets;  // one per method
        double top = 0;        // the tallest bar
        bool fitting = false;  // inside fitLabels
    };
    void fitLabels(Panel& p);  // upright value labels when they are wider than a bar, and room above for them
    std::array<Panel, 4> panels_;
    QLabel* summary_ = nullptr;
    QWidget* legend_ = nullptr;
    void rebuildLegend();
};

}  // namespace cloq::ui
