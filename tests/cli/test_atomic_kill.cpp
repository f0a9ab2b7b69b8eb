// Atomic outputs under SIGKILL (issue 8): the real `cloq` binary is started on an export and killed with SIGKILL at
// random moments (uniform over the length of a complete run, measured first). After every kill the output path
// holds either nothing or the complete output (byte-identical to an uninterrupted run: the exports are
// deterministic), never a partial one; a previous output is never damaged; the inputs never change. Only
// temporary siblings ("OUT.tmp-*") and resume checkpoints may be left behind by a killed process, and a rerun
// (with --resume for quantize) still produces the complete output.
// cloq-test-labels: slow
// cloq-test-timeout: 900
#include <QtTest/QtTest>
#include <nlohmann/json.hpp>

#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <csignal>
#include <map>
#include <random>
#include <string>

#include "cli.h"
#include "cloq/io/npy.h"
#include "folder_snapshot.h"
#include "test_support.h"

namespace {

using Snapshot = cloq::test::FolderSnapshot;

// Reports carry wall-clock timings, which differ between two complete runs: compared without them.
Snapshot snapshot(const QString& root) {
    return cloq::test::folder_snapshot(root, {"timings_s", "seconds", "timings"});
}

QString cloq_binary() { return QStringLiteral(CLOQ_BINARY_DIR "/app/cloq"); }

bool has_command(const std::string& name) {
    for (const auto& c : cloq::cli::commands())
        if (c.name == name) return true;
    return false;
}

struct RunResult {
    bool killed = false;
    int exit_code = -1;
    qint64 ms = 0;
    QByteArray output;
};

// Runs cloq with `args`; when kill_after_ms >= 0, sends SIGKILL after that many milliseconds (if still running).
RunResult run_cloq(const QStringList& args, qint64 kill_after_ms = -1) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("OMP_NUM_THREADS", "1");
    p.setProcessEnvironment(env);
    QElapsedTimer timer;
    timer.start();
    p.start(cloq_binary(), args);
    RunResult r;
    if (!p.waitForStarted(10000)) return r;
    if (kill_after_ms >= 0 && !p.waitForFinished(static_cast<int>(kill_after_ms))) {
        ::kill(static_cast<pid_t>(p.processId()), SIGKILL);
        r.killed = true;
    }
    p.waitForFinished(600000);
    r.ms = timer.elapsed();
    r.output = p.readAll();
    r.exit_code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
    return r;
}

// Entries beside `out` in its parent folder other than `out` itself and the allowed leftovers of a killed run.
QStringList unexpected_siblings(const QString& out, const QStringList& allowed_prefixes) {
    QStringList bad;
    const QFileInfo info(out);
    for (const QString& name : info.dir().entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden)) {
        if (name == info.fileName()) continue;
        bool ok = false;
        for (const QString& prefix : allowed_prefixes) ok = ok || name.startsWith(prefix);
        if (!ok) bad << name;
    }
    return bad;
}

}  // namespace

class TestAtomicKill : public QObject {
    Q_OBJECT

