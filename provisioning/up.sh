#!/usr/bin/env bash
# Set up Glimpser on a fresh Debian/Ubuntu machine and start the all-in-one `glimpser up`
# (embedded broker, hub and a local demo agent, on 127.0.0.1). Arguments go to `glimpser up`,
# e.g. `bash provisioning/up.sh --http-port 8080`. Quick on re-run: apt and pip are skipped when
# nothing changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=provisioning/lib.sh
source provisioning/lib.sh

section "installing system packages"
ensure_apt_packages python3 python3-venv python3-pip
check_python

section "creating virtualenv"
ensure_venv

section "installing glimpser"
# An editable dev install (from provisioning/test.sh) already has every agent and hub
# dependency and tracks the source, so it is reused as is.
if [ -f "$STAMP" ] && { [ "$(cat "$STAMP")" = "$(dev_fingerprint)" ] \
                        || [ "$(cat "$STAMP")" = "$(run_fingerprint)" ]; }; then
  echo "up to date"
else
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install -q '.[agent,hub]'
  run_fingerprint > "$STAMP"
fi

section "starting glimpser up"
exec "$VENV/bin/glimpser" up "$@"
