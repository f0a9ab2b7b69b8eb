#include "settings_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QVBoxLayout>

namespace cloq::ui {

QString SettingsPanel::splitExplanation(Split s) {
    switch (s) {
    case Split::Default:
        return "default (paper): lora_B = V_r is orthonormal and lora_A = S_r·U_rᵀ·R⁻ᵀ carries the scale — "
               "best after fine-tuning in Table 6 (WikiText-2 ppl 6.51).";
    case Split::Sqrt:
        return "sqrt: √S_r on both factors, balanced norms — close to the default (ppl 6.68).";
    case Split::UVs:
        return "u-vs: all of S_r on lora_B, lora_A is only the whitened directions R⁻¹U_r — same product, but "
               "the factors are so unbalanced that Adam's equal-size steps on lora_A get amplified by the "
               "large lora_B and fine-tuning breaks down (Table 6: ppl 880.6).";
    }
    return {};
}

SettingsPanel::SettingsPanel(QWidget* parent) : QWidget(parent) {
    setObjectName("settingsPanel");
    auto* outer = new QVBoxLayout(this);
    outer->setContentsMargins(6, 6, 6, 6);
    title_ = new QLabel("<i>no layer selected</i>", this);
    title_->setWordWrap(true);
    title_->setTextFormat(Qt::RichText);
    outer->addWidget(title_);
    status_ = new QLabel(this);
    status_->setWordWrap(true);
    outer->addWidget(status_);

    // --- quantizer
    auto* qbox = new QGroupBox("Quantized base", this);
    auto* qform = new QFormLayout(qbox);
    bits_ = new QComboBox(qbox);
    for (int b : {2, 3, 4, 8}) bits_->addItem(QString("%1-bit").arg(b), b);
    bits_->setToolTip(
        "Bit width of the integer quantizer (INT, asymmetric). Changing it re-runs the quantizer "
        "in the background.");
    qform->addRow("&Bits:", bits_);
    group_ = new QComboBox(qbox);
    for (int g : {32, 64, 128}) group_->addItem(QString::number(g), g);
    group_->addItem("per channel", -1);
    group_->setToolTip(
        "Input columns sharing one scale and zero point (the last group may be ragged); "
        "per channel = one group per output row.");
    qform->addRow("&Group size:", group_);
    quantizer_ = new QComboBox(qbox);
    quantizer_->addItem("GPTQ", static_cast<int>(QuantMethod::Gptq));
    quantizer_->addItem("RTN (round to nearest)", static_cast<int>(QuantMethod::Rtn));
    quantizer_->setToolTip(
        "GPTQ uses the calibration Hessian to push rounding error onto later columns; RTN "
        "rounds each weight on its own.");
    qform->addRow("&Quantizer:", quantizer_);
    magr_ = new QCheckBox("MagR", qbox);
    magr_->setToolTip(
        "Shrink each row's largest weights before quantizing while keeping ‖X(W'−W)ᵀ‖ small "
        "(paper Sec. 4.1): a smaller range means finer steps.");
    qform->addRow(QString(), magr_);
    outer->addWidget(qbox);

    // --- adapter
    auto* abox = new QGroupBox("LoRA adapter (CLoQ)", this);
    auto* aform = new QFormLayout(abox);
    auto* rankRow = new QHBoxLayout();
    rankSlider_ = new QSlider(Qt::Horizontal, abox);
    rankSlider_->setObjectName("rankSlider");
    rankSlider_->setRange(0, 64);
    rankSlider_->setToolTip(
        "LoRA rank r: how many singular directions of R·ΔWᵀ the adapter keeps. "
        "Redraws instantly (the SVD is cached).");
    rankSpin_ = new QSpinBox(abox);
    rankSpin_->setObjectName("rankSpin");
    rankSpin_->setRange(0, 64);
    rankSpin_->setToolTip(rankSlider_->toolTip());
    rankRow->addWidget(rankSlider_, 1);
    rankRow->addWidget(rankSpin_);
    // A row holding a layout gets no buddy from addRow, so its mnemonic would show as a literal "&".
    auto* rankSpinLabel = new QLabel("&Rank:");
    rankSpinLabel->setBuddy(rankSpin_);
    aform->addRow(rankSpinLabel, rankRow);
    split_ = new QComboBox(abox);
    split_->addItem("default", static_cast<int>(Split::Default));
    split_->addItem("sqrt", static_cast<int>(Split::Sqrt));
    split_->addItem("u-vs (bad)", static_cast<int>(Split::UVs));
    for (int i = 0; i < split_->count(); ++i)
        split_->setItemData(i, splitExplanation(static_cast<Split>(split_->itemData(i).toInt())), Qt::ToolTipRole);
    split_->setToolTip(
        "Where the singular values go between lora_A and lora_B (paper Table 6). The product, and "
        "so every discrepancy, is the same; the split matters for fine-tuning.");
    aform->addRow("&Split:", split_);
    splitNote_ = new QLabel(abox);
    splitNote_->setObjectName("splitExplanation");
    splitNote_->setWordWrap(true);
    splitNote_->setTextFormat(Qt::RichText);
    splitNote_->setMinimumWidth(150);
    aform->addRow(splitNote_);
    alpha_ = new QDoubleSpinBox(abox);
    alpha_->setRange(0.01, 4096);
    alpha_->setDecimals(2);
    alpha_->setToolTip(
        "lora_alpha of the exported adapter. The export divides lora_A by alpha/r, so the "
        "initialized weight is exact for any alpha.");
    aform->addRow("LoRA &alpha:", alpha_);
    outer->addWidget(abox);

    // --- LoftQ baseline
    auto* lbox = new QGroupBox("LoftQ baseline", this);
    auto* lform = new QFormLayout(lbox);
    loftqIters_ = new QSpinBox(lbox);
    loftqIters_->setRange(1, 50);
    loftqIters_->setToolTip("Alternating steps T of LoftQ (5 in the LoftQ and CLoQ papers, 1 is PEFT's default).");
    lform->addRow("&Iterations:", loftqIters_);
    loftqQuant_ = new QComboBox(lbox);
    loftqQuant_->addItem("INT (RTN)", static_cast<int>(LoftqQuant::Int));
    loftqQuant_->addItem("NF (QLoRA)", static_cast<int>(LoftqQuant::Nf));
    loftqQuant_->setToolTip(
        "LoftQ's inner quantizer: CLoQ's INT grid (bits, group) with round-to-nearest — LoftQ is "
        "data-free, so no GPTQ/MagR — or QLoRA's NF4/NF2.");
    lform->addRow("Q&uantizer:", loftqQuant_);
    outer->addWidget(lbox);

    // --- apply
    auto* pbox = new QGroupBox("Apply these settings", this);
    auto* pl = new QVBoxLayout(pbox);
    applyKind_ = new QPushButton("To all layers of this &kind", pbox);
    applyKind_->setToolTip(
        "Copy bits, group, rank, split and quantizer to every module of the same kind "
        "(e.g. every q_proj); ranks are capped at each layer's size.");
    applyModel_ = new QPushButton("To the &whole model", pbox);
    applyModel_->setToolTip("Make these the model-wide defaults and drop every per-layer override.");
    reset_ = new QPushButton("&Reset to the model default", pbox);
    reset_->setToolTip("Drop this layer's override.");
    pl->addWidget(applyKind_);
    pl->addWidget(applyModel_);
    pl->addWidget(reset_);
    outer->addWidget(pbox);
    outer->addStretch(1);
    // Combo boxes size to a few characters, not to their longest item, so the panel fits a narrow column.
    for (QComboBox* c : findChildren<QComboBox*>()) {
        c->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        c->setMinimumContentsLength(6);
    }

    connect(rankSlider_, &QSlider::valueChanged, this, [this](int v) {
        if (rankSpin_->value() != v) rankSpin_->setValue(v);
    });
    connect(rankSpin_, qOverload<int>(&QSpinBox::valueChanged), this, [this](int v) {
        if (rankSlider_->value() != v) rankSlider_->setValue(v);
        readControls();
    });
    for (QComboBox* c : {bits_, group_, split_, quantizer_, loftqQuant_})
        connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, [this] { readControls(); });
    connect(magr_, &QCheckBox::toggled, this, [this] { readControls(); });
    connect(loftqIters_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { readControls(); });
    connect(alpha_, qOverload<double>(&QDoubleSpinBox::valueChanged), this, [this] { readControls(); });
    connect(applyKind_, &QPushButton::clicked, this, &SettingsPanel::applyToKindRequested);
    connect(applyModel_, &QPushButton::clicked, this, &SettingsPanel::applyToModelRequested);
    connect(reset_, &QPushButton::clicked, this, &SettingsPanel::resetLayerRequested);