    // One scenario: `make_args(out)` builds the command line for output path `out`; kills at random moments
    // over a complete run's duration must leave `out` absent or complete.
    void kill_scenario(const QString& work, const std::function<QStringList(const QString&)>& make_args,
                       const QStringList& leftovers, const QStringList& inputs, int kills, unsigned seed,
                       bool resume_flag) {
        // The reference: one uninterrupted run.
        const QString ref_out = work + "/reference/out";
        QDir().mkpath(work + "/reference");
        const RunResult ref = run_cloq(make_args(ref_out));
        QVERIFY2(ref.exit_code == 0, ref.output.constData());
        const Snapshot complete = snapshot(ref_out);
        QVERIFY(!complete.empty());
        std::map<QString, Snapshot> input_hashes;
        for (const QString& in : inputs) input_hashes[in] = snapshot(in);

        std::mt19937 rng(seed);
        // Up to 10% past the measured duration, so some kills land after the commit too.
        std::uniform_real_distribution<double> when(0.0, 1.1 * static_cast<double>(ref.ms));
        int absent = 0, whole = 0;
        for (int k = 0; k < kills; ++k) {
            const QString dir = work + QString("/kill%1").arg(k);
            QDir().mkpath(dir);
            const QString out = dir + "/out";
            const qint64 at = static_cast<qint64>(when(rng));
            const RunResult r = run_cloq(make_args(out), at);
            const Snapshot after = snapshot(out);
            const QString what =
                QString("kill %1 at %2 ms of ~%3 ms (killed: %4)").arg(k).arg(at).arg(ref.ms).arg(r.killed);
            if (after.empty() && !QFileInfo::exists(out)) {
                ++absent;
            } else {
                QVERIFY2(after == complete, qPrintable(what + ": a partial or different output is visible at " + out));
                ++whole;
            }
            const QStringList extra = unexpected_siblings(out, leftovers);
            QVERIFY2(extra.isEmpty(), qPrintable(what + ": unexpected entries beside the output: " + extra.join(", ")));
            for (const auto& [in, hashes] : input_hashes)
                QVERIFY2(snapshot(in) == hashes, qPrintable(what + ": input changed: " + in));
            if (!r.killed) QVERIFY2(r.exit_code == 0, r.output.constData());
            // A rerun completes the job (continuing from the checkpoints when the command can resume).
            if (!QFileInfo::exists(out)) {
                QStringList again = make_args(out);
                if (resume_flag && QFileInfo::exists(out + ".cloq-resume")) again << "--resume";
                const RunResult rr = run_cloq(again);
                QVERIFY2(rr.exit_code == 0, qPrintable(what + ": rerun failed: " + QString(rr.output)));
                QVERIFY2(snapshot(out) == complete, qPrintable(what + ": the rerun's output differs"));
            }
            // A previous output stays as it was when a new run is pointed at it and killed.
            const Snapshot previous = snapshot(out);
            const RunResult over = run_cloq(make_args(out), static_cast<qint64>(when(rng)));
            QVERIFY2(snapshot(out) == previous, qPrintable(what + ": an existing output was modified"));
            if (!over.killed) QVERIFY2(over.exit_code != 0, "a run over an existing output must refuse");
        }
        qInfo("%d kills: %d left no output, %d left the complete output (run ~%lld ms)", kills, absent, whole,
              static_cast<long long>(ref.ms));
    }

private Q_SLOTS:
    void initTestCase() {
        QVERIFY2(QFileInfo(cloq_binary()).isExecutable(),
                 qPrintable(cloq_binary() + " is not built (build the cloq target)"));
    }

    void layer_output_is_atomic() {
        QVERIFY2(has_command("layer"), "'cloq layer' is missing from the command table");
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        // A layer big enough that a run lasts long enough to be hit at many points (GPTQ + eigh + SVD).
        const int64_t out_f = 512, in_f = 512;
        auto gen = at::detail::createCPUGenerator(7);
        const torch::Tensor W = torch::randn({out_f, in_f}, gen, torch::kFloat32) * 0.02;
        const torch::Tensor X = cloq::test::anisotropic_acts(2048, in_f, 100.0, 8);
        const QString inputs = tmp.filePath("inputs");
        QDir().mkpath(inputs);
        cloq::write_npy((inputs + "/W.npy").toStdString(), W);
        cloq::write_npy((inputs + "/H.npy").toStdString(), X.t().mm(X));
        kill_scenario(
            tmp.path(),
            [&](const QString& out) {
                return QStringList{
                    "layer",   "--weight", inputs + "/W.npy", "--gram", inputs + "/H.npy", "--out", out, "--bits", "2",
                    "--group", "64",       "--rank",          "32",     "--init",          "cloq"};
            },
            {"out.tmp-"}, {inputs}, 12, 20251123u, /*resume_flag=*/false);
    }

    void quantize_output_is_atomic() {
        QVERIFY2(has_command("quantize"), "'cloq quantize' is missing from the command table");
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString model = QString::fromStdString(cloq::test::demo_model_dir());
        const QString text = QString::fromStdString(cloq::test::tinystories_path());
        kill_scenario(
            tmp.path(),
            [&](const QString& out) {
                return QStringList{"quantize", "--model",        model, "--calib", text, "--calib-nsamples",
                                   "8",        "--calib-seqlen", "128", "--out",   out,  "--bits",
                                   "2",        "--group",        "64",  "--rank",  "8",  "--no-compare"};
            },
            {"out.tmp-", "out.cloq-resume"}, {model}, 10, 777u, /*resume_flag=*/true);
    }
};

QTEST_APPLESS_MAIN(TestAtomicKill)
#include "test_atomic_kill.moc"
