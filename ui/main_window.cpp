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
#include <QScrollArea>
#include <QSettings>
#include <QShortcut>
#include <QSortFilterProxyModel>
#include <QResizeEvent>
#include <QSplitter>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QTreeView>
#include <QVBoxLayout>
#include <mutex>

#include "about_dialog.h"
#include "background_job.h"
#include "cloq/error.h"
#include "discrepancy_chart.h"
#include "export_dialog.h"
#include "layer_table_model.h"
#include "layer_worker.h"
#include "model_session.h"
#include "playground_view.h"
#include "profile_io.h"
#include "rank_sweep_chart.h"
#include "session_jobs.h"
#include "settings_panel.h"
#include "spectrum_chart.h"
#include "start_page.h"
#include "status_widgets.h"
#include "studio_options.h"
#include "theme.h"
#include "weights_view.h"

namespace cloq::ui {
namespace {
constexpr int kMaxRecent = 8;

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
    buildUi();
    buildMenus();
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

MainWindow::~MainWindow() {
    cancelJobs();
}

// ------------------------------------------------------------------------------------------------ building

void MainWindow::buildUi() {
    stack_ = new QStackedWidget(this);
    setCentralWidget(stack_);
    start_ = new StartPage(stack_);
    stack_->addWidget(start_);
    const DemoLocation demo = find_demo();
    start_->setDemoAvailable(!demo.model_dir.isEmpty(),
                             demo.model_dir.isEmpty()
                                 ? "No demo model found (set CLOQ_SHARED_DIR to the folder with models/ and data/)."
                                 : QString("Demo: %1 with %2").arg(QFileInfo(demo.model_dir).fileName(),
                                                                   QFileInfo(demo.text_path).fileName()));
    start_->setCalibration(default_calibration(demo.text_path));
    start_->setRecentModels(recentModels());
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
    cl->addWidget(layerState_);
    tabs_ = new QTabWidget(center);
    tabs_->setObjectName("viewTabs");
    discrepancy_ = new DiscrepancyChart(tabs_);
    rank_ = new RankSweepChart(tabs_);
    spectrum_ = new SpectrumChart(tabs_);
    weights_ = new WeightsView(tabs_);
    overview_ = new OverviewView(tabs_);
    playground_ = new PlaygroundView(tabs_);
    tabs_->addTab(discrepancy_, "&Discrepancy");
    tabs_->addTab(rank_, "&Rank sweep");
    tabs_->addTab(spectrum_, "S&pectrum");
    tabs_->addTab(weights_, "&Weights");
    tabs_->addTab(overview_, "&Overview");
    tabs_->addTab(playground_, "Pla&yground");
    tabs_->setTabToolTip(0, "‖X(Q+BA−W)ᵀ‖ of zero init, SVD, LoftQ and CLoQ on this layer (paper Fig. 2) — Ctrl+1");
    tabs_->setTabToolTip(1, "Discrepancy against rank for CLoQ and LoftQ, chosen rank marked — Ctrl+2");
    tabs_->setTabToolTip(2, "Singular values of R·ΔWᵀ (CLoQ) against those of ΔW (LoftQ) — Ctrl+3");
    tabs_->setTabToolTip(3, "Histograms of W, Q and W−Q and the per-group error heat map — Ctrl+4");
    tabs_->setTabToolTip(4, "Every layer along depth, and perplexity of the quantized model — Ctrl+5");
    tabs_->setTabToolTip(5, "A synthetic layer to see why calibration wins — Ctrl+6");
    cl->addWidget(tabs_, 1);
    split->addWidget(center);
    chartFlush_ = new QTimer(this);
    chartFlush_->setInterval(0);
    connect(chartFlush_, &QTimer::timeout, this, [this] {
        if (staleCharts_.empty()) chartFlush_->stop();
        else flushChart(staleCharts_.front());
    });
    connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
        flushChart(tabs_->widget(i));
        // The playground is about its own synthetic layer: the model's explorer and settings make room for it.
        const bool model_view = tabs_->widget(i) != playground_;
        if (explorer_) explorer_->setVisible(model_view);
        if (settingsScroll_) settingsScroll_->setVisible(model_view);
        if (layerState_) layerState_->setVisible(model_view);
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
    layers_ = new LayerTableModel(this);
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
    tree_->setToolTip("Decoder blocks and their linear modules. Zero / LoftQ / CLoQ: relative discrepancy "
                      "‖X(Q+BA−W)ᵀ‖_F / ‖XWᵀ‖_F, coloured green (small) to red (large). Click a header to sort.");
    tree_->header()->setStretchLastSection(false);
    tree_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    tree_->header()->setSectionResizeMode(LayerTableModel::Module, QHeaderView::Interactive);
    tree_->setColumnWidth(LayerTableModel::Module, 110);
    // The split column is in the settings panel already; keep the explorer compact.
    tree_->setColumnHidden(LayerTableModel::Split, true);
    tree_->setColumnHidden(LayerTableModel::Group, true);
    tree_->setColumnHidden(LayerTableModel::Gain, true);  // the discrepancy chart's caption states the gain
    tree_->setIndentation(12);
    l->addWidget(tree_, 1);
    box->setMinimumWidth(220);

    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& t) {
        proxy_->setFilterRegularExpression(QRegularExpression(QRegularExpression::escape(t),
                                                              QRegularExpression::CaseInsensitiveOption));
        if (!layers_->isFlat()) tree_->expandAll();
    });
    connect(flat_, &QCheckBox::toggled, this, [this](bool on) {
        const QString keep = currentLayer_;
        layers_->setFlat(on);
        if (on) tree_->sortByColumn(LayerTableModel::Cloq, Qt::DescendingOrder);
        else tree_->sortByColumn(LayerTableModel::Module, Qt::AscendingOrder);
        tree_->expandAll();
        if (!keep.isEmpty()) selectLayer(keep);
    });
    connect(tree_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& cur) {
                const QString name = layers_->layerName(proxy_->mapToSource(cur));
                if (!name.isEmpty() && name != currentLayer_) selectLayer(name);
            });
    return box;
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu("&File");
    QAction* open = file->addAction(QIcon::fromTheme("document-open"), "&Open model folder…");
    open->setShortcut(QKeySequence::Open);
    open->setToolTip("Open a Hugging Face model folder");
    connect(open, &QAction::triggered, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, "Open model folder", QDir::homePath());
        if (!dir.isEmpty()) openModel(dir);
    });
    QAction* demo = file->addAction("Open &demo model");
    demo->setShortcut(QKeySequence("Ctrl+D"));
    connect(demo, &QAction::triggered, this, [this] { openDemo(); });
    recentMenu_ = file->addMenu("Open &recent");
    connect(recentMenu_, &QMenu::aboutToShow, this, [this] {
        recentMenu_->clear();
        for (const QString& p : recentModels())
            recentMenu_->addAction(p, this, [this, p] { openModel(p); });
        if (recentMenu_->isEmpty()) recentMenu_->addAction("(none)")->setEnabled(false);
    });
    QAction* startPage = file->addAction("&Start page");
    connect(startPage, &QAction::triggered, this, &MainWindow::showStartPage);
    file->addSeparator();
    QAction* loadProf = file->addAction("&Load settings profile…");
    loadProf->setShortcut(QKeySequence("Ctrl+Shift+O"));
    connect(loadProf, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, "Load settings profile", QString(), "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            loadProfile(f);
        } catch (const std::exception& e) {
            QMessageBox::warning(this, "Load settings profile", e.what());
        }
    });
    QAction* saveProf = file->addAction("Sa&ve settings profile…");
    saveProf->setShortcut(QKeySequence::Save);
    connect(saveProf, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, "Save settings profile", "profile.json",
                                                       "Profiles (*.json)");
        if (f.isEmpty()) return;
        try {
            saveProfile(f);
        } catch (const std::exception& e) {
            QMessageBox::warning(this, "Save settings profile", e.what());
        }
    });
    QAction* exp = file->addAction("&Export…");
    exp->setShortcut(QKeySequence("Ctrl+E"));
    exp->setToolTip("Write the adapter, quantized base, profile, report, chart images and a zip bundle");
    connect(exp, &QAction::triggered, this, &MainWindow::showExportDialog);
    QAction* img = file->addAction("Save chart &image…");
    img->setShortcut(QKeySequence("Ctrl+Shift+S"));
    connect(img, &QAction::triggered, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, "Save chart image", tabName() + ".png",
                                                       "PNG image (*.png);;SVG image (*.svg)");
        if (f.isEmpty()) return;
        try {
            save_widget_image(tabs_->currentWidget(), f);
            statusBar()->showMessage("Saved " + f, 5000);
        } catch (const std::exception& e) {
            QMessageBox::warning(this, "Save chart image", e.what());
        }
    });
    file->addSeparator();
    QAction* quit = file->addAction("&Quit");
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);

    QMenu* view = menuBar()->addMenu("&View");
    const QStringList names = tab_names();
    for (int i = 0; i < names.size(); ++i) {
        QAction* a = view->addAction(QString("Show %1").arg(tabs_->tabText(i).remove('&')));
        a->setShortcut(QKeySequence(QString("Ctrl+%1").arg(i + 1)));
        connect(a, &QAction::triggered, this, [this, i] {
            showWorkspace();
            tabs_->setCurrentIndex(i);
        });
    }
    view->addSeparator();
    QAction* focusLayers = view->addAction("Focus the &layer list");
    focusLayers->setShortcut(QKeySequence("Ctrl+L"));
    connect(focusLayers, &QAction::triggered, this, [this] { tree_->setFocus(); });
    QAction* focusFilter = view->addAction("&Filter layers");
    focusFilter->setShortcut(QKeySequence::Find);
    connect(focusFilter, &QAction::triggered, this, [this] {
        filter_->setFocus();
        filter_->selectAll();
    });
    QAction* focusRank = view->addAction("Focus the &rank");
    focusRank->setShortcut(QKeySequence("Ctrl+R"));
    connect(focusRank, &QAction::triggered, this, [this] { settings_->rankSlider()->setFocus(); });
    view->addSeparator();
    QMenu* theme = view->addMenu("&Theme");
    auto* group = new QActionGroup(this);
    for (const QString& t : {QStringLiteral("light"), QStringLiteral("dark")}) {
        QAction* a = theme->addAction(t == "light" ? "&Light" : "&Dark");
        a->setCheckable(true);
        a->setChecked(to_string(current_theme()) == t);
        group->addAction(a);
        connect(a, &QAction::triggered, this, [this, t] { setTheme(t); });
    }

    QMenu* analysis = menuBar()->addMenu("&Analysis");
    QAction* all = analysis->addAction("&Analyze all layers");
    all->setShortcut(QKeySequence("Ctrl+Shift+A"));
    connect(all, &QAction::triggered, this, &MainWindow::analyzeAll);
    QAction* ppl = analysis->addAction("Compute &perplexity");
    ppl->setShortcut(QKeySequence("Ctrl+Shift+P"));
    connect(ppl, &QAction::triggered, this, &MainWindow::computePerplexity);
    QAction* recompute = analysis->addAction("&Recompute this layer");
    recompute->setShortcut(QKeySequence::Refresh);
    connect(recompute, &QAction::triggered, this, &MainWindow::requestCurrentLayer);
    QAction* cancel = analysis->addAction("&Cancel running jobs");
    cancel->setShortcut(QKeySequence(Qt::Key_Escape));
    connect(cancel, &QAction::triggered, this, &MainWindow::cancelJobs);

    QMenu* help = menuBar()->addMenu("&Help");
    QAction* about = help->addAction("&About CLoQ Studio");
    connect(about, &QAction::triggered, this, [this] { AboutDialog(this).exec(); });
    QAction* aboutQt = help->addAction("About &Qt");
    connect(aboutQt, &QAction::triggered, qApp, &QApplication::aboutQt);
}

