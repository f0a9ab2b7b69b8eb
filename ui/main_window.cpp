#include "main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDir>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QResizeEvent>
#include <QScrollArea>
#include <QScrollBar>
#include <QSettings>
#include <QShortcut>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>
#include <QTabBar>
#include <QTabWidget>
#include <QTimer>
#include <QTreeView>
#include <QVBoxLayout>
#include <mutex>

#include "about_dialog.h"
#include "background_job.h"
#include "budget_controller.h"
#include "budget_view.h"
#include "cloq/base/error.h"
#include "cloq/settings/profile.h"
#include "discrepancy_chart.h"
#include "export_dialog.h"
#include "finetune_controller.h"
#include "finetune_view.h"
#include "layer_table_model.h"
#include "layer_worker.h"
#include "model_session.h"
#include "playground_view.h"
#include "rank_sweep_chart.h"
#include "session_controller.h"
#include "session_jobs.h"
#include "settings_panel.h"
#include "spectrum_chart.h"
#include "start_page.h"
#include "status_widgets.h"
#include "studio_options.h"
#include "theme.h"
#include "weights_view.h"
#include "window_actions.h"

namespace cloq::ui {
namespace {
QString short_kind(const QString& name) { return name.section('.', -1); }

// Sorting the explorer by discrepancy must compare numbers, not the formatted text.
class LayerSortProxy : public QSortFilterProxyModel {
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

protected:
    bool filterAcceptsRow(int row, const QModelIndex& parent) const override {
        if (filterRegularExpression().pattern().isEmpty()) return true;
        const QModelIndex idx = sourceModel()->index(row, 0, parent);
        const QString name = sourceModel()->data(idx, LayerTableModel::NameRole).toString();
        if (name.isEmpty()) {  // a block row: shown when any of its modules matches
            for (int r = 0; r < sourceModel()->rowCount(idx); ++r)
                if (filterAcceptsRow(r, idx)) return true;
            return false;
        }
        return name.contains(filterRegularExpression());
    }
};
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setObjectName("mainWindow");
    setWindowIcon(QIcon(":/cloq/icons/cloq-studio.svg"));
    setAcceptDrops(true);
    worker_ = new LayerWorker(this);
    controller_ = new SessionController(this);
    buildUi();
    actions_ = new WindowActions(this);
    connectController();
    updateTitle();
    connect(worker_, &LayerWorker::reportReady, this, &MainWindow::onReport);
    connect(worker_, &LayerWorker::failed, this, [this](quint64 gen, const QString& key, const QString& msg) {
        if (gen != currentGeneration_) return;
        layerState_->setText("<span style='color:#e0503c'>" + msg.toHtmlEscaped() + "</span>");
        statusBar()->showMessage(msg, 10000);
        Q_EMIT layerFailed(key, msg);
    });
    connect(worker_, &LayerWorker::cancelled, this, [this](quint64 gen, const QString&) {
        if (gen == currentGeneration_) layerState_->setText("Cancelled — the charts show the last finished result.");
    });
    connect(worker_, &LayerWorker::busyChanged, this, [this](bool busy, const QString& what) {
        if (busy)
            jobs_->showBusy("Solving " + short_kind(what).left(40) + "…", [this] { worker_->cancel(); });
        else
            jobs_->hideBusy();
    });
    resize(1280, 800);
}

MainWindow::~MainWindow() { cancelJobs(); }

const ModelSession* MainWindow::session() const { return controller_->session(); }
std::shared_ptr<const ModelSession> MainWindow::sessionPtr() const { return controller_->sessionPtr(); }
const std::optional<PerplexitySummary>& MainWindow::perplexity() const { return controller_->perplexity(); }
LayerTableModel* MainWindow::layerModel() const { return layers_; }
QStringList MainWindow::recentModels() const { return controller_->recentModels(); }

// The controller's state reaches the views here; everything the window shows of the session derives from it.
void MainWindow::connectController() {
    connect(controller_, &SessionController::sessionOpened, this, &MainWindow::onSessionOpened);
    connect(controller_, &SessionController::openFailed, this, [this](const QString& msg) {
        Q_EMIT modelOpenFailed(msg);
        if (msg != "cancelled" && !isWorkspaceShown() && isVisible() &&
            QGuiApplication::platformName() != "offscreen") {
            // Window-modal but not blocking: the event loop (and a waiting screenshot run or test) goes on.
            auto* box = new QMessageBox(QMessageBox::Warning, "Open model", msg, QMessageBox::Ok, this);
            box->setAttribute(Qt::WA_DeleteOnClose);
            box->open();
        }
    });
    connect(controller_, &SessionController::statusMessage, this,
            [this](const QString& text, int ms) { statusBar()->showMessage(text, ms); });
    connect(controller_, &SessionController::jobStarted, this, [this](BackgroundJob* job) { jobs_->track(job); });
    connect(controller_, &SessionController::jobEnded, this, &MainWindow::jobEnded);
    connect(controller_, &SessionController::settingsChanged, this, [this] {
        overviewDirty_ = true;  // rows went stale: the overview drops them until they are recomputed
        refreshOverview();
        if (currentLayer_.isEmpty()) return;
        if (const LayerRow* row = layers_->layer(currentLayer_))
            settings_->setLayer(currentLayer_, row->kind, row->out, row->in,
                                controller_->effectiveSettings(currentLayer_), controller_->hasOverride(currentLayer_));
    });
    connect(controller_, &SessionController::metricsChanged, this, [this] {
        overviewDirty_ = true;
        refreshOverview();
    });
    connect(controller_, &SessionController::analysisState, overview_, &OverviewView::setAnalysisState);
    connect(controller_, &SessionController::analysisFinished, this, &MainWindow::analysisFinished);
    connect(controller_, &SessionController::perplexityState, overview_, &OverviewView::setPerplexityState);
    connect(controller_, &SessionController::perplexityReady, overview_, &OverviewView::setPerplexity);
    connect(controller_, &SessionController::perplexityCleared, overview_, &OverviewView::clearPerplexity);
    connect(controller_, &SessionController::perplexityFinished, this, &MainWindow::perplexityFinished);
}

// ------------------------------------------------------------------------------------------------ building

void MainWindow::buildUi() {
    stack_ = new QStackedWidget(this);
    setCentralWidget(stack_);
    start_ = new StartPage(stack_);
    stack_->addWidget(start_);
    const DemoLocation demo = find_demo();
    start_->setDemoAvailable(
        !demo.model_dir.isEmpty(),
        demo.model_dir.isEmpty()
            ? "No demo model found (set CLOQ_SHARED_DIR to the folder with models/ and data/)."
            : QString("Demo: %1 with %2")
                  .arg(QFileInfo(demo.model_dir).fileName(), QFileInfo(demo.text_path).fileName()));
    start_->setCalibration(default_calibration(demo.text_path));
    start_->setRecentModels(controller_->recentModels());
    connect(start_, &StartPage::openRequested, this, qOverload<const QString&>(&MainWindow::openModel));
    connect(start_, &StartPage::demoRequested, this, [this] { openDemo(); });
    connect(start_, &StartPage::openDialogRequested, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, "Open model folder", QDir::homePath());
        if (!dir.isEmpty()) openModel(dir);
    });

    workspace_ = new QWidget(stack_);
    auto* wl = new QVBoxLayout(workspace_);
    wl->setContentsMargins(0, 0, 0, 0);
    auto* split = new QSplitter(Qt::Horizontal, workspace_);
    split->setObjectName("workspaceSplitter");
    explorer_ = buildExplorer();
    split->addWidget(explorer_);

    auto* center = new QWidget(split);
    auto* cl = new QVBoxLayout(center);
    cl->setContentsMargins(0, 0, 0, 0);
    layerState_ = new QLabel(center);
    layerState_->setObjectName("layerState");
    layerState_->setTextFormat(Qt::RichText);
    layerState_->setContentsMargins(6, 2, 6, 2);
    layerState_->setWordWrap(true);  // wraps in a narrow window rather than widen the charts' column
    cl->addWidget(layerState_);
    tabs_ = new QTabWidget(center);
    tabs_->setObjectName("viewTabs");
    discrepancy_ = new DiscrepancyChart(tabs_);
    rank_ = new RankSweepChart(tabs_);
    spectrum_ = new SpectrumChart(tabs_);
    weights_ = new WeightsView(tabs_);
    overview_ = new OverviewView(tabs_);
    playground_ = new PlaygroundView(tabs_);
    finetuneController_ = new FinetuneController(controller_, this);
    finetune_ = new FinetuneView(finetuneController_, tabs_);
    budgetController_ = new BudgetController(controller_, this);
    budget_ = new BudgetView(budgetController_, tabs_);
    tabs_->addTab(discrepancy_, "&Discrepancy");
    tabs_->addTab(rank_, "&Rank sweep");
    tabs_->addTab(spectrum_, "S&pectrum");
    tabs_->addTab(weights_, "&Weights");
    tabs_->addTab(overview_, "&Overview");
    tabs_->addTab(playground_, "Pla&yground");
    tabs_->addTab(finetune_, "Fine-&tune");
    tabs_->addTab(budget_, "&Budget");
    tabs_->setTabToolTip(0, "‖X(Q+BA−W)ᵀ‖ of zero init, SVD, LoftQ and CLoQ on this layer (paper Fig. 2) — Ctrl+1");
    tabs_->setTabToolTip(1, "Discrepancy against rank for CLoQ and LoftQ, chosen rank marked — Ctrl+2");
    tabs_->setTabToolTip(2, "Singular values of R·ΔWᵀ (CLoQ) against those of ΔW (LoftQ) — Ctrl+3");
    tabs_->setTabToolTip(3, "Histograms of W, Q and W−Q and the per-group error heat map — Ctrl+4");
    tabs_->setTabToolTip(4, "Every layer along depth, and perplexity of the quantized model — Ctrl+5");
    tabs_->setTabToolTip(5, "A synthetic layer to see why calibration wins — Ctrl+6");
    tabs_->setTabToolTip(6, "LoRA fine-tuning from each init: what it trains into (paper Tables 1–6) — Ctrl+7");
    tabs_->setTabToolTip(7,
                         "Per-layer bits and ranks planned for a size budget, against the uniform settings — Ctrl+8");
    connect(budget_, &BudgetView::message, this, [this](const QString& m) { statusBar()->showMessage(m, 10000); });
    connect(budget_, &BudgetView::exportRequested, this, &MainWindow::showExportDialog);
    connect(finetune_, &FinetuneView::message, this, [this](const QString& m) { statusBar()->showMessage(m, 10000); });
    cl->addWidget(tabs_, 1);
    split->addWidget(center);
    chartFlush_ = new QTimer(this);
    chartFlush_->setInterval(0);
    connect(chartFlush_, &QTimer::timeout, this, [this] {
        if (staleCharts_.empty())
            chartFlush_->stop();
        else
            flushChart(staleCharts_.front());
    });
    connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
        flushChart(tabs_->widget(i));
        // The playground is about its own synthetic layer, the budget about the whole model at once: the layer
        // explorer and the settings make room for them.
        const bool model_view = tabs_->widget(i) != playground_ && tabs_->widget(i) != budget_;
        // Fine-tuning trains the whole model under the settings shown beside it: only the explorer steps aside.
        if (explorer_) explorer_->setVisible(model_view && tabs_->widget(i) != finetune_);
        if (settingsScroll_) settingsScroll_->setVisible(model_view);
        if (layerState_) layerState_->setVisible(model_view);
        fitMinimumWidths();
    });

    auto* scroll = new QScrollArea(split);
    settingsScroll_ = scroll;
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    settings_ = new SettingsPanel(scroll);
    scroll->setWidget(settings_);
    scroll->setMinimumWidth(250);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // the panel wraps to the column's width
    split->addWidget(scroll);
    split->setStretchFactor(0, 0);
    split->setStretchFactor(1, 1);
    split->setStretchFactor(2, 0);
    split->setSizes({360, 700, 290});
    fitMinimumWidths();
    split_ = split;
    connect(split, &QSplitter::splitterMoved, this, [this] { splitAdjusted_ = true; });
    wl->addWidget(split);
    stack_->addWidget(workspace_);

    connect(settings_, &SettingsPanel::settingsChanged, this, &MainWindow::onSettingsEdited);
    connect(settings_, &SettingsPanel::applyToKindRequested, this, &MainWindow::applyToKind);
    connect(settings_, &SettingsPanel::applyToModelRequested, this, &MainWindow::applyToModel);
    connect(settings_, &SettingsPanel::resetLayerRequested, this, &MainWindow::resetLayer);
    connect(overview_, &OverviewView::analyzeRequested, this, &MainWindow::analyzeAll);
    connect(overview_, &OverviewView::perplexityRequested, this, &MainWindow::computePerplexity);
    connect(overview_, &OverviewView::layerClicked, this, [this](const QString& name) {
        selectLayer(name);
        setTab("discrepancy");
    });

    jobs_ = new JobIndicator(this);
    system_ = new SystemStatus(this);
    statusBar()->addPermanentWidget(jobs_);
    statusBar()->addPermanentWidget(system_);
}

