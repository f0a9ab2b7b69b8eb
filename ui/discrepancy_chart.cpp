#include "discrepancy_chart.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QScopedValueRollback>
#include <QVBoxLayout>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QChartView>
#include <QtCharts/QLegend>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "theme.h"

namespace cloq::ui {
namespace {
// Short titles so they fit a quarter of a small window; the legend row defines D.
const char* kTitles[4] = {"Spectral ‖XDᵀ‖₂", "Frobenius ‖XDᵀ‖_F", "Spectral ‖XDᵀ‖₂ / ‖XWᵀ‖₂",
                          "Frobenius ‖XDᵀ‖_F / ‖XWᵀ‖_F"};

double pick(const MethodMetrics& m, int which) {
    switch (which) {
    case 0:
        return m.spec;
    case 1:
        return m.fro;
    case 2:
        return m.spec_rel;
    default:
        return m.fro_rel;
    }
}
}  // namespace

const QList<InitMethod>& DiscrepancyChart::methods() {
    static const QList<InitMethod> m{InitMethod::Zero,       InitMethod::Svd,       InitMethod::Loftq,
                                     InitMethod::QeraApprox, InitMethod::QeraExact, InitMethod::Cloq};
    return m;
}

DiscrepancyChart::DiscrepancyChart(QWidget* parent) : ChartPanel(parent) {
    setObjectName("discrepancyChart");
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(4, 4, 4, 4);
    summary_ = addCaption(outer);
    summary_->setObjectName("discrepancySummary");
    summary_->setToolTip("How much of the output error ‖X(Q+BA−W)ᵀ‖ each initialization leaves, on calibration data");
    legend_ = new QWidget(this);
    legend_->setMinimumWidth(120);  // may clip in a very narrow column rather than widen the whole window
    outer->addWidget(legend_);
    auto* grid = new QGridLayout();
    grid->setSpacing(4);
    outer->addLayout(grid, 1);
    for (int i = 0; i < 4; ++i) {
        Panel& p = panels_[i];
        p.chart = new QChart();
        p.chart->setTitle(kTitles[i]);
        p.chart->legend()->hide();
        p.series = new QBarSeries();
        p.series->setLabelsVisible(true);
        p.series->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
        p.series->setLabelsPrecision(3);
        p.series->setBarWidth(0.9);
        for (InitMethod m : methods()) {
            auto* set = new QBarSet(method_label(m));
            *set << 0.0;
            p.series->append(set);
            p.sets.append(set);
        }
        p.chart->addSeries(p.series);
        auto* cats = new QBarCategoryAxis();
        cats->append(QStringList{QString()});
        cats->setVisible(false);
        p.chart->addAxis(cats, Qt::AlignBottom);
        p.series->attachAxis(cats);
        p.axis = new QValueAxis();
        p.axis->setLabelFormat("%.6g");  // 10000, not 1e+04
        p.chart->addAxis(p.axis, Qt::AlignLeft);
        p.series->attachAxis(p.axis);
        connect(p.chart, &QChart::plotAreaChanged, this, [this, i] { fitLabels(panels_[i]); });
        auto* view = makeView(p.chart, this);
        view->setToolTip(i < 2 ? "Absolute discrepancy on the calibration activations (lower is better)"
                               : "Discrepancy divided by the layer's output norm ‖XWᵀ‖ (lower is better; "
                                 "1 = as large as the output itself)");
        grid->addWidget(view, i / 2, i % 2);
    }
    restyle();
    clear();
}

void DiscrepancyChart::rebuildLegend() {
    delete legend_->layout();
    qDeleteAll(legend_->findChildren<QWidget*>(QString(), Qt::FindDirectChildrenOnly));
    auto* row = new QHBoxLayout(legend_);
    row->setContentsMargins(0, 0, 0, 0);
    row->addStretch();
    auto* def = new QLabel("<i>D = Q + BA − W</i> &nbsp;", legend_);
    def->setToolTip("The error left on the calibration activations X by the quantized weight Q plus the adapter BA");
    row->addWidget(def);
    // Six methods: two rows of three, so the legend fits the narrowest chart column (1280-px window) uncut.
    auto* grid = new QGridLayout();
    grid->setHorizontalSpacing(6);
    grid->setVerticalSpacing(2);
    const int per_row = (methods().size() + 1) / 2;
    for (int k = 0; k < methods().size(); ++k) {
        const InitMethod m = methods()[k];
        auto* swatch = new QLabel(legend_);
        swatch->setFixedSize(14, 14);
        swatch->setStyleSheet(QString("background:%1; border:1px solid palette(mid);").arg(method_color(m).name()));
        auto* label = new QLabel(method_label(m), legend_);
        grid->addWidget(swatch, k / per_row, 2 * (k % per_row));
        grid->addWidget(label, k / per_row, 2 * (k % per_row) + 1);
        grid->setColumnMinimumWidth(2 * (k % per_row) + 1, 0);
    }
    row->addLayout(grid);
    row->addStretch();
}

void DiscrepancyChart::restyle() {
    for (Panel& p : panels_) {
        style_chart(p.chart);
        for (int k = 0; k < p.sets.size(); ++k) {
            const QColor c = method_color(methods()[k]);
            p.sets[k]->setColor(c);
            p.sets[k]->setBorderColor(c.darker(130));
            p.sets[k]->setLabelColor(palette().color(QPalette::Text));
            p.sets[k]->setLabelFont(font());
        }
        for (QAbstractAxis* a : p.chart->axes()) style_axis(a);
    }
    rebuildLegend();
}

void DiscrepancyChart::clear() {
    for (Panel& p : panels_) {
        for (QBarSet* s : p.sets) s->replace(0, 0.0);
        p.axis->setRange(0, 1);
    }
    summary_->setText("<i>No layer analysed yet.</i>");
}

void DiscrepancyChart::setReport(const LayerReport& r) {
    for (int i = 0; i < 4; ++i) {
        Panel& p = panels_[i];
        double top = 0;
        for (int k = 0; k < methods().size(); ++k) {
            const MethodMetrics& mm = r.metrics(methods()[k]);
            const double v = mm.valid ? pick(mm, i) : 0.0;
            p.sets[k]->replace(0, v);
            top = std::max(top, v);
        }
        // Value labels: 3 significant digits, but whole numbers for large values (2871, not 2.87e+03).
        p.series->setLabelsPrecision(std::max(3, top >= 1 ? static_cast<int>(std::floor(std::log10(top))) + 1 : 3));
        p.top = top;
        fitLabels(p);
    }
    const double c = r.cloq.fro_rel, l = r.loftq.fro_rel, z = r.zero.fro_rel;
    QString text =
        QString("<b>%1</b> &nbsp; %2×%3, %4-bit, group %5, rank %6. ")
            .arg(QString::fromStdString(r.name).toHtmlEscaped())
            .arg(r.out)
            .arg(r.in)
            .arg(r.settings.quant.bits)
            .arg(r.settings.quant.group < 0 ? QString("per channel") : QString::number(r.settings.quant.group))
            .arg(r.settings.rank);
    if (r.cloq.valid && r.loftq.valid && l > 0) {
        const double gain = 100.0 * (1.0 - c / l);
        text += QString("CLoQ leaves <b>%1</b> of the output (Frobenius), LoftQ %2, zero init %3: ")
                    .arg(format_number(c), format_number(l), format_number(z));
        // At full rank both errors are float rounding (~1e-8 of the output): a percentage of noise means nothing.
        constexpr double kNoise = 1e-6;
        if (l < kNoise && c < kNoise)
            text += "At this rank both leave only rounding noise (below 1e-6 of the output).";
        else
            text += gain >= 0 ? QString("CLoQ removes <b>%1 %</b> of LoftQ's remaining error.").arg(gain, 0, 'f', 1)
                              : QString("LoftQ is ahead by %1 % here.").arg(-gain, 0, 'f', 1);
    }
    summary_->setText(text);
}

void DiscrepancyChart::fitLabels(Panel& p) {
    // setRange can relayout the chart and emit plotAreaChanged synchronously, which calls this again.
    if (!p.axis || !p.series || p.sets.isEmpty() || p.fitting) return;
    const QScopedValueRollback<bool> guard(p.fitting, true);
    // A value label wider than its bar would print into the next one ("0.01890.0189"): then the labels stand
    // upright, and the axis leaves room above the tallest bar for the longest one.
    const QFontMetrics fm(font());
    int widest = 0;
    for (QBarSet* s : p.sets)
        widest = std::max(widest, fm.horizontalAdvance(QString::number(s->at(0), 'g', p.series->labelsPrecision())));
    const double bar = p.chart->plotArea().width() * p.series->barWidth() / std::max<qsizetype>(1, p.sets.size());
    const bool upright = widest + 4 > bar;
    p.series->setLabelsAngle(upright ? -90 : 0);
    const double plot_h = std::max(40.0, p.chart->plotArea().height());
    const double room = upright ? std::min(0.9, (widest + 8) / plot_h) : 0.15;
    p.axis->setRange(0, p.top > 0 ? p.top / (1 - room) : 1.0);
    p.axis->applyNiceNumbers();
}

double DiscrepancyChart::barValue(int which, InitMethod m) const {
    const int k = methods().indexOf(m);
    if (k < 0 || which < 0 || which > 3) return 0;
    return panels_[which].sets[k]->at(0);
}

QString DiscrepancyChart::summaryText() const { return summary_->text(); }

}  // namespace cloq::ui
