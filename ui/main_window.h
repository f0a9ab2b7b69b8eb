// The main window: start page, then the workspace (layer explorer | layer view tabs | settings panel) and the status
// bar. It builds and presents: the session's state and its whole-model jobs live in the widget-free
// SessionController, the menus and shortcuts in WindowActions; the window connects them to the views and runs the
// selected layer's solves on its LayerWorker. The methods below forward to the controller where it owns the state.
#pragma once
#include <QHash>
#include <QMainWindow>
#include <QPointer>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "cloq/settings/profile.h"
#include "cloq/settings/settings.h"
#include "layer_report.h"
#include "overview_view.h"

class QLabel;
class QLineEdit;
class QCheckBox;
class QSortFilterProxyModel;
class QStackedWidget;
class QTabWidget;
class QTreeView;
class QMenu;
class QTimer;
class QSplitter;

namespace cloq::ui {

class BackgroundJob;
class DiscrepancyChart;
class ExportDialog;
class JobIndicator;
class LayerTableModel;
class LayerWorker;
class ModelSession;
class OverviewView;
class PlaygroundView;
class FinetuneView;
class FinetuneController;
class BudgetView;
class BudgetController;
class RankSweepChart;
class SessionController;
class WindowActions;
class SettingsPanel;
class SpectrumChart;
class StartPage;
class SystemStatus;
class WeightsView;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // --- opening
    void openModel(const QString& dir, const CalibSettings& calib);  // background; modelOpened / modelOpenFailed
    void openModel(const QString& dir);                              // with the start page's calibration settings
    bool openDemo();                                                 // false when no demo is installed
    void showStartPage();
    void showWorkspace();
    bool isWorkspaceShown() const;

    // --- navigation
    bool selectLayer(const QString& name);
    QString currentLayer() const { return currentLayer_; }
    bool setTab(const QString& name);  // discrepancy|rank|spectrum|weights|overview|playground
    QString tabName() const;

    SessionController* controller() const { return controller_; }

    // --- settings of the selected layer (the state is the controller's: effectiveSettings, profiles, ...)
    void applyToKind();
    void applyToModel();
    void resetLayer();
    void loadProfile(const QString& path);  // throws cloq::Error naming the file

    // --- background work
    void analyzeAll();
    void computePerplexity();
    void cancelJobs();
    bool isBusy() const;      // any job or the layer worker running
    void showExportDialog();  // non-modal; exportDialog() returns it afterwards
    ExportDialog* exportDialog() const;

    // --- state, for tests and the screenshot runner
    const ModelSession* session() const;
    std::shared_ptr<const ModelSession> sessionPtr() const;
    bool hasFinalReport() const { return haveFinal_; }
    const LayerReport& currentReport() const { return report_; }
    double lastRedrawMs() const { return lastRedrawMs_; }  // UI-thread time to put the last report into the charts
    const std::optional<PerplexitySummary>& perplexity() const;
    DiscrepancyChart* discrepancyChart() const { return discrepancy_; }
    RankSweepChart* rankChart() const { return rank_; }
    SpectrumChart* spectrumChart() const { return spectrum_; }
    WeightsView* weightsView() const { return weights_; }
    OverviewView* overviewView() const { return overview_; }
    PlaygroundView* playground() const { return playground_; }
    FinetuneView* finetune() const { return finetune_; }
    FinetuneController* finetuneController() const { return finetuneController_; }
    BudgetView* budget() const { return budget_; }
    BudgetController* budgetController() const { return budgetController_; }
    SettingsPanel* settingsPanel() const { return settings_; }
    LayerTableModel* layerModel() const;
    QTreeView* layerTree() const { return tree_; }
    LayerWorker* layerWorker() const { return worker_; }
    StartPage* startPage() const { return start_; }
    JobIndicator* jobIndicator() const { return jobs_; }
    QTabWidget* tabs() const { return tabs_; }
    QLineEdit* layerFilter() const { return filter_; }
    BackgroundJob* currentJob() const;

Q_SIGNALS:
    void modelOpened();
    void modelOpenFailed(const QString& message);
    void layerReportShown(const QString& layer, bool final);
    void layerFailed(const QString& layer, const QString& message);
    void analysisFinished(bool complete);
    void perplexityFinished(bool ok);
    void jobEnded(const QString& title, const QString& outcome);  // "ok", "cancelled" or the error message

public:
    // For WindowActions (the menus) and the screenshot runner.
    void recomputeCurrentLayer() { requestCurrentLayer(); }
    void saveChartImage();  // asks for a file and saves the visible chart
    void setTheme(const QString& name);
    QStringList recentModels() const;

protected:
    void closeEvent(QCloseEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;
    void dragEnterEvent(QDragEnterEvent* e) override;
    void dropEvent(QDropEvent* e) override;

private:
    void buildUi();
    void connectController();
    QWidget* buildExplorer();
    void requestCurrentLayer();
    void onReport(const LayerReport& r);
    void onSettingsEdited(const LayerSettings& s);
    void onSessionOpened();
    void refreshOverview();
    void flushChart(QWidget* page);  // puts report_ into that chart page if it has not got it yet
    void applyDefaultSplit();
    void fitMinimumWidths();  // the explorer's discrepancy columns and the current page always fit
public:
    void flushCharts();  // every chart page up to date now (export, tests)
    bool chartsPending() const { return !staleCharts_.empty(); }

private:
    void updateTitle();

    StartPage* start_ = nullptr;
    QStackedWidget* stack_ = nullptr;
    QWidget* workspace_ = nullptr;
    LayerTableModel* layers_ = nullptr;
    QSortFilterProxyModel* proxy_ = nullptr;
    QTreeView* tree_ = nullptr;
    QLineEdit* filter_ = nullptr;
    QCheckBox* flat_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    DiscrepancyChart* discrepancy_ = nullptr;
    RankSweepChart* rank_ = nullptr;
    SpectrumChart* spectrum_ = nullptr;
    WeightsView* weights_ = nullptr;
    OverviewView* overview_ = nullptr;
    PlaygroundView* playground_ = nullptr;
    FinetuneView* finetune_ = nullptr;
    FinetuneController* finetuneController_ = nullptr;
    BudgetView* budget_ = nullptr;
    BudgetController* budgetController_ = nullptr;
    SettingsPanel* settings_ = nullptr;
    QLabel* layerState_ = nullptr;
    JobIndicator* jobs_ = nullptr;
    SystemStatus* system_ = nullptr;
    LayerWorker* worker_ = nullptr;
    SessionController* controller_ = nullptr;
    WindowActions* actions_ = nullptr;

    QString currentLayer_;
    uint64_t currentGeneration_ = 0;
    LayerReport report_;
    bool haveFinal_ = false;
    double lastRedrawMs_ = 0;
    std::vector<QWidget*> staleCharts_;  // chart pages that have not got report_ yet
    QTimer* chartFlush_ = nullptr;
    QSplitter* split_ = nullptr;
    bool splitAdjusted_ = false;
    QWidget* explorer_ = nullptr;
    QWidget* settingsScroll_ = nullptr;
    bool overviewDirty_ = false;
    QPointer<ExportDialog> exportDialog_;
};

}  // namespace cloq::ui
