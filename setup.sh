#!/usr/bin/env bash
# Sets up Koda in ./.venv (Python >= 3.11) and installs the system tools it uses when it can.
set -euo pipefail
cd "$(dirname "$0")"

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "koda setup: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# bubblewrap is the sandbox commands run in (without it Koda starts in Safe mode and Auto is
# refused); ripgrep makes Grep and Glob fast (Koda works without it, more slowly).
missing=()
if [ "$(uname -s)" = Linux ]; then
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
fi
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v git >/dev/null 2>&1 || missing+=(git)  # checkpoints for `koda undo`
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || echo "koda setup: could not install ${missing[*]}; install them with your package manager." >&2
  else
    echo "koda setup: tools not found: ${missing[*]} (install them with your package manager;" \
      "without bubblewrap, commands cannot be sandboxed and Auto mode is refused)." >&2
  fi
fi
echo "koda setup: ready — run .venv/bin/koda --help (and .venv/bin/koda doctor to check the sandbox)"