    writeControls();
    setEnabled(false);
}

void SettingsPanel::setLayer(const QString& name, const QString& kind, int64_t out, int64_t in, const LayerSettings& s,
                             bool overridden) {
    const int rmax = static_cast<int>(std::min(out, in));
    loading_ = true;
    rankSlider_->setRange(0, rmax);
    rankSpin_->setRange(0, rmax);
    rankSlider_->setPageStep(std::max(1, rmax / 16));
    loading_ = false;
    settings_ = s;
    settings_.rank = std::min(settings_.rank, rmax);
    title_->setText(QString("<b>%1</b><br>%2 × %3 (out × in)").arg(name.toHtmlEscaped()).arg(out).arg(in));
    status_->setText(overridden ? "This layer has its own settings." : "This layer uses the model defaults.");
    applyKind_->setText(QString("To all %1 layers").arg(kind.isEmpty() ? QString("similar") : kind));
    reset_->setEnabled(overridden);
    writeControls();
    setEnabled(true);
}

void SettingsPanel::setSettings(const LayerSettings& s) {
    settings_ = s;
    writeControls();
    Q_EMIT settingsChanged(settings_);
}

void SettingsPanel::writeControls() {
    loading_ = true;
    auto select = [](QComboBox* box, int value) {
        const int i = box->findData(value);
        if (i >= 0) box->setCurrentIndex(i);
    };
    select(bits_, settings_.quant.bits);
    select(group_, settings_.quant.group);
    select(quantizer_, static_cast<int>(settings_.method));
    select(split_, static_cast<int>(settings_.split));
    select(loftqQuant_, static_cast<int>(settings_.loftq_quant));
    magr_->setChecked(settings_.magr);
    rankSpin_->setValue(settings_.rank);
    rankSlider_->setValue(settings_.rank);
    loftqIters_->setValue(settings_.loftq_iters);
    alpha_->setValue(settings_.lora_alpha);
    loading_ = false;
    updateExplanation();
}

void SettingsPanel::readControls() {
    if (loading_) return;
    LayerSettings s = settings_;
    s.quant.bits = bits_->currentData().toInt();
    s.quant.group = group_->currentData().toInt();
    s.method = static_cast<QuantMethod>(quantizer_->currentData().toInt());
    s.split = static_cast<Split>(split_->currentData().toInt());
    s.loftq_quant = static_cast<LoftqQuant>(loftqQuant_->currentData().toInt());
    s.magr = magr_->isChecked();
    s.rank = rankSpin_->value();
    s.loftq_iters = loftqIters_->value();
    s.lora_alpha = alpha_->value();
    updateExplanation();
    if (s == settings_) return;
    settings_ = s;
    status_->setText("This layer has its own settings.");
    reset_->setEnabled(true);
    Q_EMIT settingsChanged(settings_);
}

void SettingsPanel::updateExplanation() {
    const auto s = static_cast<Split>(split_->currentData().toInt());
    // The bad split is shown in a warning colour (readable on light and dark) so nobody exports it by accident.
    const QString text = splitExplanation(s).toHtmlEscaped();
    splitNote_->setText(s == Split::UVs ? "<span style='color:#e0503c'>" + text + "</span>" : text);
}

}  // namespace cloq::ui