QWidget* MainWindow::buildExplorer() {
    auto* box = new QWidget(this);
    auto* l = new QVBoxLayout(box);
    l->setContentsMargins(4, 4, 0, 4);
    auto* title = new QLabel("<b>Layers</b>", box);
    l->addWidget(title);
    auto* row = new QHBoxLayout();
    filter_ = new QLineEdit(box);
    filter_->setPlaceholderText("Filter, e.g. down_proj or layers.3");
    filter_->setClearButtonEnabled(true);
    filter_->setToolTip("Show only modules whose name contains this text (Ctrl+F)");
    flat_ = new QCheckBox("Flat", box);
    flat_->setToolTip("One flat list of every module, to sort all layers by discrepancy and find the worst");
    row->addWidget(filter_, 1);
    row->addWidget(flat_);
    l->addLayout(row);
    layers_ = controller_->layers();
    proxy_ = new LayerSortProxy(this);
    proxy_->setSourceModel(layers_);
    proxy_->setSortRole(LayerTableModel::SortRole);
    proxy_->setRecursiveFilteringEnabled(false);
    proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    tree_ = new QTreeView(box);
    tree_->setObjectName("layerTree");
    tree_->setModel(proxy_);
    tree_->setSortingEnabled(true);
    tree_->sortByColumn(LayerTableModel::Module, Qt::AscendingOrder);
    tree_->setAlternatingRowColors(false);  // the heat colours are the row colours that matter
    tree_->setUniformRowHeights(true);
    tree_->setSelectionMode(QAbstractItemView::SingleSelection);
    tree_->setSelectionBehavior(QAbstractItemView::SelectRows);
    tree_->setToolTip(
        "Decoder blocks and their linear modules. Zero / LoftQ / CLoQ: relative discrepancy "
        "‖X(Q+BA−W)ᵀ‖_F / ‖XWᵀ‖_F, coloured green (small) to red (large). Click a header to sort.");
    tree_->header()->setStretchLastSection(false);
    tree_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    tree_->header()->setSectionResizeMode(LayerTableModel::Module, QHeaderView::Interactive);
    tree_->setColumnWidth(LayerTableModel::Module, 100);
    // The split column is in the settings panel already; keep the explorer compact.
    tree_->setColumnHidden(LayerTableModel::Split, true);
    tree_->setColumnHidden(LayerTableModel::Group, true);
    tree_->setColumnHidden(LayerTableModel::Gain, true);  // the discrepancy chart's caption states the gain
    tree_->setIndentation(12);
    l->addWidget(tree_, 1);
    // The columns size to their contents as numbers arrive: the explorer's minimum follows them.
    connect(tree_->header(), &QHeaderView::sectionResized, this, [this] { fitMinimumWidths(); });

    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& t) {
        proxy_->setFilterRegularExpression(
            QRegularExpression(QRegularExpression::escape(t), QRegularExpression::CaseInsensitiveOption));
        if (!layers_->isFlat()) tree_->expandAll();
    });
    connect(flat_, &QCheckBox::toggled, this, [this](bool on) {
        const QString keep = currentLayer_;
        layers_->setFlat(on);
        if (on)
            tree_->sortByColumn(LayerTableModel::Cloq, Qt::DescendingOrder);
        else
            tree_->sortByColumn(LayerTableModel::Module, Qt::AscendingOrder);
        tree_->expandAll();
        if (!keep.isEmpty()) selectLayer(keep);
    });
    connect(tree_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& cur) {
        const QString name = layers_->layerName(proxy_->mapToSource(cur));
        if (!name.isEmpty() && name != currentLayer_) selectLayer(name);
    });
    return box;
}

