# Sourced by the scripts: create .venv with the first Python >= 3.11 found.
VENV="${BLOKAUTO_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  for py in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      "$py" -m venv "$VENV"
      break
    fi
  done
  [ -x "$VENV/bin/python" ] || { echo "blokauto needs Python 3.11 or newer" >&2; exit 1; }
fi
