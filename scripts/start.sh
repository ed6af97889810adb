#!/usr/bin/env bash
# One command to install and start the hub on the embedded default (SQLite + local files +
# in-process jobs) with the demo city seeded once; later runs reuse ./var.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export HUB_ENV="${HUB_ENV:-demo}"
exec .venv/bin/licence-hub demo "$@"
