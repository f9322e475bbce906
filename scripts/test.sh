#!/usr/bin/env bash
# Install Kotally with its development tools into .venv and run the whole check:
# ruff (lint + format), mypy (strict), and the test suite on SQLite and PostgreSQL.
# Extra arguments go to pytest. KOTALLY_TEST_DATABASES=sqlite runs only the SQLite half.
# The browser tests drive Debian's Chromium at /usr/bin/chromium: installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
if [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium for the browser tests (apt-get)" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check src tests bench reliability
.venv/bin/ruff format --check src tests bench reliability
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
