#include "budget_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QGraphicsSimpleTextItem>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <cmath>
#include <map>
#include <sstream>

#include "allocation_map.h"
#include "budget_controller.h"
#include "cloq/base/error.h"
#include "theme.h"

namespace cloq::ui {

namespace {
constexpr int kCandidateBits[] = {2, 3, 4, 8};
constexpr int kSliderSteps = 1000;
constexpr double kMiB = 1024.0 * 1024.0;

std::vector<int> parse_ranks(const QString& text) {
    std::vector<int> v;
    for (const QString& item : text.split(',', Qt::SkipEmptyParts)) {
        bool ok = false;
        const int r = item.trimmed().toInt(&ok);
        if (!ok || r < 0) throw Error("ranks: '" + item.trimmed().toStdString() + "' is not a rank (0, 8, 16, …)");
        v.push_back(r);
    }
    if (v.empty()) throw Error("ranks: list at least one rank, e.g. 0,8,16,32,64,128");
    return v;
}

// The uniform setting the comparison is fair against: the best one (lowest objective) that fits the same bytes.
const PlanPoint* best_uniform_within(const Plan& p, int64_t bytes) {
    const PlanPoint* best = nullptr;
    for (const PlanPoint& u : p.uniform)
        if (u.bytes <= bytes && (!best || u.objective < best->objective)) best = &u;
    return best;
}
}  // namespace

BudgetView::BudgetView(BudgetController* controller, QWidget* parent) : ChartPanel(parent), controller_(controller) {
    setObjectName("budgetView");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);

    auto* controls = new QHBoxLayout();
    auto* gridBox = new QGroupBox("Candidates per layer", this);
    auto* g = new QGridLayout(gridBox);
    g->addWidget(new QLabel("Bit widths:", gridBox), 0, 0);
    auto* bitsRow = new QHBoxLayout();
    for (int b : kCandidateBits) {
        auto* c = new QCheckBox(QString("%1-bit").arg(b), gridBox);
        c->setObjectName(QString("budgetBits%1").arg(b));
        c->setChecked(b != 8);
        c->setToolTip("Let the planner give a layer this bit width (one quantizer run per layer and width)");
        bits_.append(c);
        bitsRow->addWidget(c);
    }
    g->addLayout(bitsRow, 0, 1);
    auto* ranksLabel = new QLabel("Ran&ks:", gridBox);
    ranks_ = new QLineEdit("0,8,16,32,64,128", gridBox);
    ranks_->setObjectName("budgetRanks");
    ranks_->setToolTip(
        "Candidate LoRA ranks, comma-separated (capped at each layer's min(out, in)); every rank "
        "comes from the same CLoQ spectrum, so more ranks cost no more time");
    ranksLabel->setBuddy(ranks_);
    g->addWidget(ranksLabel, 1, 0);
    g->addWidget(ranks_, 1, 1);
    auto* modeLabel = new QLabel("&Mode:", gridBox);
    mode_ = new QComboBox(gridBox);
    mode_->setObjectName("budgetMode");
    mode_->addItem("Bits and ranks (GPTQModel, vLLM)", static_cast<int>(PlanMode::BitsAndRanks));
    mode_->addItem("Ranks only, one bit width (every loader)", static_cast<int>(PlanMode::RanksOnly));
    mode_->setToolTip(
        "Per-layer bits are written through GPTQ's `dynamic`, which GPTQModel and vLLM read and "
        "transformers + optimum ignore; ranks only keeps the settings' bit width for every layer and "
        "puts the ranks in PEFT's rank_pattern");
    modeLabel->setBuddy(mode_);
    g->addWidget(modeLabel, 2, 0);
    g->addWidget(mode_, 2, 1);
    dtype_ = new QComboBox(gridBox);
    dtype_->setObjectName("budgetAdapterDtype");
    dtype_->addItem("adapter float32 (the export's default)", 4);
    dtype_->addItem("adapter float16 / bfloat16", 2);
    dtype_->setToolTip("How many bytes an adapter element costs in the budget (the export's adapter dtype)");
    auto* dtypeLabel = new QLabel("Adapt&er:", gridBox);
    dtypeLabel->setBuddy(dtype_);
    g->addWidget(dtypeLabel, 3, 0);
    g->addWidget(dtype_, 3, 1);
    controls->addWidget(gridBox);