// ------------------------------------------------------------------------------------------------ opening

void MainWindow::openModel(const QString& dir) { openModel(dir, start_->calibration()); }

bool MainWindow::openDemo() {
    const DemoLocation demo = find_demo();
    if (demo.model_dir.isEmpty()) {
        const QString msg = "No demo model found: set CLOQ_SHARED_DIR to the folder that holds models/ and data/.";
        statusBar()->showMessage(msg, 10000);
        Q_EMIT modelOpenFailed(msg);
        return false;
    }
    CalibSettings calib = default_calibration(demo.text_path);
    openModel(demo.model_dir, calib);
    return true;
}

void MainWindow::openModel(const QString& dir, const CalibSettings& calib) {
    cancelJobs();
    controller_->openModel(dir, calib);
}

void MainWindow::onSessionOpened() {
    worker_->clearCache();
    overview_->clear();
    tree_->expandAll();
    for (int c = 1; c < LayerTableModel::ColumnCount; ++c) tree_->resizeColumnToContents(c);
    start_->setRecentModels(controller_->recentModels());
    showWorkspace();
    updateTitle();
    statusBar()->showMessage(QString::fromStdString(session()->describe()), 15000);
    if (!session()->layers.empty()) selectLayer(QString::fromStdString(session()->layers.front().name()));
    Q_EMIT modelOpened();
}

