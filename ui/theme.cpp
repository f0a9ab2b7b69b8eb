#include "theme.h"

#include <QApplication>
#include <QFont>
#include <QPainter>
#include <QPalette>
#include <QProxyStyle>
#include <QStyleFactory>
#include <QStyleOption>
#include <QtCharts/QAbstractAxis>
#include <QtCharts/QChart>

namespace cloq::ui {
namespace {
Theme g_theme = Theme::Light;  // the application has one palette; this mirrors it for code that draws by hand

QPalette dark_palette() {
    QPalette p;
    const QColor window(0x2b, 0x2d, 0x31), base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6);
    const QColor disabled(0x80, 0x80, 0x80), highlight(0x3d, 0x7e, 0xd6);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, QColor(0x26, 0x28, 0x2b));
    p.setColor(QPalette::ToolTipBase, QColor(0x3a, 0x3d, 0x42));
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, disabled);
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, QColor(0x35, 0x38, 0x3d));
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, QColor(0xff, 0x6b, 0x6b));
    p.setColor(QPalette::Light, QColor(0x45, 0x48, 0x4e));
    p.setColor(QPalette::Midlight, QColor(0x3a, 0x3d, 0x42));
    p.setColor(QPalette::Mid, QColor(0x25, 0x27, 0x2a));
    p.setColor(QPalette::Dark, QColor(0x1a, 0x1b, 0x1d));
    p.setColor(QPalette::Shadow, Qt::black);
    p.setColor(QPalette::Highlight, highlight);
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, QColor(0x6c, 0xb0, 0xff));
    p.setColor(QPalette::LinkVisited, QColor(0xb0, 0x8c, 0xff));
    for (auto role : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        p.setColor(QPalette::Disabled, role, disabled);
    p.setColor(QPalette::Disabled, QPalette::Highlight, QColor(0x50, 0x50, 0x50));
    return p;
}

// Fusion with two changes. Tabs a little tighter, so the eight view tabs fit a 1280-px window beside the explorer
// and the settings without scroll arrows. And in the dark theme a visible frame around check boxes and radio
// buttons: Fusion outlines them in the window colour darkened, which nearly vanishes on a dark window.
class StudioStyle : public QProxyStyle {
public:
    StudioStyle() : QProxyStyle(QStyleFactory::create("Fusion")) {}

    int pixelMetric(PixelMetric metric, const QStyleOption* option, const QWidget* widget) const override {
        if (metric == PM_TabBarTabHSpace) return QProxyStyle::pixelMetric(metric, option, widget) / 2;
        return QProxyStyle::pixelMetric(metric, option, widget);
    }

    void drawPrimitive(PrimitiveElement element, const QStyleOption* option, QPainter* painter,
                       const QWidget* widget) const override {
        QProxyStyle::drawPrimitive(element, option, painter, widget);
        const bool box = element == PE_IndicatorCheckBox, round = element == PE_IndicatorRadioButton;
        if (!(box || round) || current_theme() != Theme::Dark) return;
        painter->save();
        painter->setRenderHint(QPainter::Antialiasing, round);
        painter->setBrush(Qt::NoBrush);
        const bool enabled = option->state & State_Enabled;
        painter->setPen(QPen(enabled ? QColor(0x9a, 0x9e, 0xa6) : QColor(0x5a, 0x5d, 0x62), 1));
        const QRectF r = QRectF(option->rect).adjusted(0.5, 0.5, -0.5, -0.5);
        if (round)
            painter->drawEllipse(r);
        else
            painter->drawRoundedRect(r, 1.5, 1.5);
        painter->restore();
    }
};

QPalette light_palette() {
    // Fusion's standard palette, with a slightly stronger highlight so selected rows read well in screenshots.
    QPalette p = QStyleFactory::create("Fusion")->standardPalette();
    p.setColor(QPalette::Highlight, QColor(0x2b, 0x6c, 0xc4));
    p.setColor(QPalette::HighlightedText, Qt::white);
    return p;
}
}  // namespace

Theme current_theme() { return g_theme; }

void apply_theme(QApplication& app, Theme theme) {
    g_theme = theme;
    // Fusion draws the same everywhere (also offscreen), so screenshots match what users see.
    app.setStyle(new StudioStyle);
    if (QGuiApplication::platformName() == "offscreen") {
        // Offscreen has no desktop font settings: the font the screenshots were checked with, and the GUI tests
        // measure the layout in.
        QFont f("DejaVu Sans");
        f.setPointSizeF(9.5);
        app.setFont(f);
    }
    app.setPalette(theme == Theme::Dark ? dark_palette() : light_palette());
}

