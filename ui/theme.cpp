#include "theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyleFactory>
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
    app.setStyle(QStyleFactory::create("Fusion"));
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
