#include "overview_view.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QLineSeries>
#include <QtCharts/QValueAxis>

#include "theme.h"

namespace cloq::ui {

OverviewView::OverviewView(QWidget* parent) : ChartPanel(parent) {
    setObjectName("overviewView");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* top = new QHBoxLayout();
    analyze_ = new QPushButton("&Analyze all layers", this);
    analyze_->setObjectName("analyzeButton");
    analyze_->setToolTip(
        "Quantize every linear layer with its current settings and solve zero / LoftQ / CLoQ "
        "(runs in the background; the explorer fills in as layers finish)");
    analysisState_ = new QLabel(this);
    analysisState_->setWordWrap(true);
    top->addWidget(analyze_);
    top->addWidget(analysisState_, 1);
    layout->addLayout(top);
    caption_ = addCaption(layout);

    auto* split = new QSplitter(Qt::Vertical, this);
    chart_ = new QChart();
    chart_->setTitle("‖X(Q+BA−W)ᵀ‖_F / ‖XWᵀ‖_F of every layer, along depth");
    zero_ = new QLineSeries();
    zero_->setName("zero init (QLoRA)");
    loftq_ = new QLineSeries();
    loftq_->setName("LoftQ");
    cloq_ = new QLineSeries();
    cloq_->setName("CLoQ");
    for (QLineSeries* s : {zero_, loftq_, cloq_}) {
        s->setPointsVisible(true);
        chart_->addSeries(s);
    }
    x_ = new QValueAxis();
    x_->setTitleText("decoder block (its linear layers q k v o gate up down left to right)");
    x_->setLabelFormat("%d");
    x_->setTickType(QValueAxis::TicksDynamic);
    x_->setTickAnchor(0);
    x_->setTickInterval(1);
    y_ = new QValueAxis();
    y_->setTitleText("relative discrepancy");
    y_->setLabelFormat("%.3g");
    attachAxes(chart_, x_, y_);
    for (QLineSeries* s : {zero_, loftq_, cloq_}) {
        connect(s, &QLineSeries::clicked, this, [this](const QPointF& p) {
            const int i = nearest(p.x());
            if (i >= 0) Q_EMIT layerClicked(names_[i]);
        });
        connect(s, &QLineSeries::hovered, this, [this](const QPointF& p, bool state) {
            const int i = nearest(p.x());
            setToolTip(state && i >= 0 ? names_[i] + " (click to open)" : QString());
        });
    }
    chart_->legend()->setAlignment(Qt::AlignBottom);
    auto* v1 = makeView(chart_, split);
    split->addWidget(v1);

    auto* pplBox = new QWidget(split);
    auto* pl = new QVBoxLayout(pplBox);
    pl->setContentsMargins(0, 0, 0, 0);
    auto* prow = new QHBoxLayout();
    ppl_ = new QPushButton("Compute &perplexity", pplBox);
    ppl_->setObjectName("perplexityButton");
    ppl_->setToolTip(
        "Perplexity of the float model and of the quantized model with zero / LoftQ / CLoQ adapters "
        "under the current settings, on held-out windows of the calibration text (background job)");
    pplState_ = new QLabel("Not computed yet.", pplBox);
    pplState_->setWordWrap(true);
    prow->addWidget(ppl_);
    prow->addWidget(pplState_, 1);
    pl->addLayout(prow);
    pplChart_ = new QChart();
    pplChart_->setTitle("Perplexity (lower is better)");
    pplChart_->legend()->setAlignment(Qt::AlignBottom);
    pplSeries_ = new QBarSeries();
    // One set per model, one category: each bar gets its method's colour (one colour for all let the float bar,
    // 4 next to 388, vanish), and the legend names them.
    for (const char* name : {"float", "zero init (QLoRA)", "LoftQ", "CLoQ"}) {
        auto* set = new QBarSet(name);
        *set << 0;
        pplSeries_->append(set);
        pplSets_.append(set);
    }
    pplSeries_->setLabelsVisible(true);
    pplSeries_->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
    pplSeries_->setLabelsPrecision(4);
    pplSeries_->setBarWidth(0.9);
    pplChart_->addSeries(pplSeries_);
    auto* cats = new QBarCategoryAxis();
    cats->append(QStringList{QString()});
    cats->setVisible(false);
    pplChart_->addAxis(cats, Qt::AlignBottom);
    pplSeries_->attachAxis(cats);
    pplAxis_ = new QValueAxis();
    pplAxis_->setLabelFormat("%.3g");
    pplAxis_->setTickCount(3);  // the panel is short and every bar carries its value: three labels, never elided
    pplChart_->addAxis(pplAxis_, Qt::AlignLeft);
    pplSeries_->attachAxis(pplAxis_);
    pl->addWidget(makeView(pplChart_, pplBox), 1);
    split->addWidget(pplBox);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    layout->addWidget(split, 1);

    connect(analyze_, &QPushButton::clicked, this, &OverviewView::analyzeRequested);
    connect(ppl_, &QPushButton::clicked, this, &OverviewView::perplexityRequested);
    restyle();
    clear();
}

int OverviewView::nearest(double x) const {
    int best = -1;
    double dist = 1e300;
    for (int i = 0; i < xs_.size(); ++i)
        if (std::abs(xs_[i] - x) < dist) dist = std::abs(xs_[i] - x), best = i;
    return best;
}

void OverviewView::restyle() {
    for (QChart* c : {chart_, pplChart_}) {
        style_chart(c);
        for (QAbstractAxis* a : c->axes()) style_axis(a);
    }
    auto pen = [](InitMethod m, qreal w, Qt::PenStyle st = Qt::SolidLine) {
        QPen p(method_color(m), w, st);
        p.setCosmetic(true);
        return p;
    };
    zero_->setPen(pen(InitMethod::Zero, 1.5, Qt::DashLine));
    loftq_->setPen(pen(InitMethod::Loftq, 2.5));
    cloq_->setPen(pen(InitMethod::Cloq, 2.5));
    for (QLineSeries* s : {zero_, loftq_, cloq_}) s->setColor(s->pen().color());
    const QColor colors[4] = {palette().color(QPalette::Text), method_color(InitMethod::Zero),
                              method_color(InitMethod::Loftq), method_color(InitMethod::Cloq)};
    for (int i = 0; i < pplSets_.size(); ++i) {
        pplSets_[i]->setColor(colors[i]);
        pplSets_[i]->setBorderColor(colors[i].darker(130));
        pplSets_[i]->setLabelColor(palette().color(QPalette::Text));
        pplSets_[i]->setLabelFont(font());
    }
}

void OverviewView::clear() {
    for (QLineSeries* s : {zero_, loftq_, cloq_}) s->clear();
    x_->setRange(0, 1);
    xs_.clear();
    y_->setRange(0, 1);
    names_.clear();
    analysed_ = 0;
    for (QBarSet* s : pplSets_) s->replace(0, 0);
    pplAxis_->setRange(0, 1);
    caption_->setText("<i>Open a model and analyze its layers.</i>");
}

void OverviewView::setRows(const QVector<LayerRow>& rows) {
    QList<QPointF> z, l, c;
    names_.clear();
    double top = 0;
    double sum_c = 0, sum_l = 0;
    int wins = 0;
    analysed_ = 0;
    xs_.clear();
    for (int i = 0; i < rows.size(); ++i) {
        // Position inside the block: the k-th of the block's n layers sits at block + (k + 0.5) / n.
        int k = 0, n = 0;
        for (const LayerRow& o : rows)
            if (o.block == rows[i].block) {
                if (&o < &rows[i]) ++k;
                ++n;
            }
        xs_.append(rows[i].block + (k + 0.5) / std::max(1, n));
        names_.append(rows[i].name);
        // Only numbers computed under the rows' current settings are drawn; stale rows are counted below.
        if (!rows[i].current()) continue;
        ++analysed_;
        const double x = xs_.back();
        z.append(QPointF(x, rows[i].zero.fro_rel));
        l.append(QPointF(x, rows[i].loftq.fro_rel));
        c.append(QPointF(x, rows[i].cloq.fro_rel));
        top = std::max({top, rows[i].zero.fro_rel, rows[i].loftq.fro_rel, rows[i].cloq.fro_rel});
        sum_c += rows[i].cloq.fro_rel;
        sum_l += rows[i].loftq.fro_rel;
        if (rows[i].cloq.fro_rel <= rows[i].loftq.fro_rel) ++wins;
    }
    zero_->replace(z);
    loftq_->replace(l);
    cloq_->replace(c);
    int nblocks = 0;
    for (const LayerRow& r : rows) nblocks = std::max(nblocks, r.block + 1);
    // Ticks at block boundaries; at most ~16 labels so they stay legible on deep models.
    x_->setTickInterval(std::max(1, (nblocks + 15) / 16));
    x_->setRange(0, std::max(1, nblocks));
    y_->setRange(0, top > 0 ? top * 1.08 : 1.0);
    y_->applyNiceNumbers();
    int analysable = 0, stale = 0;
    for (const LayerRow& r : rows) analysable += !r.skipped, stale += r.stale();
    QString recomputing = stale ? QString(" <i>%1 recomputing…</i>").arg(stale) : QString();
    if (rows.size() > analysable) recomputing += QString(" %1 kept in float.").arg(rows.size() - analysable);
    if (analysed_ > 0)
        caption_->setText(QString("%1 of %2 layers current.%6 CLoQ ≤ LoftQ on <b>%3</b> of them; mean relative "
                                  "discrepancy CLoQ %4 vs LoftQ %5.")
                              .arg(analysed_)
                              .arg(analysable)
                              .arg(wins)
                              .arg(format_number(sum_c / analysed_), format_number(sum_l / analysed_), recomputing));
    else
        caption_->setText(QString("%1 layers; none current yet.%2").arg(analysable).arg(recomputing));
}

void OverviewView::clearPerplexity(const QString& why) {
    for (QBarSet* s : pplSets_) s->replace(0, 0);
    pplAxis_->setRange(0, 1);
    pplState_->setText(why);
    ppl_->setEnabled(true);
}

QString OverviewView::caption() const { return caption_->text(); }

double OverviewView::perplexityBar(int i) const { return pplSets_[i]->at(0); }

void OverviewView::setAnalysisState(const QString& text, bool running) {
    analysisState_->setText(text);
    analyze_->setEnabled(!running);
}

void OverviewView::setPerplexityState(const QString& text, bool running) {
    pplState_->setText(text);
    ppl_->setEnabled(!running);
}

void OverviewView::setPerplexity(const PerplexitySummary& r) {
    const double v[4] = {r.fp, r.zero, r.loftq, r.cloq};
    double top = 0;
    for (int i = 0; i < 4; ++i) {
        pplSets_[i]->replace(0, std::isfinite(v[i]) ? v[i] : 0.0);
        if (std::isfinite(v[i])) top = std::max(top, v[i]);
    }
    pplAxis_->setRange(0, top > 0 ? top * 1.15 : 1.0);
    pplAxis_->applyNiceNumbers();
    pplAxis_->setTickCount(3);
    pplState_->setText(QString("float %1 · zero %2 · LoftQ %3 · CLoQ %4 — %5")
                           .arg(format_number(r.fp, 4), format_number(r.zero, 4), format_number(r.loftq, 4),
                                format_number(r.cloq, 4), QString::fromStdString(r.description)));
}

}  // namespace cloq::ui