Theme parse_theme(const QString& name) { return name.trimmed().toLower() == "dark" ? Theme::Dark : Theme::Light; }
QString to_string(Theme theme) { return theme == Theme::Dark ? "dark" : "light"; }

QColor method_color(InitMethod m) {
    const bool dark = g_theme == Theme::Dark;
    switch (m) {
    case InitMethod::Zero:
        return dark ? QColor(0xa8, 0xa8, 0xa8) : QColor(0x80, 0x80, 0x80);
    case InitMethod::Svd:
        return dark ? QColor(0xc3, 0x9b, 0xf0) : QColor(0x94, 0x67, 0xbd);
    case InitMethod::Loftq:
        return dark ? QColor(0xff, 0xa0, 0x40) : QColor(0xe8, 0x6f, 0x00);
    case InitMethod::Cloq:
        return dark ? QColor(0x5a, 0xb0, 0xff) : QColor(0x1f, 0x6f, 0xc0);
    case InitMethod::Eora:
        return dark ? QColor(0x6f, 0xd9, 0x8a) : QColor(0x2c, 0xa0, 0x2c);
    case InitMethod::QeraExact:
        return dark ? QColor(0xf0, 0x7a, 0xb8) : QColor(0xc2, 0x3b, 0x80);
    case InitMethod::QeraApprox:
        return dark ? QColor(0x4f, 0xd6, 0xd6) : QColor(0x17, 0x9e, 0x9e);
    }
    return Qt::gray;
}

QString method_label(InitMethod m) {
    switch (m) {
    case InitMethod::Zero:
        return "zero (QLoRA)";
    case InitMethod::Svd:
        return "SVD";
    case InitMethod::Loftq:
        return "LoftQ";
    case InitMethod::Cloq:
        return "CLoQ";
    case InitMethod::Eora:
        return "EoRA";
    case InitMethod::QeraExact:
        return "QERA-exact";
    case InitMethod::QeraApprox:
        return "QERA-approx";
    }
    return {};
}

QColor weight_color(int which) {
    const bool dark = g_theme == Theme::Dark;
    switch (which) {
    case 0:
        return dark ? QColor(0x5a, 0xb0, 0xff) : QColor(0x1f, 0x6f, 0xc0);
    case 1:
        return dark ? QColor(0xff, 0xa0, 0x40) : QColor(0xe8, 0x6f, 0x00);
    default:
        return dark ? QColor(0xff, 0x6b, 0x8a) : QColor(0xc0, 0x25, 0x4a);
    }
}

void style_chart(QChart* chart) {
    const bool dark = g_theme == Theme::Dark;
    chart->setTheme(dark ? QChart::ChartThemeDark : QChart::ChartThemeLight);
    chart->setAnimationOptions(QChart::NoAnimation);
    // Blend the chart into the window instead of a white/black card, and keep margins small: the views are dense.
    const QPalette pal = QApplication::palette();
    chart->setBackgroundBrush(pal.color(QPalette::Base));
    chart->setBackgroundRoundness(0);
    chart->setMargins(QMargins(6, 6, 6, 6));
    QFont title = QApplication::font();
    title.setBold(true);
    title.setPointSizeF(title.pointSizeF() * 1.1);
    chart->setTitleFont(title);
    chart->setTitleBrush(pal.color(QPalette::Text));
    chart->legend()->setFont(QApplication::font());
    chart->legend()->setLabelColor(pal.color(QPalette::Text));
}

void style_axis(QAbstractAxis* axis) {
    const QPalette pal = QApplication::palette();
    const bool dark = g_theme == Theme::Dark;
    axis->setLabelsFont(QApplication::font());
    axis->setLabelsColor(pal.color(QPalette::Text));
    QFont title = QApplication::font();
    title.setBold(true);
    axis->setTitleFont(title);
    axis->setTitleBrush(pal.color(QPalette::Text));
    axis->setGridLineColor(dark ? QColor(0x44, 0x47, 0x4d) : QColor(0xdd, 0xdd, 0xdd));
    axis->setMinorGridLineColor(dark ? QColor(0x36, 0x38, 0x3c) : QColor(0xee, 0xee, 0xee));
    axis->setLinePenColor(dark ? QColor(0x88, 0x88, 0x88) : QColor(0x70, 0x70, 0x70));
}

}  // namespace cloq::ui
