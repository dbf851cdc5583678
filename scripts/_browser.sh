# Sourced by scripts/test: Debian's Chromium for the browser tests (Playwright drives it; it never
# downloads a browser of its own). Installed with apt when missing.
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..." >&2
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "warning: /usr/bin/chromium is missing; the browser tests will fail" >&2
fi