void MainWindow::showStartPage() {
    start_->setRecentModels(controller_->recentModels());
    stack_->setCurrentWidget(start_);
}

void MainWindow::showWorkspace() {
    stack_->setCurrentWidget(workspace_);
    // A splitter hidden behind the start page has no geometry yet: size its columns once it is laid out.
    QTimer::singleShot(0, this, [this] { applyDefaultSplit(); });
}

bool MainWindow::isWorkspaceShown() const { return stack_->currentWidget() == workspace_; }

void MainWindow::updateTitle() {
    setWindowTitle(session() ? QString("%1 — CLoQ Studio").arg(QFileInfo(session()->dir).fileName())
                             : QString("CLoQ Studio"));
}

// ------------------------------------------------------------------------------------------------ layers

bool MainWindow::selectLayer(const QString& name) {
    const LayerRow* row = layers_->layer(name);
    if (!row) return false;
    currentLayer_ = name;
    haveFinal_ = false;
    const QModelIndex src = layers_->indexOfLayer(name);
    const QModelIndex idx = proxy_->mapFromSource(src);
    if (idx.isValid() && tree_->currentIndex() != idx) {
        tree_->setCurrentIndex(idx);
        tree_->scrollTo(idx);
    }
    settings_->setLayer(name, row->kind, row->out, row->in, controller_->effectiveSettings(name),
                        controller_->hasOverride(name));
    requestCurrentLayer();
    return true;
}

