#include "playground_view.h"

#include <QTextDocumentFragment>

#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>

#include "chart_panel.h"
#include "discrepancy_chart.h"
#include "gradient_fit_chart.h"
#include "layer_worker.h"
#include "rank_sweep_chart.h"
#include "theme.h"

namespace cloq::ui {
namespace {
double cond_of(int pos) { return std::pow(10.0, pos / 10.0); }
QString cond_text(double c) {
    if (c < 1000) return QString::number(c, 'f', c < 10 ? 1 : 0);
    return QString("%1e%2")
        .arg(c / std::pow(10.0, std::floor(std::log10(c))), 0, 'f', 1)
        .arg(int(std::floor(std::log10(c))));
}
}  // namespace

PlaygroundView::PlaygroundView(QWidget* parent) : QWidget(parent) {
    setObjectName("playgroundView");
    worker_ = new LayerWorker(this, 3);
    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(60);
    connect(debounce_, &QTimer::timeout, this, &PlaygroundView::submit);

    auto* outer = new QHBoxLayout(this);
    outer->setContentsMargins(4, 4, 4, 4);
    // --- controls
    auto* controls = new QWidget(this);
    auto* cl = new QVBoxLayout(controls);
    cl->setContentsMargins(0, 0, 0, 0);
    auto* inputs = new QGroupBox("Synthetic layer", controls);
    auto* f1 = new QFormLayout(inputs);
    size_ = new QComboBox(inputs);
    for (int n : {64, 128, 256, 512, 1024, 2048}) size_->addItem(QString("%1 × %1").arg(n), n);
    size_->setCurrentIndex(2);
    size_->setToolTip("out × in of the random weight W (entries N(0, 1/in)); larger layers take longer");
    f1->addRow("&Size:", size_);
    cond_ = new QSlider(Qt::Horizontal, inputs);
    cond_->setObjectName("condSlider");
    cond_->setRange(0, 40);  // 10^0 .. 10^4
    cond_->setValue(20);
    cond_->setToolTip(
        "Condition number of the activations X: the spread of input channel scales (H = XᵀX has "
        "its square). Real LLM inputs are strongly anisotropic.");
    condLabel_ = new QLabel(inputs);
    condLabel_->setMinimumWidth(48);
    auto* condRow = new QHBoxLayout();
    condRow->addWidget(cond_, 1);
    condRow->addWidget(condLabel_);
    // A layout row has no buddy of its own: the label points at the slider so Alt+C reaches it.
    auto* condName = new QLabel("&Condition κ(X):", this);
    condName->setBuddy(cond_);
    f1->addRow(condName, condRow);
    outliers_ = new QSpinBox(inputs);
    outliers_->setRange(0, 64);
    outliers_->setValue(4);
    outliers_->setToolTip("Input channels with much larger activations (the outlier features of LLMs)");
    f1->addRow("&Outlier channels:", outliers_);
    outlierScale_ = new QSpinBox(inputs);
    outlierScale_->setRange(1, 1000);
    outlierScale_->setValue(20);
    outlierScale_->setSuffix(" ×");
    outlierScale_->setToolTip("How much larger the outlier channels are");
    f1->addRow("Outlier &scale:", outlierScale_);
    seed_ = new QSpinBox(inputs);
    seed_->setRange(1, 99999);
    seed_->setToolTip("Random seed of W and X");
    f1->addRow("S&eed:", seed_);
    cl->addWidget(inputs);

    auto* quant = new QGroupBox("Quantization and adapter", controls);
    auto* f2 = new QFormLayout(quant);
    bits_ = new QComboBox(quant);
    for (int b : {2, 3, 4, 8}) bits_->addItem(QString("%1-bit").arg(b), b);
    bits_->setToolTip("Bit width of the INT quantizer");
    f2->addRow("&Bits:", bits_);
    group_ = new QComboBox(quant);
    for (int g : {32, 64, 128}) group_->addItem(QString::number(g), g);
    group_->addItem("per channel", -1);
    group_->setCurrentIndex(1);
    group_->setToolTip("Quantization group size along the input");
    f2->addRow("&Group:", group_);
    quantizer_ = new QComboBox(quant);
    quantizer_->addItem("RTN", static_cast<int>(QuantMethod::Rtn));
    quantizer_->addItem("GPTQ", static_cast<int>(QuantMethod::Gptq));
    quantizer_->setToolTip("RTN rounds each weight; GPTQ uses H to spread the rounding error");
    f2->addRow("&Quantizer:", quantizer_);
    rank_ = new QSpinBox(quant);
    rank_->setObjectName("playgroundRank");
    rank_->setRange(0, 256);
    rank_->setValue(16);
    rank_->setToolTip("LoRA rank r (at most the layer size)");
    f2->addRow("&Rank:", rank_);
    cl->addWidget(quant);
    state_ = new QLabel(controls);
    state_->setWordWrap(true);
    cl->addWidget(state_);
    cl->addStretch(1);
    controls->setMaximumWidth(300);
    controls->setMinimumWidth(210);
    outer->addWidget(controls);

    // --- explanation and charts
    auto* right = new QVBoxLayout();
    text_ = new QLabel(this);
    text_->setObjectName("playgroundExplanation");
    text_->setWordWrap(true);
    text_->setTextFormat(Qt::RichText);
    text_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
    text_->setFrameShape(QFrame::StyledPanel);
    text_->setMargin(8);
    text_->setAutoFillBackground(true);
    text_->setBackgroundRole(QPalette::AlternateBase);
    right->addWidget(text_);
    auto* split = new QSplitter(Qt::Horizontal, this);
    sweep_ = new RankSweepChart(split);
    bars_ = new DiscrepancyChart(split);
    split->addWidget(sweep_);
    split->addWidget(bars_);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 1);
    split->setSizes({900, 1100});  // fixed proportions whatever the charts' size hints
    auto* vsplit = new QSplitter(Qt::Vertical, this);
    vsplit->addWidget(split);
    fit_ = new GradientFitChart(vsplit);
    vsplit->addWidget(fit_);
    vsplit->setStretchFactor(0, 2);
    vsplit->setStretchFactor(1, 1);
    right->addWidget(vsplit, 1);
    connect(fit_, &GradientFitChart::fitRequested, this, [this] { fit_->fit(spec(), settings()); });
    outer->addLayout(right, 1);

