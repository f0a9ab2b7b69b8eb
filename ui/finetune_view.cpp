#include "finetune_view.h"

#include <QAbstractButton>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <cmath>

#include "cloq/base/error.h"
#include "finetune_controller.h"
#include "theme.h"

namespace cloq::ui {

namespace {
const FineTuneInit kChoices[] = {{InitMethod::Zero, Split::Default}, {InitMethod::Loftq, Split::Default},
                                 {InitMethod::Cloq, Split::Default}, {InitMethod::Cloq, Split::Sqrt},
                                 {InitMethod::Cloq, Split::UVs},     {InitMethod::QeraExact, Split::Default}};

QString choice_text(const FineTuneInit& f) {
    if (f.init != InitMethod::Cloq) return method_label(f.init);
    switch (f.split) {
    case Split::Default:
        return "CLoQ";
    case Split::Sqrt:
        return "CLoQ, √S split";
    case Split::UVs:
        return "CLoQ, (U, VS) split";
    }
    return "CLoQ";
}

// CLoQ's splits share its colour, lighter and darker, so the init stays recognizable.
QColor run_color(const FineTuneInit& f) {
    const QColor c = method_color(f.init);
    if (f.init != InitMethod::Cloq || f.split == Split::Default) return c;
    return f.split == Split::Sqrt ? c.lighter(150) : c.darker(150);
}

// Training loss as perplexity, averaged over the last ~2 % of the steps (one batch is noisy).
QList<QPointF> smoothed_ppl(const std::vector<double>& loss) {
    QList<QPointF> pts;
    const size_t k = std::max<size_t>(1, loss.size() / 50);
    double sum = 0;
    for (size_t i = 0; i < loss.size(); ++i) {
        sum += loss[i];
        if (i >= k) sum -= loss[i - k];
        const double n = static_cast<double>(std::min(i + 1, k));
        pts.append(QPointF(static_cast<double>(i + 1), std::exp(sum / n)));
    }
    return pts;
}
}  // namespace

FinetuneView::FinetuneView(FinetuneController* controller, QWidget* parent)
    : ChartPanel(parent), controller_(controller) {
    setObjectName("finetuneView");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);

    auto* controls = new QHBoxLayout();
    auto* initBox = new QGroupBox("Fine-tune from", this);
    auto* ig = new QGridLayout(initBox);
    int i = 0;
    for (const FineTuneInit& f : kChoices) {
        auto* c = new QCheckBox(choice_text(f), initBox);
        c->setObjectName("init_" + QString::fromStdString(f.label()));
        // zero, LoftQ, CLoQ by default
        c->setChecked(f.split == Split::Default && f.init != InitMethod::QeraExact);
        c->setToolTip(f.init == InitMethod::Cloq && f.split != Split::Default
                          ? "CLoQ with another factor split (paper Table 6): the same starting model, other factors"
                      : f.init == InitMethod::QeraExact
                          ? "QERA-exact (ICLR 2025): CLoQ's objective without the ridge, the symmetric root of H"
                          : "Fine-tune from this initialization on the same quantized settings");
        inits_.insert(QString::fromStdString(f.label()), c);
        ig->addWidget(c, i % 3, i / 3);
        ++i;
    }
    controls->addWidget(initBox);

