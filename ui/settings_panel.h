// The settings of the selected layer: quantizer (bits, group, GPTQ/RTN, MagR), adapter (rank, factor split,
// LoRA alpha) and the LoftQ baseline. Every edit applies to the selected layer at once (settingsChanged); the
// buttons copy the layer's settings to all layers of its kind or to the whole model.
#pragma once
#include <QWidget>

#include "cloq/settings/settings.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;

namespace cloq::ui {

class SettingsPanel : public QWidget {
    Q_OBJECT
public:
    explicit SettingsPanel(QWidget* parent = nullptr);

    // Shows `s` for the layer `name` of kind `kind` (e.g. "q_proj") with shape out × in; emits nothing.
    void setLayer(const QString& name, const QString& kind, int64_t out, int64_t in, const LayerSettings& s,
                  bool overridden);
    LayerSettings settings() const { return settings_; }
    void setSettings(const LayerSettings& s);  // programmatic change: updates the controls, emits settingsChanged

    // One line per split (paper Table 6), shown under the split box and in its tooltips.
    static QString splitExplanation(Split s);

    QComboBox* bitsBox() const { return bits_; }
    QComboBox* groupBox() const { return group_; }
    QSlider* rankSlider() const { return rankSlider_; }
    QSpinBox* rankSpin() const { return rankSpin_; }
    QComboBox* splitBox() const { return split_; }
    QComboBox* quantizerBox() const { return quantizer_; }
    QCheckBox* magrCheck() const { return magr_; }
    QSpinBox* loftqItersSpin() const { return loftqIters_; }
    QComboBox* loftqQuantBox() const { return loftqQuant_; }
    QDoubleSpinBox* alphaSpin() const { return alpha_; }
    QPushButton* applyKindButton() const { return applyKind_; }
    QPushButton* applyModelButton() const { return applyModel_; }

Q_SIGNALS:
    void settingsChanged(const cloq::LayerSettings& s);
    void applyToKindRequested();
    void applyToModelRequested();
    void resetLayerRequested();

private:
    void readControls();   // controls -> settings_, emits when different
    void writeControls();  // settings_ -> controls, without signals
    void updateExplanation();

    LayerSettings settings_;
    bool loading_ = false;
    QLabel* title_ = nullptr;
    QLabel* status_ = nullptr;
    QComboBox *bits_ = nullptr, *group_ = nullptr, *split_ = nullptr, *quantizer_ = nullptr, *loftqQuant_ = nullptr;
    QSlider* rankSlider_ = nullptr;
    QSpinBox *rankSpin_ = nullptr, *loftqIters_ = nullptr;
    QCheckBox* magr_ = nullptr;
    QDoubleSpinBox* alpha_ = nullptr;
    QLabel* splitNote_ = nullptr;
    QPushButton *applyKind_ = nullptr, *applyModel_ = nullptr, *reset_ = nullptr;
};

}  // namespace cloq::ui
