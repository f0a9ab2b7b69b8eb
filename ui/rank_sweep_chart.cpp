#include "rank_sweep_chart.h"

#include <QLabel>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "theme.h"

namespace cloq::ui {
namespace {
void fill(QLineSeries* s, const std::vector<double>& ys) {
    QList<QPointF> pts;
    pts.reserve(static_cast<qsizetype>(ys.size()));
    for (size_t r = 0; r < ys.size(); ++r)
        if (std::isfinite(ys[r])) pts.append(QPointF(static_cast<double>(r), ys[r]));
    s->replace(pts);
}
}  // namespace

RankSweepChart::RankSweepChart(QWidget* parent) : ChartPanel(parent) {
    setObjectName("rankSweepChart");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    caption_ = addCaption(layout);

    chart_ = new QChart();
    chart_->setTitle("‖X(Q+BA−W)ᵀ‖_F / ‖XWᵀ‖_F against rank");
    cloq_ = new QLineSeries();
    cloq_->setName("CLoQ");
    loftq_ = new QLineSeries();
    loftq_->setName("LoftQ");  // on its own Q, kept fixed across ranks (the caption says so); short enough for 1280 px
    svd_ = new QLineSeries();
    svd_->setName("SVD of W−Q");
    marker_ = new QLineSeries();
    marker_->setName("chosen rank");
    chosen_ = new QScatterSeries();
    chosen_->setName("at chosen rank");
    chosen_->setMarkerSize(10);
    // No point labels: Qt prints them with full precision over the curves; the caption gives the values.
    for (QAbstractSeries* s : std::initializer_list<QAbstractSeries*>{svd_, loftq_, cloq_, marker_, chosen_})
        chart_->addSeries(s);
    x_ = new QValueAxis();
    x_->setTitleText("LoRA rank r");
    x_->setLabelFormat("%d");
    y_ = new QValueAxis();
    y_->setTitleText("relative discrepancy");
    y_->setLabelFormat("%.3g");
    attachAxes(chart_, x_, y_);
    chart_->legend()->setAlignment(Qt::AlignBottom);
    for (QLegendMarker* m : chart_->legend()->markers(chosen_)) m->setVisible(false);
    auto* view = makeView(chart_, this);
    view->setToolTip(
        "Each curve re-solves its initialization at every rank on the same quantized weight; "
        "the dashed line is the rank chosen in the settings panel");
    layout->addWidget(view, 1);
    restyle();
    clear();
}

void RankSweepChart::restyle() {
    style_chart(chart_);
    auto pen = [](QColor c, qreal w, Qt::PenStyle st = Qt::SolidLine) {
        QPen p(c, w, st);
        p.setCosmetic(true);
        return p;
    };
    cloq_->setPen(pen(method_color(InitMethod::Cloq), 2.5));
    loftq_->setPen(pen(method_color(InitMethod::Loftq), 2.5));
    svd_->setPen(pen(method_color(InitMethod::Svd), 1.5, Qt::DashLine));
    marker_->setPen(pen(palette().color(QPalette::Text), 1.2, Qt::DashLine));
    chosen_->setColor(palette().color(QPalette::Text));
    chosen_->setBorderColor(palette().color(QPalette::Base));
    chosen_->setPointLabelsColor(palette().color(QPalette::Text));
    chosen_->setPointLabelsFont(font());
    for (QAbstractAxis* a : chart_->axes()) style_axis(a);
}

void RankSweepChart::clear() {
    for (QXYSeries* s : std::initializer_list<QXYSeries*>{cloq_, loftq_, svd_, marker_, chosen_}) s->clear();
    x_->setRange(0, 1);
    y_->setRange(0, 1);
    caption_->setText("<i>No layer analysed yet.</i>");
}

void RankSweepChart::setReport(const LayerReport& r) {
    fill(cloq_, r.sweep_cloq);
    fill(loftq_, r.sweep_loftq);
    fill(svd_, r.sweep_svd);
    double top = 0;
    for (const auto* v : {&r.sweep_cloq, &r.sweep_loftq, &r.sweep_svd})
        for (double y : *v)
            if (std::isfinite(y)) top = std::max(top, y);
    if (top <= 0) top = 1;
    const int rmax = std::max(1, r.r_max);
    set_integer_axis(x_, rmax);
    y_->setRange(0, top * 1.05);
    y_->applyNiceNumbers();
    const int rank = r.settings.rank;
    marker_->replace(QList<QPointF>{{double(rank), 0.0}, {double(rank), y_->max()}});
    QList<QPointF> chosen;
    auto at = [&](const std::vector<double>& v) { return rank < static_cast<int>(v.size()) ? v[rank] : NAN; };
    for (double y : {at(r.sweep_cloq), at(r.sweep_loftq)})
        if (std::isfinite(y)) chosen.append(QPointF(rank, y));
    chosen_->replace(chosen);
    QString cap =
        QString("Rank <b>%1</b> of at most %2: CLoQ %3, LoftQ %4 (SVD %5). ")
            .arg(rank)
            .arg(std::min(r.in, r.out))
            .arg(format_number(at(r.sweep_cloq)), format_number(at(r.sweep_loftq)), format_number(at(r.sweep_svd)));
    // Rank needed by LoftQ to match CLoQ at the chosen rank: a concrete "what calibration buys".
    const double target = at(r.sweep_cloq);
    int match = -1;
    for (size_t k = 0; k < r.sweep_loftq.size(); ++k)
        if (r.sweep_loftq[k] <= target) {
            match = static_cast<int>(k);
            break;
        }
    if (std::isfinite(target) && rank > 0) {
        cap += match >= 0 ? QString("LoftQ needs rank %1 to do as well.").arg(match)
                          : QString("LoftQ does not reach it at any rank up to %1.").arg(r.r_max);
    }
    caption_->setText(cap);
}

}  // namespace cloq::ui