void MainWindow::requestCurrentLayer() {
    if (!session() || currentLayer_.isEmpty()) return;
    const std::string name = currentLayer_.toStdString();
    try {
        currentGeneration_ = worker_->request(session()->source(name), controller_->effectiveSettings(currentLayer_));
        layerState_->setText(QString("<b>%1</b> — computing…").arg(currentLayer_));
    } catch (const std::exception& e) {
        layerState_->setText(QString("<span style='color:#e0503c'>%1</span>")
                                 .arg(QString::fromStdString(cloq::error_message(e)).toHtmlEscaped()));
    }
}

void MainWindow::onReport(const LayerReport& r) {
    if (r.generation != currentGeneration_) return;  // an answer to an older request: a newer one is coming
    QElapsedTimer redraw;
    redraw.start();
    report_ = r;
    // Qt Charts relayouts on every series/axis change (tens of ms per chart on a busy machine): the visible chart
    // is redrawn now, the hidden ones one per event-loop turn afterwards (or when their tab is shown first).
    staleCharts_ = {discrepancy_, rank_, spectrum_, weights_};
    flushChart(tabs_->currentWidget());
    lastRedrawMs_ = redraw.nsecsElapsed() / 1e6;
    if (!staleCharts_.empty()) chartFlush_->start();
    const QString name = QString::fromStdString(r.name);
    if (!r.loftq_pending) {
        haveFinal_ = true;
        layers_->updateMetrics(name, r.settings, r.zero, r.loftq, r.cloq);
        overviewDirty_ = true;
        refreshOverview();
        layerState_->setText(QString("<b>%1</b> — %2×%3, solved in %4 ms (quantizer %5 ms)")
                                 .arg(name)
                                 .arg(r.out)
                                 .arg(r.in)
                                 .arg(r.total_ms, 0, 'f', 0)
                                 .arg(r.quantize_ms, 0, 'f', 0));
    } else {
        layerState_->setText(QString("<b>%1</b> — CLoQ done in %2 ms; LoftQ and spectral norms updating…")
                                 .arg(name)
                                 .arg(r.total_ms, 0, 'f', 0));
    }
    Q_EMIT layerReportShown(name, !r.loftq_pending);
}