    for (QComboBox* c : {size_, bits_, group_, quantizer_})
        connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, &PlaygroundView::schedule);
    for (QSpinBox* s : {outliers_, outlierScale_, rank_, seed_})
        connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &PlaygroundView::schedule);
    connect(cond_, &QSlider::valueChanged, this, [this](int p) {
        condLabel_->setText(cond_text(cond_of(p)));
        schedule();
    });
    condLabel_->setText(cond_text(cond_of(cond_->value())));
    connect(size_, qOverload<int>(&QComboBox::currentIndexChanged), this,
            [this] { rank_->setMaximum(size_->currentData().toInt()); });
    connect(worker_, &LayerWorker::reportReady, this, &PlaygroundView::onReport);
    connect(worker_, &LayerWorker::failed, this, [this](quint64, const QString&, const QString& msg) {
        state_->setText("<span style='color:#e0503c'>" + msg.toHtmlEscaped() + "</span>");
    });
    connect(worker_, &LayerWorker::cancelled, this, [this](quint64 gen, const QString&) {
        if (gen == worker_->latestGeneration()) state_->setText("Cancelled.");
    });
    connect(worker_, &LayerWorker::busyChanged, this, [this](bool busy, const QString&) {
        busy_ = busy;
        if (busy) state_->setText("Computing…");
        Q_EMIT busyChanged(busy);
    });
    text_->setText("<i>Move a control to start.</i>");
}

PlaygroundView::~PlaygroundView() = default;

SyntheticSpec PlaygroundView::spec() const {
    SyntheticSpec s;
    s.out = s.in = size_->currentData().toInt();
    s.cond = cond_of(cond_->value());
    s.outliers = outliers_->value();
    s.outlier_scale = outlierScale_->value();
    s.seed = static_cast<uint64_t>(seed_->value());
    return s;
}

void PlaygroundView::setSpec(const SyntheticSpec& s) {
    const int i = size_->findData(s.in);
    if (i >= 0) size_->setCurrentIndex(i);
    cond_->setValue(static_cast<int>(std::lround(10 * std::log10(std::max(1.0, s.cond)))));
    outliers_->setValue(s.outliers);
    outlierScale_->setValue(static_cast<int>(s.outlier_scale));
    seed_->setValue(static_cast<int>(s.seed));
}

