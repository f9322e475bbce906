#!/usr/bin/env bash
# Install Kotally into .venv, create the demo data on the embedded SQLite database
# (kotally.db in this folder unless KOTALLY_DATABASE_URL says otherwise) and run the ledger CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/kotally migrate
.venv/bin/kotally demo