// ------------------------------------------------------------------------------------------------ opening

QStringList MainWindow::recentModels() const {
    return QSettings().value("recentModels").toStringList();
}

void MainWindow::addRecent(const QString& dir) {
    QStringList list = recentModels();
    list.removeAll(dir);
    list.prepend(dir);
    while (list.size() > kMaxRecent) list.removeLast();
    QSettings().setValue("recentModels", list);
    start_->setRecentModels(list);
}

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
    auto* job = new BackgroundJob("Opening " + QFileInfo(dir).fileName(), this);
    auto result = std::make_shared<std::shared_ptr<const ModelSession>>();
    connect(job, &BackgroundJob::succeeded, this, [this, result, dir] {
        addRecent(QFileInfo(dir).absoluteFilePath());
        onSessionOpened(*result);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& msg) {
        statusBar()->showMessage("Could not open the model: " + msg, 15000);
        Q_EMIT modelOpenFailed(msg);
        if (!isWorkspaceShown() && isVisible() && QGuiApplication::platformName() != "offscreen") {
            // Window-modal but not blocking: the event loop (and a waiting screenshot run or test) goes on.
            auto* box = new QMessageBox(QMessageBox::Warning, "Open model", msg, QMessageBox::Ok, this);
            box->setAttribute(Qt::WA_DeleteOnClose);
            box->open();
        }
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        statusBar()->showMessage("Opening cancelled.", 5000);
        Q_EMIT modelOpenFailed("cancelled");
    });
    openJob_ = job;
    startJob(job);
    statusBar()->showMessage("Opening and calibrating " + dir + " …");
    job->start([result, dir, calib](const Progress& p) { *result = open_model_session(dir, calib, p); });
}