LayerSettings PlaygroundView::settings() const {
    LayerSettings s;
    s.quant.bits = bits_->currentData().toInt();
    s.quant.group = group_->currentData().toInt();
    s.method = static_cast<QuantMethod>(quantizer_->currentData().toInt());
    s.rank = std::min(rank_->value(), size_->currentData().toInt());
    s.loftq_iters = 5;
    return s;
}

bool PlaygroundView::isComputing() const { return busy_ || debounce_->isActive(); }

void PlaygroundView::cancel() {
    debounce_->stop();
    worker_->cancel();
    fit_->cancel();
}

void PlaygroundView::showEvent(QShowEvent* e) {
    QWidget::showEvent(e);
    start();
}

void PlaygroundView::start() {
    if (started_) return;
    started_ = true;
    submit();
}

void PlaygroundView::schedule() {
    fit_->markStale();  // a shown fit belongs to the previous layer or settings
    if (!started_) return;
    debounce_->start();
}

void PlaygroundView::submit() { worker_->request(synthetic_source(spec()), settings()); }

void PlaygroundView::onReport(const LayerReport& r) {
    if (r.generation != worker_->latestGeneration()) return;  // an older request's answer
    report_ = r;
    report_.name = QString("Synthetic %1×%2 layer").arg(r.out).arg(r.in).toStdString();  // not the cache key
    sweep_->setReport(report_);
    bars_->setReport(report_);
    text_->setText(explain(r, spec()));
    if (!r.loftq_pending) {
        hasReport_ = true;
        state_->setText(QString("Solved in %1 ms.").arg(r.total_ms, 0, 'f', 0));
        Q_EMIT reportShown();
    } else {
        state_->setText("LoftQ is being recomputed…");
    }
}

// Plain text (the label holds rich text): what a user reads, for tests and accessibility.
QString PlaygroundView::explanation() const { return QTextDocumentFragment::fromHtml(text_->text()).toPlainText(); }

QString PlaygroundView::explain(const LayerReport& r, const SyntheticSpec& s) {
    const double c = r.cloq.fro_rel, l = r.loftq.fro_rel, v = r.svd.fro_rel, z = r.zero.fro_rel;
    QString t = QString(
                    "<b>What you see.</b> A %1×%2 layer quantized to %3 bits leaves <b>%4</b> of its output "
                    "‖XWᵀ‖ as error (zero init). A rank-%5 adapter then removes part of it: ")
                    .arg(r.out)
                    .arg(r.in)
                    .arg(r.settings.quant.bits)
                    .arg(format_number(z))
                    .arg(r.settings.rank);
    t += QString("<span style='color:%1'><b>CLoQ leaves %2</b></span>, LoftQ %3, plain SVD of W−Q %4.")
             .arg(method_color(InitMethod::Cloq).name(), format_number(c), format_number(l), format_number(v));
    if (c > 0 && l > 0) t += QString(" CLoQ's error is <b>%1× smaller</b> than LoftQ's.").arg(l / c, 0, 'f', 2);
    t += "<br><b>Why.</b> ";
    const bool isotropic = s.cond < 3 && s.outliers == 0;
    if (isotropic) {
        t += "The activations are nearly isotropic (H ≈ c·I), so weighting the error by the data changes little: "
             "CLoQ and the plain SVD nearly coincide. Raise the condition number or add outlier channels to see "
             "calibration matter.";
    } else {
        t += QString(
                 "The inputs are anisotropic (κ(X) = %1%2): a few input directions carry most of the signal. "
                 "LoftQ and SVD fit W − Q in the plain Frobenius norm and spend their rank on directions the "
                 "inputs barely excite; CLoQ first weights the error by R = H<sub>λ</sub><sup>½</sup> and "
                 "solves in closed form for the rank-r correction that minimizes the (ridge-regularized) error on "
                 "the calibration data "
                 "— the optimum no other rank-r adapter on this Q can beat.")
                 .arg(cond_text(s.cond))
                 .arg(s.outliers > 0 ? QString(", plus %1 outlier channels at %2×").arg(s.outliers).arg(s.outlier_scale)
                                     : QString());
    }
    if (r.settings.rank == 0) t += " <i>At rank 0 there is no adapter: every method is zero init.</i>";
    return t;
}

}  // namespace cloq::ui
