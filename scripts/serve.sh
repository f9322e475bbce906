#!/usr/bin/env bash
# Install Kotally into .venv, migrate the embedded SQLite database (kotally.db in this folder
# unless KOTALLY_DATABASE_URL says otherwise), create the demo data, print its token and the
# published examples as curl commands, the admin UI's URL and its demo owner's password, and
# serve the API on http://127.0.0.1:8000 (docs: /docs; admin UI: /admin).
# KOTALLY_HOST, KOTALLY_PORT and KOTALLY_WORKERS change where and how it serves.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
HOST=${KOTALLY_HOST:-127.0.0.1}
PORT=${KOTALLY_PORT:-8000}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
.venv/bin/kotally migrate
.venv/bin/kotally demo --base-url "http://$HOST:$PORT"
echo
echo "Serving on http://$HOST:$PORT — interactive docs at http://$HOST:$PORT/docs (Ctrl-C stops)"
echo "Admin UI at http://$HOST:$PORT/admin — sign in as demo@kotally.local with the password above"
exec .venv/bin/kotally serve --host "$HOST" --port "$PORT" --workers "${KOTALLY_WORKERS:-1}"