void MainWindow::onSessionOpened(std::shared_ptr<const ModelSession> session) {
    worker_->clearCache();
    session_ = std::move(session);
    overrides_.clear();
    skipped_.clear();
    defaults_ = LayerSettings{};
    // Rank 64 as in the paper, but never more than a quarter of the hidden size (tiny models: rank 64 would be
    // full rank and every method would look perfect).
    defaults_.rank = static_cast<int>(std::clamp<int64_t>(session_->files.config.hidden_size / 4, 1, 64));
    perplexity_.reset();
    overview_->clear();
    populateExplorer();
    showWorkspace();
    updateTitle();
    statusBar()->showMessage(QString::fromStdString(session_->describe()), 15000);
    if (!session_->layers.empty()) selectLayer(QString::fromStdString(session_->layers.front().name()));
    Q_EMIT modelOpened();
    // Small models are analysed right away so the explorer's colours and the overview fill in by themselves.
    if (session_->files.config.num_parameters() <= 50'000'000) analyzeAll();
}

void MainWindow::populateExplorer() {
    QVector<LayerRow> rows;
    for (const LinearLayer& l : session_->layers) {
        LayerRow r;
        r.name = QString::fromStdString(l.name());
        r.block = l.layer;
        r.kind = QString::fromStdString(l.short_name());
        r.out = l.out;
        r.in = l.in;
        r.settings = effectiveSettings(r.name);
        rows.append(r);
    }
    layers_->setLayers(rows);
    tree_->expandAll();
    for (int c = 1; c < LayerTableModel::ColumnCount; ++c) tree_->resizeColumnToContents(c);
}

