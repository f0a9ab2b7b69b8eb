#include "window_actions.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QDir>
#include <QFileDialog>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QSlider>
#include <QStatusBar>
#include <QTabWidget>
#include <QTreeView>

#include "about_dialog.h"
#include "cloq/base/error.h"
#include "main_window.h"
#include "session_controller.h"
#include "settings_panel.h"
#include "studio_options.h"
#include "theme.h"

namespace cloq::ui {

WindowActions::WindowActions(MainWindow* w) : QObject(w) {
    QMenu* file = w->menuBar()->addMenu("&File");
    QAction* open = file->addAction(QIcon::fromTheme("document-open"), "&Open model folder…");
    open->setShortcut(QKeySequence::Open);
    open->setToolTip("Open a Hugging Face model folder");
    connect(open, &QAction::triggered, w, [w] {
        const QString dir = QFileDialog::getExistingDirectory(w, "Open model folder", QDir::homePath());
        if (!dir.isEmpty()) w->openModel(dir);
    });
    QAction* gguf = file->addAction("Open &GGUF file…");
    gguf->setShortcut(QKeySequence("Ctrl+Shift+G"));
    gguf->setToolTip("Open a single-file model (llama.cpp's .gguf)");
    connect(gguf, &QAction::triggered, w, [w] {
        const QString f = QFileDialog::getOpenFileName(w, "Open GGUF file", QDir::homePath(), "GGUF models (*.gguf)");
        if (!f.isEmpty()) w->openModel(f);
    });
    QAction* demo = file->addAction("Open &demo model");
    demo->setShortcut(QKeySequence("Ctrl+D"));
    connect(demo, &QAction::triggered, w, [w] { w->openDemo(); });
    recentMenu_ = file->addMenu("Open &recent");
    connect(recentMenu_, &QMenu::aboutToShow, w, [this, w] {
        recentMenu_->clear();
        for (const QString& p : w->recentModels()) recentMenu_->addAction(p, w, [w, p] { w->openModel(p); });
        if (recentMenu_->isEmpty()) recentMenu_->addAction("(none)")->setEnabled(false);
    });
    QAction* startPage = file->addAction("&Start page");
    connect(startPage, &QAction::triggered, w, &MainWindow::showStartPage);
    file->addSeparator();
    QAction* loadProf = file->addAction("&Load settings profile…");
    loadProf->setShortcut(QKeySequence("Ctrl+Shift+O"));
    connect(loadProf, &QAction::triggered, w, [w] {
        const QString f = QFileDialog::getOpenFileName(w, "Load settings profile", QString(), "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            w->loadProfile(f);
        } catch (const std::exception& e) {
            QMessageBox::warning(w, "Load settings profile", QString::fromStdString(cloq::error_message(e)));
        }
    });
    QAction* saveProf = file->addAction("Sa&ve settings profile…");
    saveProf->setShortcut(QKeySequence::Save);
    connect(saveProf, &QAction::triggered, w, [w] {
        const QString f = QFileDialog::getSaveFileName(w, "Save settings profile", "profile.json", "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            w->controller()->saveProfile(f);
        } catch (const std::exception& e) {
            QMessageBox::warning(w, "Save settings profile", QString::fromStdString(cloq::error_message(e)));
        }
    });
    QAction* exp = file->addAction("&Export…");
    exp->setShortcut(QKeySequence("Ctrl+E"));
    exp->setToolTip("Write the adapter, quantized base, profile, report, chart images and a zip bundle");
    connect(exp, &QAction::triggered, w, &MainWindow::showExportDialog);
    QAction* img = file->addAction("Save chart &image…");
    img->setShortcut(QKeySequence("Ctrl+Shift+S"));
    connect(img, &QAction::triggered, w, &MainWindow::saveChartImage);
    file->addSeparator();
    QAction* quit = file->addAction("&Quit");
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, w, &QWidget::close);

    QMenu* view = w->menuBar()->addMenu("&View");
    const QStringList names = tab_names();
    for (int i = 0; i < names.size(); ++i) {
        QAction* a = view->addAction(QString("Show %1").arg(w->tabs()->tabText(i).remove('&')));
        a->setShortcut(QKeySequence(QString("Ctrl+%1").arg(i + 1)));
        connect(a, &QAction::triggered, w, [w, i] {
            w->showWorkspace();
            w->tabs()->setCurrentIndex(i);
        });
    }
    view->addSeparator();
    QAction* focusLayers = view->addAction("Focus the &layer list");
    focusLayers->setShortcut(QKeySequence("Ctrl+L"));
    connect(focusLayers, &QAction::triggered, w, [w] { w->layerTree()->setFocus(); });
    QAction* focusFilter = view->addAction("&Filter layers");
    focusFilter->setShortcut(QKeySequence::Find);
    connect(focusFilter, &QAction::triggered, w, [w] {
        w->layerFilter()->setFocus();
        w->layerFilter()->selectAll();
    });
    QAction* focusRank = view->addAction("Focus the &rank");
    focusRank->setShortcut(QKeySequence("Ctrl+R"));
    connect(focusRank, &QAction::triggered, w, [w] { w->settingsPanel()->rankSlider()->setFocus(); });
    view->addSeparator();
    QMenu* theme = view->addMenu("&Theme");
    auto* group = new QActionGroup(w);
    for (const QString& t : {QStringLiteral("light"), QStringLiteral("dark")}) {
        QAction* a = theme->addAction(t == "light" ? "&Light" : "&Dark");
        a->setCheckable(true);
        a->setChecked(to_string(current_theme()) == t);
        group->addAction(a);
        connect(a, &QAction::triggered, w, [w, t] { w->setTheme(t); });
    }

    QMenu* analysis = w->menuBar()->addMenu("&Analysis");
    QAction* all = analysis->addAction("&Analyze all layers");
    all->setShortcut(QKeySequence("Ctrl+Shift+A"));
    connect(all, &QAction::triggered, w, &MainWindow::analyzeAll);
    // On: every settings change recomputes the rows it made stale in the background. Off: they stay greyed
    // until "Analyze all layers" (for a slow machine on a big model).
    QAction* fill = analysis->addAction("&Keep every layer current");
    fill->setCheckable(true);
    fill->setChecked(w->controller()->autoAnalysis());
    fill->setToolTip("Recompute stale explorer rows in the background after every settings change");
    connect(fill, &QAction::toggled, w->controller(), &SessionController::setAutoAnalysis);
    QAction* ppl = analysis->addAction("Compute &perplexity");
    ppl->setShortcut(QKeySequence("Ctrl+Shift+P"));
    connect(ppl, &QAction::triggered, w, &MainWindow::computePerplexity);
    QAction* recompute = analysis->addAction("&Recompute this layer");
    recompute->setShortcut(QKeySequence::Refresh);
    connect(recompute, &QAction::triggered, w, &MainWindow::recomputeCurrentLayer);
    QAction* cancel = analysis->addAction("&Cancel running jobs");
    cancel->setShortcut(QKeySequence(Qt::Key_Escape));
    connect(cancel, &QAction::triggered, w, &MainWindow::cancelJobs);

    QMenu* help = w->menuBar()->addMenu("&Help");
    QAction* about = help->addAction("&About CLoQ Studio");
    connect(about, &QAction::triggered, w, [w] { AboutDialog(w).exec(); });
    QAction* aboutQt = help->addAction("About &Qt");
    connect(aboutQt, &QAction::triggered, qApp, &QApplication::aboutQt);
}

}  // namespace cloq::ui
