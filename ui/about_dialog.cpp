#include "about_dialog.h"

#include <torch/version.h>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QIcon>
#include <QLabel>
#include <QVBoxLayout>
#include <QtCharts/QChart>

#include "cloq/settings/settings.h"

namespace cloq::ui {

QString AboutDialog::versionsText() {
    QString compiler;
#if defined(__clang__)
    compiler = QString("Clang %1.%2.%3").arg(__clang_major__).arg(__clang_minor__).arg(__clang_patchlevel__);
#elif defined(__GNUC__)
    compiler = QString("GCC %1.%2.%3").arg(__GNUC__).arg(__GNUC_MINOR__).arg(__GNUC_PATCHLEVEL__);
#else
    compiler = "unknown compiler";
#endif
    return QString("CLoQ Studio %1\nQt %2 (built with %3)\nLibTorch %4 (%5)\n%6, C++%7")
        .arg(CLOQ_VERSION, qVersion(), QT_VERSION_STR, TORCH_VERSION,
             cuda_available() ? QString("CUDA available") : QString("CPU"), compiler)
        .arg(__cplusplus / 100 % 100);
}

AboutDialog::AboutDialog(QWidget* parent) : QDialog(parent) {
    setWindowTitle("About CLoQ Studio");
    auto* layout = new QVBoxLayout(this);
    auto* head = new QHBoxLayout();
    auto* icon = new QLabel(this);
    icon->setPixmap(QIcon(":/cloq/icons/cloq-studio.svg").pixmap(80, 80));
    head->addWidget(icon, 0, Qt::AlignTop);
    auto* text = new QLabel(this);
    text->setTextFormat(Qt::RichText);
    text->setWordWrap(true);
    text->setOpenExternalLinks(true);
    text->setTextInteractionFlags(Qt::TextBrowserInteraction);
    text->setText(QString("<h2>CLoQ Studio %1</h2>"
                          "<p>Calibrated LoRA initialization for quantized LLMs: quantize a Llama-family model "
                          "(GPTQ or RTN, 2–8 bit), initialize each LoRA adapter in closed form from calibration "
                          "activations (CLoQ, Deng et al., TMLR 2025), compare with LoftQ, and export PEFT adapters "
                          "and GPTQ checkpoints.</p><pre>%2</pre>")
                      .arg(CLOQ_VERSION, versionsText().toHtmlEscaped()));
    head->addWidget(text, 1);
    layout->addLayout(head);
    auto* box = new QDialogButtonBox(QDialogButtonBox::Ok, this);
    connect(box, &QDialogButtonBox::accepted, this, &QDialog::accept);
    layout->addWidget(box);
    resize(520, 300);
}

}  // namespace cloq::ui