void MainWindow::showStartPage() {
    start_->setRecentModels(recentModels());
    stack_->setCurrentWidget(start_);
}

void MainWindow::showWorkspace() {
    stack_->setCurrentWidget(workspace_);
    // A splitter hidden behind the start page has no geometry yet: size its columns once it is laid out.
    QTimer::singleShot(0, this, [this] { applyDefaultSplit(); });
}

bool MainWindow::isWorkspaceShown() const { return stack_->currentWidget() == workspace_; }

void MainWindow::updateTitle() {
    setWindowTitle(session_ ? QString("%1 — CLoQ Studio").arg(QFileInfo(session_->dir).fileName())
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
    settings_->setLayer(name, row->kind, row->out, row->in, effectiveSettings(name), hasOverride(name));
    requestCurrentLayer();
    return true;
}

LayerSettings MainWindow::clampForLayer(LayerSettings s, const QString& layer) const {
    if (const LayerRow* r = layers_->layer(layer)) s.rank = std::min<int>(s.rank, static_cast<int>(std::min(r->out, r->in)));
    return s;
}

LayerSettings MainWindow::effectiveSettings(const QString& layer) const {
    return clampForLayer(overrides_.value(layer, defaults_), layer);
}

void MainWindow::requestCurrentLayer() {
    if (!session_ || currentLayer_.isEmpty()) return;
    const std::string name = currentLayer_.toStdString();
    try {
        currentGeneration_ = worker_->request(session_->source(name), effectiveSettings(currentLayer_));
        layerState_->setText(QString("<b>%1</b> — computing…").arg(currentLayer_));
    } catch (const std::exception& e) {
        layerState_->setText(QString("<span style='color:#e0503c'>%1</span>").arg(QString(e.what()).toHtmlEscaped()));
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
        layers_->updateMetrics(name, r.zero, r.loftq, r.cloq);
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

void MainWindow::setOverride(const QString& layer, const LayerSettings& s) {
    overrides_.insert(layer, s);
    layers_->updateSettings(layer, effectiveSettings(layer), true);
}

void MainWindow::onSettingsEdited(const LayerSettings& s) {
    if (currentLayer_.isEmpty()) return;
    try {
        validate(s);
    } catch (const std::exception& e) {
        statusBar()->showMessage(e.what(), 8000);
        return;
    }
    setOverride(currentLayer_, s);
    requestCurrentLayer();
}

void MainWindow::applyToKind() {
    if (currentLayer_.isEmpty()) return;
    const LayerSettings s = effectiveSettings(currentLayer_);
    const QString kind = short_kind(currentLayer_);
    int n = 0;
    for (const LayerRow& r : layers_->layers())
        if (r.kind == kind) {
            setOverride(r.name, s);
            ++n;
        }
    statusBar()->showMessage(QString("Applied to %1 %2 layers.").arg(n).arg(kind), 5000);
}

void MainWindow::applyToModel() {
    if (currentLayer_.isEmpty()) return;
    defaults_ = effectiveSettings(currentLayer_);
    overrides_.clear();
    for (const LayerRow& r : layers_->layers()) layers_->updateSettings(r.name, effectiveSettings(r.name), false);
    if (const LayerRow* row = layers_->layer(currentLayer_))
        settings_->setLayer(currentLayer_, row->kind, row->out, row->in, effectiveSettings(currentLayer_), false);
    statusBar()->showMessage("These settings are now the model defaults.", 5000);
}

void MainWindow::resetLayer() {
    if (currentLayer_.isEmpty()) return;
    overrides_.remove(currentLayer_);
    layers_->updateSettings(currentLayer_, effectiveSettings(currentLayer_), false);
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
    const SettingsProfile profile = load_profile(path.toStdString());
    std::vector<std::string> names;
    for (const LayerRow& r : layers_->layers()) names.push_back(r.name.toStdString());
    const ResolvedProfile resolved = resolve_profile(profile, names);  // throws before anything changes
    defaults_ = resolved.defaults;
    overrides_.clear();
    for (const auto& [name, s] : resolved.overrides) overrides_.insert(QString::fromStdString(name), s);
    skipped_ = resolved.skipped;
    for (const LayerRow& r : layers_->layers())
        layers_->updateSettings(r.name, effectiveSettings(r.name), hasOverride(r.name));
    if (!currentLayer_.isEmpty()) selectLayer(currentLayer_);
    statusBar()->showMessage("Loaded profile " + path, 5000);
}

SettingsProfile MainWindow::currentProfile() const {
    ResolvedProfile r;
    r.defaults = defaults_;
    for (auto it = overrides_.begin(); it != overrides_.end(); ++it) r.overrides[it.key().toStdString()] = it.value();
    r.skipped = skipped_;
    return make_profile(r);
}

void MainWindow::saveProfile(const QString& path) {
    save_profile(path.toStdString(), currentProfile());
    statusBar()->showMessage("Saved profile " + path, 5000);
}

// ------------------------------------------------------------------------------------------------ jobs

void MainWindow::startJob(BackgroundJob* job) {
    jobs_->track(job);
    connect(job, &BackgroundJob::succeeded, this, [this, job] { Q_EMIT jobEnded(job->title(), "ok"); });
    connect(job, &BackgroundJob::cancelled, this, [this, job] { Q_EMIT jobEnded(job->title(), "cancelled"); });
    connect(job, &BackgroundJob::failed, this, [this, job](const QString& m) { Q_EMIT jobEnded(job->title(), m); });
    connect(job, &BackgroundJob::finished, job, &QObject::deleteLater);
}

BackgroundJob* MainWindow::currentJob() const {
    for (const auto& j : {openJob_, analysisJob_, perplexityJob_, exportJob_})
        if (j && j->isRunning()) return j.data();
    return nullptr;
}

bool MainWindow::isBusy() const { return currentJob() != nullptr || worker_->isBusy(); }

void MainWindow::cancelJobs() {
    for (const auto& j : {openJob_, analysisJob_, perplexityJob_, exportJob_})
        if (j) j->cancel();
    if (worker_) worker_->cancel();
    if (playground_) playground_->cancel();
}

void MainWindow::analyzeAll() {
    if (!session_ || (analysisJob_ && analysisJob_->isRunning())) return;
    auto session = session_;
    // Settings are captured now: later edits apply to the next analysis.
    QHash<QString, LayerSettings> snapshot;
    for (const LayerRow& r : layers_->layers()) snapshot.insert(r.name, effectiveSettings(r.name));
    auto* job = new BackgroundJob("Analyzing all layers", this);
    auto* relay = new LayerRecordRelay(job);
    connect(relay, &LayerRecordRelay::recorded, this, [this](const LayerMetricsRecord& rec) {
        layers_->updateMetrics(QString::fromStdString(rec.name), rec.zero, rec.loftq, rec.cloq);
        overviewDirty_ = true;
        refreshOverview();
        overview_->setAnalysisState(QString("Analyzing… %1 of %2 layers done.")
                                        .arg(overview_->analysedCount())
                                        .arg(layers_->layerCount()),
                                    true);
    });
    connect(job, &BackgroundJob::succeeded, this, [this] {
        overview_->setAnalysisState(QString("All %1 layers analysed.").arg(layers_->layerCount()), false);
        Q_EMIT analysisFinished(true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        overview_->setAnalysisState("Analysis cancelled; finished layers are kept.", false);
        Q_EMIT analysisFinished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        overview_->setAnalysisState("Analysis failed: " + m, false);
        Q_EMIT analysisFinished(false);
    });
    analysisJob_ = job;
    startJob(job);
    overview_->setAnalysisState("Analyzing…", true);
    job->start([session, snapshot, relay = QPointer<LayerRecordRelay>(relay)](const Progress& p) {
        analyze_all_layers(
            *session, [&](const std::string& n) { return snapshot.value(QString::fromStdString(n)); },
            [&](const LayerMetricsRecord& rec) {
                if (relay) relay->post(rec);
            },
            p);
    });
}

void MainWindow::computePerplexity() {
    if (!session_ || (perplexityJob_ && perplexityJob_->isRunning())) return;
    auto session = session_;
    QHash<QString, LayerSettings> snapshot;
    for (const LayerRow& r : layers_->layers()) snapshot.insert(r.name, effectiveSettings(r.name));
    auto* job = new BackgroundJob("Perplexity", this);
    auto result = std::make_shared<PerplexitySummary>();
    connect(job, &BackgroundJob::progressed, this,
            [this](double f, const QString& step) {
                overview_->setPerplexityState(QString("Computing… %1 % (%2)").arg(f * 100, 0, 'f', 0).arg(step), true);
            });
    connect(job, &BackgroundJob::succeeded, this, [this, result] {
        perplexity_ = *result;
        overview_->setPerplexityState(QString(), false);
        overview_->setPerplexity(*result);
        Q_EMIT perplexityFinished(true);
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        overview_->setPerplexityState("Perplexity cancelled.", false);
        Q_EMIT perplexityFinished(false);
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) {
        overview_->setPerplexityState("Perplexity failed: " + m, false);
        Q_EMIT perplexityFinished(false);
    });
    perplexityJob_ = job;
    startJob(job);
    overview_->setPerplexityState("Computing…", true);
    job->start([session, snapshot, result](const Progress& p) {
        *result = compute_perplexities(
            *session, [&](const std::string& n) { return snapshot.value(QString::fromStdString(n)); }, p);
    });
}

ExportDialog* MainWindow::exportDialog() const { return exportDialog_.data(); }

void MainWindow::showExportDialog() {
    if (!session_) {
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
    if (page == discrepancy_) discrepancy_->setReport(report_);
    else if (page == rank_) rank_->setReport(report_);
    else if (page == spectrum_) spectrum_->setReport(report_);
    else if (page == weights_) weights_->setReport(report_);
}

void MainWindow::flushCharts() {
    while (!staleCharts_.empty()) flushChart(staleCharts_.front());
}

// ------------------------------------------------------------------------------------------------ misc

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
    const int settings = w >= 1600 ? 310 : 285;
    const int explorer = std::clamp(w * 33 / 100, 330, 480);
    split_->setSizes({explorer, std::max(300, w - explorer - settings), settings});
    // A narrow explorer keeps the three discrepancy columns and drops the shape (the settings panel shows it).
    tree_->setColumnHidden(LayerTableModel::Shape, explorer < 440);
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
    // A folder, a .gguf file, or any file inside a model folder (config.json, a safetensors shard).
    openModel(fi.isDir() || fi.suffix().compare("gguf", Qt::CaseInsensitive) == 0 ? fi.absoluteFilePath()
                                                                                 : fi.absolutePath());
}

}  // namespace cloq::ui