    auto* optBox = new QGroupBox("Training (AdamW, cosine schedule, paper Table 9)", this);
    auto* of = new QGridLayout(optBox);
    steps_ = new QSpinBox(optBox);
    steps_->setObjectName("stepsBox");
    steps_->setRange(1, 100000);
    steps_->setValue(100);
    batch_ = new QSpinBox(optBox);
    batch_->setObjectName("batchBox");
    batch_->setRange(1, 512);
    batch_->setValue(4);
    seqlen_ = new QSpinBox(optBox);
    seqlen_->setObjectName("seqlenBox");
    seqlen_->setRange(8, 8192);
    seqlen_->setValue(128);
    lr_ = new QDoubleSpinBox(optBox);
    lr_->setObjectName("lrBox");
    lr_->setDecimals(5);
    lr_->setRange(1e-5, 1.0);
    lr_->setSingleStep(1e-4);
    lr_->setValue(1e-3);
    evalWindows_ = new QSpinBox(optBox);
    evalWindows_->setObjectName("evalWindowsBox");
    evalWindows_->setRange(1, 4096);
    evalWindows_->setValue(16);
    // The GUI trains on the CPU, whose autocast has bfloat16 only (`cloq finetune --device cuda` adds float16).
    precision_ = new QComboBox(optBox);
    precision_->setObjectName("precisionBox");
    precision_->addItem("float32", static_cast<int>(Autocast::Off));
    precision_->addItem("bfloat16", static_cast<int>(Autocast::BFloat16));
    steps_->setToolTip("Optimizer steps per init (linear warmup over the first 3 %, then cosine decay to 0)");
    batch_->setToolTip("Training windows per step");
    seqlen_->setToolTip("Tokens per training and evaluation window");
    lr_->setToolTip("Peak learning rate of AdamW (paper Table 10: 4e-4 to 7e-4 for Llama2-7B)");
    evalWindows_->setToolTip("Evaluation windows (the first ones of the evaluation part), every steps/4 steps");
    precision_->setToolTip(
        "Precision of the training forward: float32, or bfloat16 autocast (matmuls in bfloat16, "
        "reductions, weights, adapters and the evaluation in float32)");
    const std::pair<const char*, QWidget*> rows[] = {{"Ste&ps:", steps_},
                                                     {"&Batch:", batch_},
                                                     {"&Window:", seqlen_},
                                                     {"&LR:", lr_},
                                                     {"E&val windows:", evalWindows_},
                                                     {"P&recision:", precision_}};
    int r = 0;
    for (const auto& [text, w] : rows) {
        auto* l = new QLabel(text, optBox);
        l->setBuddy(w);
        of->addWidget(l, r % 3, 2 * (r / 3));
        of->addWidget(w, r % 3, 2 * (r / 3) + 1);
        ++r;
    }
    controls->addWidget(optBox);

    auto* buttons = new QVBoxLayout();
    start_ = new QPushButton("&Start fine-tuning", this);
    start_->setObjectName("finetuneStart");
    start_->setToolTip("Train each chosen init in turn under the current settings (background; Esc cancels)");
    cancel_ = new QPushButton("Cancel", this);
    cancel_->setObjectName("finetuneCancel");
    cancel_->setEnabled(false);
    cancel_->setToolTip("Stop fine-tuning; the curves so far are kept");
    export_ = new QPushButton("E&xport adapter…", this);
    export_->setObjectName("finetuneExport");
    export_->setToolTip("Write the selected run's fine-tuned adapter as PEFT files");
    export_->setEnabled(false);
    for (QPushButton* b : {start_, cancel_, export_}) buttons->addWidget(b);
    buttons->addStretch(1);
    controls->addLayout(buttons);
    controls->addStretch(1);
    addControlsRow(layout, controls);

    state_ = new QLabel(this);
    state_->setObjectName("finetuneState");
    state_->setWordWrap(true);
    layout->addWidget(state_);
    caption_ = addCaption(layout);

    auto* split = new QSplitter(Qt::Vertical, this);
    chart_ = new QChart();
    chart_->setTitle("Fine-tuning from each init: training perplexity (line) and evaluation perplexity (markers)");
    x_ = new QValueAxis();
    x_->setTitleText("step");
    x_->setLabelFormat("%d");
    y_ = new QLogValueAxis();
    y_->setTitleText("perplexity");
    y_->setLabelFormat("%.3g");
    y_->setBase(10);
    y_->setMinorTickCount(8);
    chart_->addAxis(x_, Qt::AlignBottom);
    chart_->addAxis(y_, Qt::AlignLeft);
    chart_->legend()->setAlignment(Qt::AlignBottom);
    split->addWidget(makeView(chart_, split));

