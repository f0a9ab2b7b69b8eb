#include "spectrum_chart.h"

#include "chart_panel.h"

#include <QLabel>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "theme.h"

namespace cloq::ui {
namespace {
constexpr double kFloor = 1e-12;  // a log axis cannot show 0; values below this (relative) are left out

// Normalized singular values and the smallest positive one plotted.
double fill(QLineSeries* s, const std::vector<double>& sv) {
    QList<QPointF> pts;
    double lo = 1;
    if (!sv.empty() && sv[0] > 0) {
        for (size_t i = 0; i < sv.size(); ++i) {
            const double v = sv[i] / sv[0];
            if (!(v > kFloor)) continue;
            pts.append(QPointF(static_cast<double>(i + 1), v));
            lo = std::min(lo, v);
        }
    }
    s->replace(pts);
    return lo;
}
}  // namespace

double SpectrumChart::energyKept(const std::vector<double>& sv, int r) {
    double total = 0, kept = 0;
    for (size_t i = 0; i < sv.size(); ++i) {
        total += sv[i] * sv[i];
        if (static_cast<int>(i) < r) kept += sv[i] * sv[i];
    }
    return total > 0 ? kept / total : 0.0;
}

SpectrumChart::SpectrumChart(QWidget* parent) : ChartPanel(parent) {
    setObjectName("spectrumChart");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    caption_ = addCaption(layout);
    chart_ = new QChart();
    chart_->setTitle("Singular values of R·ΔWᵀ (CLoQ truncates) and ΔW = W − Q (LoftQ)");
    cloq_ = new QLineSeries();
    cloq_->setName("R·ΔWᵀ (calibrated)");
    delta_ = new QLineSeries();
    delta_->setName("ΔW (uncalibrated)");
    marker_ = new QLineSeries();
    marker_->setName("chosen rank");
    for (QAbstractSeries* s : std::initializer_list<QAbstractSeries*>{delta_, cloq_, marker_}) chart_->addSeries(s);
    x_ = new QValueAxis();
    x_->setTitleText("singular value index i");
    x_->setLabelFormat("%d");
    y_ = new QLogValueAxis();
    y_->setTitleText("σᵢ / σ₁ (log scale)");
    y_->setBase(10);
    y_->setLabelFormat("%g");  // 1, 0.1, 0.01, 0.001, 1e-04
    y_->setMinorTickCount(8);
    attachAxes(chart_, x_, y_);
    chart_->legend()->setAlignment(Qt::AlignBottom);
    auto* view = makeView(chart_, this);
    view->setToolTip(
        "A steeper curve means the first r directions hold more of the error: CLoQ's rank-r "
        "correction removes everything left of the dashed line");
    layout->addWidget(view, 1);
    restyle();
    clear();
}

void SpectrumChart::restyle() {
    style_chart(chart_);
    QPen c(method_color(InitMethod::Cloq), 2.5);
    QPen d(method_color(InitMethod::Loftq), 2.5);
    QPen m(palette().color(QPalette::Text), 1.2, Qt::DashLine);
    for (QPen* p : {&c, &d, &m}) p->setCosmetic(true);
    cloq_->setPen(c);
    delta_->setPen(d);
    marker_->setPen(m);
    for (QAbstractAxis* a : chart_->axes()) style_axis(a);
}

void SpectrumChart::setDecadeRange(double bottom) {
    // A hair below the decade: QLogValueAxis drops the tick at the range's minimum when rounding puts it a few ulps
    // above (the lowest decade's label went missing).
    y_->setRange(bottom * (1 - 1e-9), 1.0);
}

void SpectrumChart::clear() {
    cloq_->clear();
    delta_->clear();
    marker_->clear();
    x_->setRange(0, 1);
    setDecadeRange(1e-3);
    caption_->setText("<i>No layer analysed yet.</i>");
}

void SpectrumChart::setReport(const LayerReport& r) {
    const double lo = std::min(fill(cloq_, r.sv_cloq), fill(delta_, r.sv_delta));
    const int n = static_cast<int>(std::max(r.sv_cloq.size(), r.sv_delta.size()));
    set_integer_axis(x_, std::max(n, 1));
    // Whole decades, so the log axis labels are 1e0, 1e-1, ... and nothing is cut off.
    const double bottom = std::pow(10.0, std::floor(std::log10(std::max(lo, kFloor))));
    setDecadeRange(bottom);
    const int rank = r.settings.rank;
    marker_->replace(QList<QPointF>{{rank + 0.5, bottom}, {rank + 0.5, 1.0}});
    caption_->setText(QString("The first <b>%1</b> singular directions hold <b>%2 %</b> of the calibrated error "
                              "R·ΔWᵀ (removed by CLoQ) and %3 % of the plain error ΔW (what LoftQ fits). "
                              "CLoQ's optimum w.r.t. H<sub>λ</sub>: %4.")
                          .arg(rank)
                          .arg(100.0 * energyKept(r.sv_cloq, rank), 0, 'f', 1)
                          .arg(100.0 * energyKept(r.sv_delta, rank), 0, 'f', 1)
                          .arg(format_number(r.cloq_optimal)));
}

}  // namespace cloq::ui
