#include "weights_view.h"

#include "chart_panel.h"

#include <QGridLayout>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>

#include "heat_map_widget.h"
#include "theme.h"

namespace cloq::ui {
namespace {
// A histogram as a step outline (bars drawn as a line: three overlaid bar sets would hide each other).
double fill_steps(QLineSeries* s, const Histogram& h) {
    QList<QPointF> pts;
    double top = 0;
    const double w = h.bin_width();
    if (!h.counts.empty()) pts.append(QPointF(h.lo, 0));
    for (size_t i = 0; i < h.counts.size(); ++i) {
        const double x0 = h.lo + w * i, x1 = x0 + w;
        pts.append(QPointF(x0, h.counts[i]));
        pts.append(QPointF(x1, h.counts[i]));
        top = std::max(top, h.counts[i]);
    }
    if (!h.counts.empty()) pts.append(QPointF(h.hi, 0));
    s->replace(pts);
    return top;
}

QChart* make_chart(const QString& title, QValueAxis** x, QValueAxis** y, const QString& xt) {
    auto* c = new QChart();
    c->setTitle(title);
    *x = new QValueAxis();
    (*x)->setTitleText(xt);
    (*x)->setLabelFormat("%.2g");
    *y = new QValueAxis();
    (*y)->setTitleText("count");
    (*y)->setLabelFormat("%d");
    c->addAxis(*x, Qt::AlignBottom);
    c->addAxis(*y, Qt::AlignLeft);
    c->legend()->setAlignment(Qt::AlignBottom);
    return c;
}
}  // namespace

WeightsView::WeightsView(QWidget* parent) : ChartPanel(parent) {
    setObjectName("weightsView");
    auto* grid = new QGridLayout(this);
    grid->setContentsMargins(4, 4, 4, 4);
    values_ = make_chart("W and its quantized Q", &vx_, &vy_, "weight value");
    w_ = new QLineSeries();
    w_->setName("W (original)");
    q_ = new QLineSeries();
    q_->setName("Q (quantized)");
    values_->addSeries(w_);
    values_->addSeries(q_);
    for (auto* s : {w_, q_}) {
        s->attachAxis(vx_);
        s->attachAxis(vy_);
    }
    errors_ = make_chart("Quantization error W − Q", &ex_, &ey_, "W − Q");
    err_ = new QLineSeries();
    err_->setName("W − Q");
    errors_->addSeries(err_);
    err_->attachAxis(ex_);
    err_->attachAxis(ey_);
    auto* v1 = makeView(values_, this);
    v1->setToolTip("Q takes only 2^bits levels per group, so its histogram is spiky; W is the smooth curve");
    auto* v2 = makeView(errors_, this);
    v2->setToolTip("The rounding error the low-rank adapter has to compensate");
    heat_ = new HeatMapWidget(this);
    grid->addWidget(v1, 0, 0);
    grid->addWidget(v2, 1, 0);
    grid->addWidget(heat_, 0, 1, 2, 1);
    grid->setColumnStretch(0, 3);
    grid->setColumnStretch(1, 2);
    restyle();
    clear();
}

void WeightsView::restyle() {
    for (QChart* c : {values_, errors_}) {
        style_chart(c);
        for (QAbstractAxis* a : c->axes()) style_axis(a);
    }
    QPen pw(weight_color(0), 2), pq(weight_color(1), 1.5), pe(weight_color(2), 2);
    for (QPen* p : {&pw, &pq, &pe}) p->setCosmetic(true);
    w_->setPen(pw);
    q_->setPen(pq);
    err_->setPen(pe);
    heat_->update();
}

void WeightsView::clear() {
    w_->clear();
    q_->clear();
    err_->clear();
    heat_->clear();
}

void WeightsView::setReport(const LayerReport& r) {
    const double top = std::max(fill_steps(w_, r.hist_w), fill_steps(q_, r.hist_q));
    set_round_ticks_axis(vx_, r.hist_w.lo, r.hist_w.hi, 7);
    vy_->setRange(0, std::max(1.0, top * 1.05));
    vy_->applyNiceNumbers();
    const double etop = fill_steps(err_, r.hist_err);
    set_round_ticks_axis(ex_, r.hist_err.lo, r.hist_err.hi, 7);
    ey_->setRange(0, std::max(1.0, etop * 1.05));
    ey_->applyNiceNumbers();
    heat_->setGrid(r.group_error);
}

}  // namespace cloq::ui