void MainWindow::refreshOverview() {
    if (!overviewDirty_) return;
    overviewDirty_ = false;
    overview_->setRows(layers_->layers());
}

void MainWindow::onSettingsEdited(const LayerSettings& s) {
    if (currentLayer_.isEmpty()) return;
    try {
        validate(s);
    } catch (const std::exception& e) {
        statusBar()->showMessage(QString::fromStdString(cloq::error_message(e)), 8000);
        return;
    }
    controller_->setOverride(currentLayer_, s);
    requestCurrentLayer();
}

void MainWindow::applyToKind() {
    if (!currentLayer_.isEmpty()) controller_->applyToKind(currentLayer_);
}

void MainWindow::applyToModel() {
    if (!currentLayer_.isEmpty()) controller_->applyToModel(currentLayer_);
}

void MainWindow::resetLayer() {
    if (currentLayer_.isEmpty()) return;
    controller_->resetLayer(currentLayer_);
    selectLayer(currentLayer_);
}

bool MainWindow::setTab(const QString& name) {
    const int i = tab_names().indexOf(name.toLower());
    if (i < 0) return false;
    showWorkspace();
    tabs_->setCurrentIndex(i);
    return true;
}

QString MainWindow::tabName() const { return tab_names().value(tabs_->currentIndex()); }

// ------------------------------------------------------------------------------------------------ profiles

void MainWindow::loadProfile(const QString& path) {
    controller_->loadProfile(path);
    if (!currentLayer_.isEmpty()) selectLayer(currentLayer_);
}

// ------------------------------------------------------------------------------------------------ jobs

BackgroundJob* MainWindow::currentJob() const { return controller_->currentJob(); }

bool MainWindow::isBusy() const { return currentJob() != nullptr || worker_->isBusy(); }

void MainWindow::cancelJobs() {
    controller_->cancelJobs();
    if (worker_) worker_->cancel();
    if (playground_) playground_->cancel();
    if (finetuneController_) finetuneController_->cancel();
    if (budgetController_) budgetController_->cancel();
}

void MainWindow::analyzeAll() { controller_->analyzeAll(); }
void MainWindow::computePerplexity() { controller_->computePerplexity(); }

ExportDialog* MainWindow::exportDialog() const { return exportDialog_.data(); }

void MainWindow::showExportDialog() {
    if (!session()) {
        QMessageBox::information(this, "Export", "Open a model first.");
        return;
    }
    if (!exportDialog_) exportDialog_ = new ExportDialog(this);
    exportDialog_->show();
    exportDialog_->raise();
    exportDialog_->activateWindow();
}

