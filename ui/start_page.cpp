#include "start_page.h"

#include <QDragEnterEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QIcon>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMimeData>
#include <QPushButton>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

namespace cloq::ui {

QString model_path_of(const QString& path) {
    const QFileInfo fi(path);
    if (fi.isDir() || fi.suffix().compare("gguf", Qt::CaseInsensitive) == 0) return fi.absoluteFilePath();
    return fi.absolutePath();
}

StartPage::StartPage(QWidget* parent) : QWidget(parent) {
    setObjectName("startPage");
    setAcceptDrops(true);
    auto* outer = new QHBoxLayout(this);
    outer->addStretch(1);
    auto* col = new QVBoxLayout();
    outer->addLayout(col, 4);
    outer->addStretch(1);
    col->addStretch(1);

    auto* head = new QHBoxLayout();
    auto* icon = new QLabel(this);
    icon->setPixmap(QIcon(":/cloq/icons/cloq-studio.svg").pixmap(96, 96));
    head->addWidget(icon);
    auto* title = new QLabel(this);
    title->setTextFormat(Qt::RichText);
    title->setWordWrap(true);
    title->setText(
        "<h1>CLoQ Studio</h1><p>Quantize a Llama-family model and initialize its LoRA adapters with "
        "<b>CLoQ</b> — the closed-form, calibrated initialization — and see layer by layer how much "
        "closer it starts to the original model than LoftQ.</p>");
    head->addWidget(title, 1);
    col->addLayout(head);

    auto* buttons = new QHBoxLayout();
    open_ = new QPushButton(QIcon::fromTheme("document-open"), "&Open model folder…", this);
    open_->setToolTip(
        "A Hugging Face folder with config.json, model.safetensors (or shards) and a tokenizer "
        "(Ctrl+O). You can also drop the folder onto this window.");
    demo_ = new QPushButton("Open the &demo model", this);
    demo_->setObjectName("demoButton");
    demo_->setToolTip("The bundled tiny Llama (stories260K) with its TinyStories text: calibrates in seconds.");
    open_->setMinimumHeight(36);
    demo_->setMinimumHeight(36);
    buttons->addWidget(open_);
    buttons->addWidget(demo_);
    col->addLayout(buttons);
    demoNote_ = new QLabel(this);
    demoNote_->setWordWrap(true);
    col->addWidget(demoNote_);

    auto* calib = new QGroupBox("Calibration used when opening", this);
    auto* form = new QFormLayout(calib);
    auto* textRow = new QHBoxLayout();
    text_ = new QLineEdit(calib);
    text_->setPlaceholderText("plain-text file (e.g. WikiText-2)");
    text_->setToolTip("The text whose activations define ‖X(·)ᵀ‖: windows are cut from it at random (seeded).");
    auto* browse = new QToolButton(calib);
    browse->setText("…");
    browse->setToolTip("Choose the calibration text file");
    textRow->addWidget(text_, 1);
    textRow->addWidget(browse);
    // A row holding a layout gets no buddy from addRow, so its mnemonic would show as a literal "&".
    auto* textLabel = new QLabel("&Text:");
    textLabel->setBuddy(text_);
    form->addRow(textLabel, textRow);
    nsamples_ = new QSpinBox(calib);
    nsamples_->setRange(1, 4096);
    nsamples_->setToolTip("Number of calibration windows (paper: 128; demo: 32).");
    form->addRow("&Samples:", nsamples_);
    seqlen_ = new QSpinBox(calib);
    seqlen_->setRange(8, 32768);
    seqlen_->setToolTip("Tokens per window (paper: 2048; capped at the model's context length).");
    form->addRow("&Window length:", seqlen_);
    seed_ = new QSpinBox(calib);
    seed_->setRange(0, 1 << 30);
    seed_->setToolTip("Seed of the random window positions: the same seed gives the same Hessians.");
    form->addRow("S&eed:", seed_);
    col->addWidget(calib);

    auto* recentBox = new QGroupBox("Recent models", this);
    auto* rl = new QVBoxLayout(recentBox);
    recent_ = new QListWidget(recentBox);
    recent_->setObjectName("recentList");
    recent_->setToolTip("Double-click or press Enter to open again");
    recent_->setMinimumHeight(80);
    rl->addWidget(recent_);
    col->addWidget(recentBox, 1);
    auto* hint = new QLabel("Tip: drop a model folder anywhere on this page.", this);
    hint->setEnabled(false);
    col->addWidget(hint);
    col->addStretch(1);

    connect(open_, &QPushButton::clicked, this, &StartPage::openDialogRequested);
    connect(demo_, &QPushButton::clicked, this, &StartPage::demoRequested);
    connect(recent_, &QListWidget::itemActivated, this,
            [this](QListWidgetItem* item) { Q_EMIT openRequested(item->data(Qt::UserRole).toString()); });
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString f =
            QFileDialog::getOpenFileName(this, "Calibration text", text_->text(), "Text files (*.txt);;All files (*)");
        if (!f.isEmpty()) text_->setText(f);
    });
    setCalibration(CalibSettings{});
}

CalibSettings StartPage::calibration() const {
    CalibSettings c;
    c.text_path = text_->text().toStdString();
    c.nsamples = nsamples_->value();
    c.seqlen = seqlen_->value();
    c.seed = static_cast<uint64_t>(seed_->value());
    return c;
}

void StartPage::setCalibration(const CalibSettings& c) {
    text_->setText(QString::fromStdString(c.text_path));
    nsamples_->setValue(c.nsamples);
    seqlen_->setValue(c.seqlen);
    seed_->setValue(static_cast<int>(c.seed));
}

void StartPage::setRecentModels(const QStringList& paths) {
    recent_->clear();
    for (const QString& p : paths) {
        auto* item = new QListWidgetItem(QString("%1 — %2").arg(QFileInfo(p).fileName(), p), recent_);
        item->setData(Qt::UserRole, p);
        item->setToolTip(p);
    }
    if (paths.isEmpty()) {
        auto* item = new QListWidgetItem("(none yet)", recent_);
        item->setFlags(Qt::NoItemFlags);
    }
}

void StartPage::setDemoAvailable(bool available, const QString& description) {
    demo_->setEnabled(available);
    demoNote_->setText(description);
}

void StartPage::dragEnterEvent(QDragEnterEvent* e) {
    if (e->mimeData()->hasUrls() && !e->mimeData()->urls().isEmpty() && e->mimeData()->urls().first().isLocalFile())
        e->acceptProposedAction();
}

void StartPage::dropEvent(QDropEvent* e) {
    const auto urls = e->mimeData()->urls();
    if (urls.isEmpty() || !urls.first().isLocalFile()) return;
    e->acceptProposedAction();
    Q_EMIT openRequested(model_path_of(urls.first().toLocalFile()));
}

}  // namespace cloq::ui
