#include "gradient_fit_chart.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QMetaObject>
#include <QPushButton>
#include <QVBoxLayout>
#include <QtCharts/QChart>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QValueAxis>
#include <cmath>
#include <map>

#include "background_job.h"
#include "cloq/finetune/layer_fit.h"
#include "cloq/lowrank/layer_solver.h"
#include "theme.h"

namespace cloq::ui {

GradientFitChart::GradientFitChart(QWidget* parent) : ChartPanel(parent) {
    setObjectName("gradientFitChart");
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* top = new QHBoxLayout();
    button_ = new QPushButton("&Fit by gradient steps", this);
    button_->setObjectName("gradientFitButton");
    button_->setToolTip(
        "From zero init, LoftQ and CLoQ, take 200 gradient steps on the adapter that minimize "
        "‖X(Q+BA−W)ᵀ‖: fine-tuning in miniature (background)");
    state_ = new QLabel(this);
    state_->setWordWrap(true);
    top->addWidget(button_);
    top->addWidget(state_, 1);
    layout->addLayout(top);

    chart_ = new QChart();
    chart_->setTitle("Gradient steps on the adapter from each init: ‖X(Q+BA−W)ᵀ‖_F / ‖XWᵀ‖_F");
    zero_ = new QLineSeries();
    zero_->setName(method_label(InitMethod::Zero));
    loftq_ = new QLineSeries();
    loftq_->setName(method_label(InitMethod::Loftq));
    cloq_ = new QLineSeries();
    cloq_->setName(method_label(InitMethod::Cloq));
    for (QLineSeries* s : {zero_, loftq_, cloq_}) chart_->addSeries(s);
    x_ = new QValueAxis();
    x_->setTitleText("gradient step");
    x_->setLabelFormat("%d");
    y_ = new QLogValueAxis();
    y_->setTitleText("relative error");
    y_->setLabelFormat("%.2g");
    attachAxes(chart_, x_, y_);
    chart_->legend()->setAlignment(Qt::AlignRight);
    layout->addWidget(makeView(chart_, this), 1);
    connect(button_, &QPushButton::clicked, this, &GradientFitChart::fitRequested);
    state_->setText("Press Fit to see how far gradient descent must go to reach CLoQ's starting point.");
    restyle();
}

GradientFitChart::~GradientFitChart() { cancel(); }

QLineSeries* GradientFitChart::series(InitMethod m) const {
    return m == InitMethod::Zero ? zero_ : m == InitMethod::Loftq ? loftq_ : m == InitMethod::Cloq ? cloq_ : nullptr;
}

bool GradientFitChart::isRunning() const { return job_ && job_->isRunning(); }

void GradientFitChart::cancel() {
    if (job_) job_->cancel();
}

void GradientFitChart::markStale() {
    if (zero_->count() == 0 && !isRunning()) return;
    cancel();
    stale_ = true;
    state_->setText("The controls changed since this fit: the curves belong to the earlier layer. Press Fit again.");
    restyle();
}

void GradientFitChart::fit(const SyntheticSpec& spec, const LayerSettings& settings, int steps) {
    cancel();
    auto* job = new BackgroundJob("Gradient fit", this);
    job_ = job;
    stale_ = false;
    for (QLineSeries* s : {zero_, loftq_, cloq_}) s->clear();
    restyle();
    auto curves = std::make_shared<std::map<InitMethod, std::vector<double>>>();
    connect(job, &BackgroundJob::progressed, this, [this](double f, const QString& step) {
        state_->setText(QString("Fitting… %1 % (%2)").arg(f * 100, 0, 'f', 0).arg(step));
    });
    connect(job, &BackgroundJob::succeeded, this, [this, curves, steps] {
        double lo = 1e300, hi = 0;
        for (const auto& [m, rel] : *curves) {
            QList<QPointF> pts;
            for (size_t t = 0; t < rel.size(); ++t) {
                pts.append(QPointF(static_cast<double>(t), std::max(rel[t], 1e-12)));
                lo = std::min(lo, std::max(rel[t], 1e-12));
                hi = std::max(hi, rel[t]);
            }
            series(m)->replace(pts);
        }
        x_->setRange(0, steps);
        if (hi > 0) y_->setRange(std::pow(10, std::floor(std::log10(lo))), std::pow(10, std::ceil(std::log10(hi))));
        const auto& z = curves->at(InitMethod::Zero);
        const auto& c = curves->at(InitMethod::Cloq);
        int reach = -1;
        for (size_t t = 0; t < z.size(); ++t)
            if (z[t] <= c.front()) {
                reach = static_cast<int>(t);
                break;
            }
        state_->setText(reach >= 0 ? QString("Zero init needs %1 gradient steps to reach where CLoQ starts.").arg(reach)
                                   : QString("After %1 gradient steps zero init is at %2, still above CLoQ's start %3.")
                                         .arg(steps)
                                         .arg(format_number(z.back()))
                                         .arg(format_number(c.front())));
        Q_EMIT fitShown();
    });
    connect(job, &BackgroundJob::cancelled, this, [this] {
        if (!stale_) state_->setText("Fit cancelled.");
    });
    connect(job, &BackgroundJob::failed, this, [this](const QString& m) { state_->setText("Fit failed: " + m); });
    connect(job, &BackgroundJob::finished, job, &QObject::deleteLater);
    job->start([spec, settings, steps, curves](const Progress& p) {
        const torch::Tensor W = synthetic_weight(spec);
        const torch::Tensor H = synthetic_hessian(spec);
        LayerSolver solver(W, H, "synthetic");
        LayerSettings s = settings;
        s.rank = std::max(1, s.rank);
        solver.update(s, p.slice(0.0, 0.1));
        solver.ensure(InitMethod::Loftq, p.slice(0.1, 0.2));
        LayerFitOptions o;
        o.steps = steps;
        const InitMethod inits[] = {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq};
        for (int k = 0; k < 3; ++k) {
            const InitMethod m = inits[k];
            (*curves)[m] = fit_layer_adapter(solver.weight(), solver.base(m), H, solver.init(m), s.rank, o,
                                             p.slice(0.2 + 0.8 * k / 3, 0.2 + 0.8 * (k + 1) / 3));
        }
    });
}

void GradientFitChart::restyle() {
    style_chart(chart_);
    for (QAbstractAxis* a : chart_->axes()) style_axis(a);
    for (InitMethod m : {InitMethod::Zero, InitMethod::Loftq, InitMethod::Cloq}) {
        QColor c = method_color(m);
        if (stale_) c = palette().color(QPalette::Disabled, QPalette::Text);  // stale: greyed, not current
        QPen pen(c, m == InitMethod::Zero ? 1.5 : 2.5, m == InitMethod::Zero ? Qt::DashLine : Qt::SolidLine);
        pen.setCosmetic(true);
        series(m)->setPen(pen);
    }
}

}  // namespace cloq::ui
