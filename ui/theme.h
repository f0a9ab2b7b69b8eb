// Light and dark palettes for the whole application, and the colours every chart uses for each method, chosen
// so that each method keeps one recognisable colour in both themes and stays readable on either background.
#pragma once
#include <QColor>
#include <QString>

#include "cloq/settings/settings.h"

class QApplication;
class QChart;
class QAbstractAxis;

namespace cloq::ui {

enum class Theme { Light, Dark };

Theme current_theme();  // what apply_theme last installed (Light before the first call)
void apply_theme(QApplication& app, Theme theme);
Theme parse_theme(const QString& name);  // "light" / "dark"; anything else -> Light
QString to_string(Theme theme);

// One colour per initialization (zero grey, svd purple, LoftQ orange, CLoQ blue), brighter on dark backgrounds.
QColor method_color(InitMethod m);
QString method_label(InitMethod m);  // "zero (QLoRA)", "SVD", "LoftQ", "CLoQ", "EoRA"
// The colour of "W", "Q" and "W − Q" in the weight histogram.
QColor weight_color(int which);  // 0 = W, 1 = Q, 2 = W - Q

// Restyles a chart for the current theme: Qt's light/dark chart theme, readable fonts, no animations
// (animations would make every live update lag behind the settings).
void style_chart(QChart* chart);
// Readable axis labels and titles in the current theme (call after the axis is attached to a styled chart).
void style_axis(QAbstractAxis* axis);

}  // namespace cloq::ui
