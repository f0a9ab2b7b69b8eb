#!/usr/bin/env python3
"""Writes the cloq(1) man page from the built program's own --help texts, so the page never drifts from the code.

Usage: make_manpage.py CLOQ_BINARY VERSION OUT.1[.gz]

`cloq --help` lists the commands (lines "  NAME   summary" under "Commands:"); each `cloq NAME --help` is turned into
a section: its usage line, description, and one tagged paragraph per option ("  --name META   help").
The page is written atomically (temporary sibling + rename) so a failed run never leaves a half page behind.
"""
import os
import gzip
import re
import subprocess
import sys
import tempfile

OPTION_LINE = re.compile(r"^  (\S.*?)(?: {2,}(\S.*))?$")


def run_help(binary, args):
    env = dict(os.environ)
    # A sanitizer build runs this too: leak reports from LibTorch's static state are not the man page's business.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    r = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"make_manpage: '{binary} {' '.join(args)}' failed with exit code {r.returncode}:\n"
                 f"{r.stderr.decode(errors='replace')}")
    return r.stdout.decode("utf-8", errors="replace")


def esc(text):
    """Escapes text for groff: backslashes, hyphens (so they copy as ASCII '-'), and control characters at line
    start."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return text


def line(text):
    t = esc(text)
    return "\\&" + t if t.startswith((".", "'")) else t


def parse_commands(top_help):
    commands, in_list = [], False
    for raw in top_help.splitlines():
        if raw.strip() == "Commands:":
            in_list = True
            continue
        if in_list:
            if not raw.strip():
                break
            m = re.match(r"^\s+(\S+)\s+(.*)$", raw)
            if m:
                commands.append((m.group(1), m.group(2)))
    return commands


def command_section(name, summary, text):
    out = [f".SS {esc(name)}", line(summary)]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i]
        i += 1
        if raw.startswith("Usage:"):
            out += [".PP", ".B " + esc(raw[len("Usage:"):].strip())]
        elif not raw.strip():
            continue
        elif raw.endswith(":") and not raw.startswith(" "):
            out += [".PP", f".I {esc(raw[:-1])}"]
        elif raw.startswith("  "):
            m = OPTION_LINE.match(raw)
            left, help_text = (m.group(1).strip(), m.group(2) or "") if m else (raw.strip(), "")
            out += [".TP", "\\fB" + esc(left) + "\\fR", line(help_text) if help_text else ".br"]
        else:
            out += [".PP", line(raw.strip())]
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, version, target = sys.argv[1:]
    top = run_help(binary, ["--help"])
    commands = parse_commands(top)
    intro = []
    for raw in top.split("\n\n")[1:2]:
        intro.append(" ".join(raw.split()))
    page = [
        f'.TH CLOQ 1 "" "cloq {esc(version)}" "CLoQ Studio"',
        ".SH NAME",
        "cloq \\- quantize Llama\\-family models and initialize LoRA adapters with CLoQ",
        ".SH SYNOPSIS",
        ".B cloq",
        ".I COMMAND",
        "[\\fIOPTIONS\\fR]",
        ".br",
        ".B cloq",
        "\\fB\\-\\-help\\fR | \\fB\\-\\-version\\fR",
        ".SH DESCRIPTION",
    ] + [line(p) for p in intro] + [
        ".PP",
        "Every command prints its own options with \\fBcloq\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR; this page is "
        "generated from those texts.",
    ]
    if commands:
        page.append(".SH COMMANDS")
    for name, summary in commands:
        page += command_section(name, summary, run_help(binary, [name, "--help"]))
    page += [
        ".SH EXIT STATUS",
        "0 on success, 1 when a run failed (the message names the file and the problem), 2 for wrong usage, "
        "130 when cancelled with Ctrl\\-C (nothing is written then).",
        ".SH SEE ALSO",
        "\\fBcloq\\-studio\\fR, the desktop application, installed with the same package.",
        "",
    ]
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".cloq.1.", dir=folder)
    try:
        data = "\n".join(page).encode("utf-8")
        if target.endswith(".gz"):
            data = gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: reproducible, as Debian wants
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