    auto* buttons = new QVBoxLayout();
    compute_ = new QPushButton("&Compute curves", this);
    compute_->setObjectName("budgetCompute");
    compute_->setToolTip(
        "Quantize every layer at each candidate bit width under the current settings and read "
        "its calibrated discrepancy at every rank (background; Esc cancels)");
    cancel_ = new QPushButton("Cancel", this);
    cancel_->setObjectName("budgetCancel");
    cancel_->setToolTip("Stop computing the curves; nothing is kept from a cancelled computation");
    cancel_->setEnabled(false);
    for (QPushButton* b : {compute_, cancel_}) buttons->addWidget(b);
    buttons->addStretch(1);
    controls->addLayout(buttons);
    controls->addStretch(1);
    addControlsRow(layout, controls);

    state_ = new QLabel(this);
    state_->setObjectName("budgetState");
    state_->setWordWrap(true);
    layout->addWidget(state_);
    caption_ = addCaption(layout);

    auto* split = new QSplitter(Qt::Horizontal, this);
    chart_ = new QChart();
    chart_->setTitle("Size against predicted objective: planned front and uniform settings");
    x_ = new QValueAxis();
    x_->setTitleText("export size (MiB: base + adapter)");
    y_ = new QLogValueAxis();
    y_->setTitleText("Σ relative ‖X(Q+BA−W)ᵀ‖²_F");
    y_->setLabelFormat("%.3g");
    y_->setBase(10);
    y_->setMinorTickCount(8);
    front_ = new QLineSeries();
    front_->setName("planned (exact optimum)");
    frontMarks_ = new QScatterSeries();
    frontMarks_->setMarkerSize(6);
    chosen_ = new QScatterSeries();
    chosen_->setName("this plan");
    chosen_->setMarkerSize(15);
    chosen_->setMarkerShape(QScatterSeries::MarkerShapeRectangle);
    for (QXYSeries* s : {static_cast<QXYSeries*>(front_), static_cast<QXYSeries*>(frontMarks_)}) chart_->addSeries(s);
    for (int b : kCandidateBits) {
        auto* u = new QScatterSeries();
        u->setName(QString("uniform %1-bit").arg(b));
        u->setMarkerSize(10);
        u->setMarkerShape(QScatterSeries::MarkerShapeTriangle);
        chart_->addSeries(u);
        uniform_.append(u);
        connect(u, &QScatterSeries::hovered, this, [this, b](const QPointF& p, bool on) {
            if (!on || !controller_->hasPlan()) return setToolTip(QString());
            for (const PlanPoint& pt : controller_->plan().uniform)
                if (pt.label.rfind(std::to_string(b) + "-bit", 0) == 0 && std::abs(pt.bytes / kMiB - p.x()) < 1e-9 &&
                    std::abs(pt.objective - p.y()) <= 1e-9 * pt.objective)
                    setToolTip(
                        QString("uniform %1: %2, objective %3")
                            .arg(QString::fromStdString(pt.label), format_mib(pt.bytes), format_number(pt.objective)));
        });
    }
    chart_->addSeries(chosen_);
    attachAxes(chart_, x_, y_);
    chart_->legend()->setAlignment(Qt::AlignBottom);
    chart_->legend()->markers(frontMarks_).front()->setVisible(false);
    connect(chart_, &QChart::plotAreaChanged, this, [this] { placeLabels(); });
    split->addWidget(makeView(chart_, split));
    map_ = new AllocationMap(split);
    split->addWidget(map_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    split->setSizes({600, 400});  // the map wide enough for a rank number in every cell
    layout->addWidget(split, 1);

    auto* budgetRow = new QHBoxLayout();
    auto* budgetLabel = new QLabel("B&udget:", this);
    slider_ = new QSlider(Qt::Horizontal, this);
    slider_->setObjectName("budgetSlider");
    slider_->setRange(0, kSliderSteps);
    slider_->setToolTip("The size of the whole export (GPTQ base + adapter); the plan follows at once");
    budgetLabel->setBuddy(slider_);
    budgetText_ = new QLabel(this);
    budgetText_->setObjectName("budgetText");
    budgetText_->setMinimumWidth(budgetText_->fontMetrics().horizontalAdvance("0000.00 MiB") + 8);
    auto* likeLabel = new QLabel("the size &of", this);
    like_ = new QComboBox(this);
    like_->setObjectName("budgetLike");
    like_->setToolTip("Set the budget to the size of a uniform setting, to compare the plan with it");
    likeLabel->setBuddy(like_);
    budgetRow->addWidget(budgetLabel);
    budgetRow->addWidget(slider_, 1);
    budgetRow->addWidget(budgetText_);
    budgetRow->addWidget(likeLabel);
    budgetRow->addWidget(like_);
    layout->addLayout(budgetRow);

    auto* bottom = new QHBoxLayout();
    summary_ = new QLabel(this);
    summary_->setObjectName("budgetSummary");
    summary_->setWordWrap(true);
    summary_->setTextFormat(Qt::RichText);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    bottom->addWidget(summary_, 1);
    apply_ = new QPushButton("Apply to setti&ngs", this);
    apply_->setObjectName("budgetApply");
    apply_->setToolTip(
        "Replace the model's settings with the plan (per-layer bits and ranks); the explorer, the "
        "overview and the export then use it");
    applyExport_ = new QPushButton("Apply and e&xport…", this);
    applyExport_->setObjectName("budgetApplyExport");
    applyExport_->setToolTip("Apply the plan, then open the export dialog");
    auto* applyCol = new QVBoxLayout();
    applyCol->addWidget(apply_);
    applyCol->addWidget(applyExport_);
    applyCol->addStretch(1);
    bottom->addLayout(applyCol);
    layout->addLayout(bottom);

    connect(compute_, &QPushButton::clicked, this, &BudgetView::computeClicked);
    connect(cancel_, &QPushButton::clicked, controller_, &BudgetController::cancel);
    connect(apply_, &QPushButton::clicked, this, [this] { applyClicked(false); });
    connect(applyExport_, &QPushButton::clicked, this, [this] { applyClicked(true); });
    connect(mode_, &QComboBox::currentIndexChanged, this, [this] {
        const bool ranksOnly = mode_->currentData().toInt() == static_cast<int>(PlanMode::RanksOnly);
        for (QCheckBox* c : bits_) c->setEnabled(!ranksOnly);
    });
    connect(slider_, &QSlider::valueChanged, this, [this](int v) {
        if (!controller_->hasPlan()) return;
        const auto [lo, hi] = controller_->sizeRange();
        controller_->setBudget(lo + static_cast<int64_t>(std::llround(double(hi - lo) * v / kSliderSteps)));
    });
    connect(like_, &QComboBox::activated, this, [this](int i) {
        const qlonglong bytes = like_->itemData(i).toLongLong();
        if (bytes > 0) controller_->setBudget(bytes);
    });
    connect(controller_, &BudgetController::curvesReset, this, &BudgetView::reset);
    connect(controller_, &BudgetController::planChanged, this, &BudgetView::redraw);
    connect(controller_, &BudgetController::stateChanged, this, [this](const QString& text, bool running) {
        state_->setText(text);
        compute_->setEnabled(!running);
        cancel_->setEnabled(running);
        apply_->setEnabled(!running && controller_->hasPlan() && controller_->current());
        applyExport_->setEnabled(apply_->isEnabled());
    });
    reset();
    restyle();
}

QCheckBox* BudgetView::bitsBox(int bits) const {
    for (int i = 0; i < bits_.size(); ++i)
        if (kCandidateBits[i] == bits) return bits_[i];
    return nullptr;
}

BudgetRequest BudgetView::request() const {
    BudgetRequest r;
    r.bits.clear();
    for (int i = 0; i < bits_.size(); ++i)
        if (bits_[i]->isChecked()) r.bits.push_back(kCandidateBits[i]);
    if (r.bits.empty()) r.bits = {};  // validate_plan_options names the problem
    r.ranks = parse_ranks(ranks_->text());
    r.mode = static_cast<PlanMode>(mode_->currentData().toInt());
    r.adapter_elem_bytes = dtype_->currentData().toInt();
    return r;
}

void BudgetView::computeClicked() {
    try {
        controller_->compute(request());
    } catch (const std::exception& e) {
        const QString m = QString::fromStdString(error_message(e));
        state_->setText("Cannot plan: " + m);
        Q_EMIT message("Budget: " + m);
    }
}

void BudgetView::applyClicked(bool then_export) {
    try {
        controller_->applyToSession();
        Q_EMIT message("The plan is now the model's settings");
        if (then_export) Q_EMIT exportRequested();
    } catch (const std::exception& e) {
        const QString m = QString::fromStdString(error_message(e));
        state_->setText("Cannot apply: " + m);
        Q_EMIT message("Budget: " + m);
    }
}

int BudgetView::sliderFor(int64_t bytes) const {
    const auto [lo, hi] = controller_->sizeRange();
    if (hi <= lo) return 0;
    return static_cast<int>(std::llround(double(bytes - lo) * kSliderSteps / double(hi - lo)));
}

void BudgetView::reset() {
    frontDrawn_ = false;
    for (QXYSeries* s :
         {static_cast<QXYSeries*>(front_), static_cast<QXYSeries*>(frontMarks_), static_cast<QXYSeries*>(chosen_)})
        s->clear();
    for (QScatterSeries* u : uniform_) u->clear();
    qDeleteAll(labels_);
    labels_.clear();
    map_->clear();
    like_->clear();
    slider_->setEnabled(false);
    like_->setEnabled(false);
    apply_->setEnabled(false);
    applyExport_->setEnabled(false);
    budgetText_->clear();
    summary_->clear();
    caption_->setText(
        "What is the best model in this many megabytes? Compute quantizes every layer once per bit "
        "width and reads its calibrated discrepancy at every rank from CLoQ's spectrum; an exact "
        "knapsack then spends the budget where it lowers the summed discrepancy most.");
    x_->setRange(0, 1);
    y_->setRange(1e-3, 1);
}

void BudgetView::redraw() {
    if (!controller_->hasPlan()) return reset();
    const Plan& p = controller_->plan();
    if (!frontDrawn_) {
        frontDrawn_ = true;
        // The log axis spans whole decades from the smallest objective that is not rounding noise: a full-rank
        // adapter leaves ~1e-30, which would stretch the axis over dozens of unlabelled decades. Such points sit
        // on the axis's floor.
        double hi = 0, xmax = 0;
        for (const auto* pts : {&p.front, &p.uniform})
            for (const PlanPoint& f : *pts)
                if (std::isfinite(f.objective)) hi = std::max(hi, f.objective);
        double lo = hi;
        for (const auto* pts : {&p.front, &p.uniform})
            for (const PlanPoint& f : *pts)
                if (f.objective >= hi * 1e-6) lo = std::min(lo, f.objective);
        yFloor_ = hi > 0 ? std::pow(10.0, std::floor(std::log10(lo))) : 1e-3;
        const auto y_of = [this](double objective) { return std::max(objective, yFloor_); };
        QList<QPointF> pts;
        for (const PlanPoint& f : p.front) {
            pts.append(QPointF(f.bytes / kMiB, y_of(f.objective)));
            xmax = std::max(xmax, f.bytes / kMiB);
        }
        front_->replace(pts);
        frontMarks_->replace(pts);
        qDeleteAll(labels_);
        labels_.clear();
        like_->clear();
        std::map<int64_t, const PlanPoint*> bySize;
        for (int i = 0; i < uniform_.size(); ++i) {
            QList<QPointF> u;
            const std::string prefix = std::to_string(kCandidateBits[i]) + "-bit r";
            for (const PlanPoint& pt : p.uniform) {
                if (pt.label.rfind(prefix, 0) != 0) continue;
                bySize[pt.bytes] = &pt;
                u.append(QPointF(pt.bytes / kMiB, y_of(pt.objective)));
                xmax = std::max(xmax, pt.bytes / kMiB);
                auto* label =
                    new QGraphicsSimpleTextItem("r" + QString::fromStdString(pt.label.substr(prefix.size())), chart_);
                label->setData(0, QPointF(pt.bytes / kMiB, y_of(pt.objective)));
                label->setData(1, i);
                labels_.append(label);
            }
            uniform_[i]->replace(u);
            chart_->legend()->markers(uniform_[i]).front()->setVisible(!u.isEmpty());
        }
        for (const auto& [bytes, pt] : bySize)
            like_->addItem(QString("%1 (%2)").arg(QString::fromStdString(pt->label), format_mib(bytes)),
                           QVariant::fromValue<qlonglong>(bytes));
        const auto [smin, smax] = controller_->sizeRange();
        // A little room around the sizes, then round numbers: a small model's front spans a fraction of a MiB.
        const double x0 = smin / kMiB, x1 = std::max(xmax, smax / kMiB), pad = std::max(0.03 * (x1 - x0), 1e-3);
        x_->setRange(std::max(0.0, x0 - pad), x1 + pad);
        x_->applyNiceNumbers();
        // A hair below the floor decade: QLogValueAxis drops the tick at the range's minimum when rounding puts it
        // a few ulps above (as in the spectrum chart).
        if (hi > 0) y_->setRange(yFloor_ * (1 - 1e-9), std::pow(10.0, std::ceil(std::log10(hi * 1.0001))));
        slider_->setEnabled(true);
        like_->setEnabled(true);
        restyle();
    }

    const int64_t size = p.fixed_bytes + p.exact.bytes;
    chosen_->replace(QList<QPointF>{QPointF(size / kMiB, std::max(p.exact.objective, yFloor_))});
    {
        const QSignalBlocker block(slider_);
        slider_->setValue(sliderFor(controller_->budget()));
    }
    budgetText_->setText(format_mib(controller_->budget()));
    {
        const QSignalBlocker block(like_);
        like_->setCurrentIndex(like_->findData(QVariant::fromValue<qlonglong>(controller_->budget())));
    }

    // The allocation: block × module kind.
    QStringList columns;
    std::vector<AllocationCell> cells;
    int blocks = 0;
    std::map<int, int> bitsCount;
    int rmin = 1 << 30, rmax = 0;
    size_t k = 0;
    for (const LayerCurve& l : p.layers) {
        // Column titles without "_proj": seven columns share a narrow map (the tooltips name the module).
        const QString kind = QString::fromStdString(l.layer.short_name()).remove("_proj");
        if (!columns.contains(kind)) columns.append(kind);
        blocks = std::max(blocks, l.layer.layer + 1);
        AllocationCell c;
        c.block = l.layer.layer;
        c.column = static_cast<int>(columns.indexOf(kind));
        const QString name = QString::fromStdString(l.layer.name());
        if (l.plannable) {
            const PlanOption& o = l.options[static_cast<size_t>(p.exact.choice[k++])];
            c.bits = o.bits;
            c.rank = o.rank;
            ++bitsCount[o.bits];
            rmin = std::min(rmin, o.rank);
            rmax = std::max(rmax, o.rank);
            c.tooltip = QString("%1: %2-bit, rank %3 — %4, objective %5")
                            .arg(name)
                            .arg(o.bits)
                            .arg(o.rank)
                            .arg(format_mib(o.bytes), format_number(o.objective));
        } else {
            c.tooltip = name + ": kept in float (" + QString::fromStdString(l.why) + ")";
        }
        cells.push_back(c);
    }
    map_->setCells(blocks, columns, cells);

    // The summary: the plan against the best uniform setting within the same budget.
    QStringList mix;
    for (const auto& [b, n] : bitsCount) mix << QString("%1× %2-bit").arg(n).arg(b);
    const double gap = p.exact.lower_bound > 0 ? (p.exact.objective - p.exact.lower_bound) / p.exact.lower_bound : 0;
    QString s = QString(
                    "<b>Plan: %1</b> for a budget of %2 (%3 bits per weight with the adapter, %4 without); "
                    "objective <b>%5</b>, greedy %6, lower bound %7 (within %8 % of optimal). %9; ranks %10–%11.")
                    .arg(format_mib(size), format_mib(controller_->budget()))
                    .arg(p.bits_per_weight(p.exact, true), 0, 'f', 2)
                    .arg(p.bits_per_weight(p.exact, false), 0, 'f', 2)
                    .arg(format_number(p.exact.objective, 4), format_number(p.greedy.objective, 4),
                         format_number(p.exact.lower_bound, 4))
                    .arg(gap * 100, 0, 'f', 2)
                    .arg(mix.join(", "))
                    .arg(rmin > rmax ? 0 : rmin)
                    .arg(rmax);
    if (const PlanPoint* u = best_uniform_within(p, controller_->budget()))
        s += QString(
                 " The best uniform setting within the budget, %1 (%2), has objective %3: the plan's is %4× "
                 "lower.")
                 .arg(QString::fromStdString(u->label), format_mib(u->bytes), format_number(u->objective, 4))
                 .arg(p.exact.objective > 0 ? u->objective / p.exact.objective : 0.0, 0, 'f', 2);
    else
        s += " No uniform setting of the grid fits this budget.";
    QStringList loaders;
    for (const std::string& l : p.loaders) loaders << QString::fromStdString(l);
    s += "<br>Loads in: " + loaders.join("; ") + ".";
    if (!controller_->current()) s += "<br><i>Computed under other quantizer settings: compute again to apply.</i>";
    summary_->setText(s);
    apply_->setEnabled(!controller_->isRunning() && controller_->current());
    applyExport_->setEnabled(apply_->isEnabled());
    caption_->setText(
        QString("%1 layers planned over %2-bit × ranks {%3}, group %4, %5 (fixed: %6 of embeddings, "
                "norms and float-kept modules). The front is the exact optimum at each size; "
                "triangles are the uniform settings on the same cost model.")
            .arg(p.weights_planned > 0 ? QString::number(p.layers.size()) : "No")
            .arg([&] {
                QStringList b;
                for (int x : p.options.bits) b << QString::number(x);
                return b.join("/");
            }())
            .arg([&] {
                QStringList r;
                for (int x : p.options.ranks) r << QString::number(x);
                return r.join(", ");
            }())
            .arg(p.options.base.quant.group)
            .arg(QString::fromStdString(to_string(p.options.mode)) == "ranks" ? "ranks only" : "bits and ranks")
            .arg(format_mib(p.fixed_bytes)));
    placeLabels();
}

void BudgetView::placeLabels() {
    // Rank labels beside the uniform points; one that would overlap a label already placed is left out (its
    // point keeps its tooltip), so crowded points never print over each other.
    QList<QRectF> placed;
    for (QGraphicsSimpleTextItem* l : labels_) {
        const QPointF v = l->data(0).toPointF();
        const int i = l->data(1).toInt();
        const QPointF at = chart_->mapToPosition(v, uniform_[i]);
        l->setPos(at + QPointF(6, -l->boundingRect().height() - 2));
        const QRectF r = l->sceneBoundingRect().adjusted(-2, -1, 2, 1);
        bool free = chart_->plotArea().contains(at);
        for (const QRectF& o : placed) free = free && !o.intersects(r);
        l->setVisible(free);
        if (free) placed.append(r);
    }
}

void BudgetView::restyle() {
    style_chart(chart_);
    for (QAbstractAxis* a : chart_->axes()) style_axis(a);
    const QColor text = palette().color(QPalette::Text);
    const QColor c = method_color(InitMethod::Cloq);
    QPen pen(c, 2.0);
    pen.setCosmetic(true);
    front_->setPen(pen);
    frontMarks_->setColor(c);
    frontMarks_->setBorderColor(c);
    chosen_->setColor(QColor(220, 40, 60));
    chosen_->setBorderColor(text);
    for (int i = 0; i < uniform_.size(); ++i) {
        uniform_[i]->setColor(AllocationMap::bitsColor(kCandidateBits[i]));
        uniform_[i]->setBorderColor(text);
    }
    for (QGraphicsSimpleTextItem* l : labels_) l->setBrush(text);
}

}  // namespace cloq::ui