void MainWindow::flushChart(QWidget* page) {
    auto it = std::find(staleCharts_.begin(), staleCharts_.end(), page);
    if (it == staleCharts_.end()) return;
    staleCharts_.erase(it);
    if (page == discrepancy_)
        discrepancy_->setReport(report_);
    else if (page == rank_)
        rank_->setReport(report_);
    else if (page == spectrum_)
        spectrum_->setReport(report_);
    else if (page == weights_)
        weights_->setReport(report_);
}

void MainWindow::flushCharts() {
    while (!staleCharts_.empty()) flushChart(staleCharts_.front());
}

// ------------------------------------------------------------------------------------------------ misc

void MainWindow::saveChartImage() {
    const QString f = QFileDialog::getSaveFileName(this, "Save chart image", tabName() + ".png",
                                                   "PNG image (*.png);;SVG image (*.svg)");
    if (f.isEmpty()) return;
    try {
        save_widget_image(tabs_->currentWidget(), f);
        statusBar()->showMessage("Saved " + f, 5000);
    } catch (const std::exception& e) {
        QMessageBox::warning(this, "Save chart image", QString::fromStdString(cloq::error_message(e)));
    }
}

void MainWindow::setTheme(const QString& name) {
    apply_theme(*qApp, parse_theme(name));
    QSettings().setValue("theme", name);
}

void MainWindow::resizeEvent(QResizeEvent* e) {
    QMainWindow::resizeEvent(e);
    applyDefaultSplit();
}

void MainWindow::applyDefaultSplit() {
    if (splitAdjusted_ || !split_) return;
    // Until the user drags a splitter: the explorer wide enough for its discrepancy columns, the settings a
    // fixed column, the charts the rest.
    const int w = width();
    // At 1280 px: the explorer's module, b, r and three discrepancy columns (~350 px), the settings' widest row,
    // and the eight tabs' bar in between without scroll arrows.
    const int settings = w >= 1600 ? 310 : 255;
    const int explorer = std::clamp(w * 28 / 100, explorer_->minimumWidth(), std::max(480, explorer_->minimumWidth()));
    split_->setSizes({explorer, std::max(300, w - explorer - settings), settings});
    // A narrow explorer keeps the three discrepancy columns and drops the shape (the settings panel shows it).
    tree_->setColumnHidden(LayerTableModel::Shape, explorer < 440);
}

void MainWindow::fitMinimumWidths() {
    if (!explorer_ || !tabs_) return;
    // Every column but the shape (dropped when narrow, the settings panel shows it) plus the tree's frame, its
    // vertical scroll bar and the box's margin: the three discrepancy columns are never cut.
    int columns = 0;
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c)
        if (c != LayerTableModel::Shape && !tree_->isColumnHidden(c)) columns += tree_->columnWidth(c);
    const int chrome = 2 * tree_->frameWidth() + tree_->verticalScrollBar()->sizeHint().width() +
                       explorer_->layout()->contentsMargins().left() + explorer_->layout()->contentsMargins().right();
    explorer_->setMinimumWidth(columns + chrome);
    // A tab page hidden behind another should not widen the window: the tabs ask only the current page's minimum
    // (the Playground's 600 px would otherwise push the explorer below its columns at the window's minimum).
    if (QWidget* page = tabs_->currentWidget()) {
        const int frame = 2 * tabs_->style()->pixelMetric(QStyle::PM_DefaultFrameWidth) + 4;
        tabs_->setMinimumWidth(page->minimumSizeHint().width() + frame);
    }
}

void MainWindow::closeEvent(QCloseEvent* e) {
    cancelJobs();
    QMainWindow::closeEvent(e);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
    if (e->mimeData()->hasUrls() && !e->mimeData()->urls().isEmpty() && e->mimeData()->urls().first().isLocalFile())
        e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
    const auto urls = e->mimeData()->urls();
    if (urls.isEmpty() || !urls.first().isLocalFile()) return;
    const QFileInfo fi(urls.first().toLocalFile());
    e->acceptProposedAction();
    openModel(model_path_of(fi.absoluteFilePath()));
}

}  // namespace cloq::ui