    table_ = new QTableWidget(0, 6, split);
    table_->setObjectName("finetuneTable");
    table_->setHorizontalHeaderLabels(
        {"Init", "ppl at step 0", "ppl at the end", "best eval ppl", "first step ≤ target", "s / step"});
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    table_->verticalHeader()->setVisible(false);
    table_->setCornerButtonEnabled(false);
    for (auto* corner : table_->findChildren<QAbstractButton*>()) corner->setToolTip("The runs, one row per init");
    table_->setToolTip(
        "Per init: perplexity on the evaluation part at step 0 and at the end, the best, the first "
        "evaluation at or below the target, and the training time per step; select a row to export");
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    auto* tableBox = new QWidget(split);
    auto* tl = new QVBoxLayout(tableBox);
    tl->setContentsMargins(0, 0, 0, 0);
    target_ = new QLabel(tableBox);
    target_->setWordWrap(true);
    tl->addWidget(target_);
    tl->addWidget(table_);
    split->addWidget(tableBox);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 1);
    layout->addWidget(split, 1);

    connect(start_, &QPushButton::clicked, this, &FinetuneView::startClicked);
    connect(cancel_, &QPushButton::clicked, controller_, &FinetuneController::cancel);
    connect(export_, &QPushButton::clicked, this, &FinetuneView::exportClicked);
    connect(table_, &QTableWidget::itemSelectionChanged, this, [this] {
        const auto sel = table_->selectionModel()->selectedRows();
        export_->setEnabled(!sel.isEmpty() && controller_->hasAdapter(sel.front().row()) && !controller_->isRunning());
    });
    connect(controller_, &FinetuneController::curvesReset, this, &FinetuneView::reset);
    connect(controller_, &FinetuneController::curveUpdated, this, &FinetuneView::update);
    connect(controller_, &FinetuneController::stateChanged, this, [this](const QString& text, bool running) {
        state_->setText(text);
        start_->setEnabled(!running);
        cancel_->setEnabled(running);
        if (running) export_->setEnabled(false);
    });
    reset();
    restyle();
}

FinetunePlan FinetuneView::plan() const {
    FinetunePlan p;
    for (const FineTuneInit& f : kChoices)
        if (inits_.value(QString::fromStdString(f.label()))->isChecked()) p.inits.push_back(f);
    p.options.steps = steps_->value();
    p.options.batch = batch_->value();
    p.options.seqlen = seqlen_->value();
    p.options.lr = lr_->value();
    p.options.eval_windows = evalWindows_->value();
    p.options.autocast = static_cast<Autocast>(precision_->currentData().toInt());
    p.options.eval_every = std::max(1, p.options.steps / 4);  // steps 0, N/4, N/2, 3N/4, N
    return p;
}

void FinetuneView::startClicked() {
    try {
        controller_->start(plan());
    } catch (const std::exception& e) {
        state_->setText("Cannot start: " + QString::fromStdString(error_message(e)));
        Q_EMIT message("Fine-tuning: " + QString::fromStdString(error_message(e)));
    }
}

void FinetuneView::exportClicked() {
    const auto sel = table_->selectionModel()->selectedRows();
    if (sel.isEmpty()) return;
    const QString dir = QFileDialog::getSaveFileName(this, "Export the fine-tuned adapter to a new folder");
    if (dir.isEmpty()) return;
    try {
        controller_->exportAdapter(sel.front().row(), dir);
        Q_EMIT message("Wrote the fine-tuned adapter to " + dir);
    } catch (const std::exception& e) {
        Q_EMIT message("Export failed: " + QString::fromStdString(error_message(e)));
    }
}

void FinetuneView::reset() {
    for (QAbstractSeries* s : chart_->series()) chart_->removeSeries(s);
    qDeleteAll(loss_);
    qDeleteAll(eval_);
    loss_.clear();
    eval_.clear();
    table_->setRowCount(0);
    target_->clear();
    export_->setEnabled(false);
    caption_->setText(controller_->description().isEmpty()
                          ? "Fine-tuning shows what each initialization trains into: the paper's claims are all after "
                            "fine-tuning. Choose the inits and press Start; the runs train one after another."
                          : controller_->description());
    x_->setRange(0, std::max(1, controller_->plan().options.steps));
    y_->setRange(1, 1000);
}

void FinetuneView::update(int run) {
    const auto& curves = controller_->curves();
    while (loss_.size() <= run) {
        const FineTuneCurve& c = curves[loss_.size()];
        auto* line = new QLineSeries();
        line->setName(choice_text(c.init));
        auto* marks = new QScatterSeries();
        marks->setName(choice_text(c.init) + " (eval)");
        marks->setMarkerSize(9);
        chart_->addSeries(line);
        chart_->addSeries(marks);
        for (QAbstractSeries* s : {static_cast<QAbstractSeries*>(line), static_cast<QAbstractSeries*>(marks)}) {
            s->attachAxis(x_);
            s->attachAxis(y_);
        }
        // One legend entry per init: the markers share the line's colour.
        chart_->legend()->markers(marks).front()->setVisible(false);
        loss_.append(line);
        eval_.append(marks);
    }
    const FineTuneCurve& c = curves[run];
    loss_[run]->replace(smoothed_ppl(c.train_loss));
    QList<QPointF> ev;
    for (const auto& [step, ppl] : c.eval_ppl) ev.append(QPointF(step, ppl));
    eval_[run]->replace(ev);
    restyle();
    rescale();
    rebuildTable();
}

void FinetuneView::rescale() {
    double lo = 1e300, hi = 0;
    for (int i = 0; i < loss_.size(); ++i)
        for (QXYSeries* s : {static_cast<QXYSeries*>(loss_[i]), static_cast<QXYSeries*>(eval_[i])})
            for (const QPointF& p : s->points())
                if (p.y() > 0 && std::isfinite(p.y())) lo = std::min(lo, p.y()), hi = std::max(hi, p.y());
    if (hi <= 0) return;
    // Whole decades around the data (a log axis labels its decades).
    y_->setRange(std::pow(10.0, std::floor(std::log10(lo))), std::pow(10.0, std::ceil(std::log10(hi * 1.0001))));
}

void FinetuneView::rebuildTable() {
    const auto& curves = controller_->curves();
    // The target every init reaches: the worst final evaluation perplexity among the runs that have ended.
    double target = 0;
    for (const auto& c : curves)
        if (!c.eval_ppl.empty() && c.eval_ppl.back().first == controller_->plan().options.steps)
            target = std::max(target, c.eval_ppl.back().second);
    target_->setText(target > 0 ? QString("Target perplexity %1: the worst final perplexity, so every finished init "
                                          "reaches it; the earlier an init gets there, the better it trains.")
                                      .arg(format_number(target, 4))
                                : QString("The target perplexity appears when the first run ends."));
    const int selected = table_->selectionModel()->selectedRows().isEmpty()
                             ? -1
                             : table_->selectionModel()->selectedRows().front().row();
    table_->setRowCount(curves.size());
    for (int i = 0; i < curves.size(); ++i) {
        const FineTuneCurve& c = curves[i];
        double best = 1e300;
        int first = -1;
        for (const auto& [step, ppl] : c.eval_ppl) {
            best = std::min(best, ppl);
            if (first < 0 && target > 0 && ppl <= target) first = step;
        }
        const QStringList cells = {choice_text(c.init),
                                   c.eval_ppl.empty() ? "—" : format_number(c.eval_ppl.front().second, 4),
                                   c.eval_ppl.size() < 2
                                       ? "—"
                                       : format_number(c.eval_ppl.back().second, 4) +
                                             (c.eval_ppl.back().first < controller_->plan().options.steps
                                                  ? QString(" (step %1)").arg(c.eval_ppl.back().first)
                                                  : QString()),
                                   c.eval_ppl.empty() ? "—" : format_number(best, 4),
                                   first < 0 ? "—" : QString::number(first),
                                   c.seconds_per_step > 0 ? format_number(c.seconds_per_step, 3) : "—"};
        for (int col = 0; col < cells.size(); ++col) {
            auto* item = new QTableWidgetItem(cells[col]);
            if (col > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if (col == 0) item->setForeground(run_color(c.init));
            table_->setItem(i, col, item);
        }
    }
    if (selected >= 0 && selected < curves.size()) table_->selectRow(selected);
}

void FinetuneView::restyle() {
    style_chart(chart_);
    for (QAbstractAxis* a : chart_->axes()) style_axis(a);
    const auto& curves = controller_->curves();
    for (int i = 0; i < loss_.size() && i < curves.size(); ++i) {
        const QColor col = run_color(curves[i].init);
        QPen pen(col, 2.0);
        pen.setCosmetic(true);
        loss_[i]->setPen(pen);
        eval_[i]->setColor(col);
        eval_[i]->setBorderColor(palette().color(QPalette::Text));
    }
}

}  // namespace cloq::ui
