#!/usr/bin/env bash
# Install everything the test suite needs on a Debian/Ubuntu machine, then run ruff and pytest.
# Used by CI (.ci/run) and by developers: `bash provisioning/test.sh [pytest args]`.
# Exit code: pytest's; ruff findings fail the run too; "no tests collected" (5) is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=provisioning/lib.sh
source provisioning/lib.sh
started=$SECONDS

section "installing system packages"
# mosquitto: the e2e tests start their own Mosquitto processes on free ports; nothing here uses
# (or needs) the system service that the Debian package may start.
# chromium: web-page capture drives the system browser via Playwright (no browser download).
# ffmpeg: external MJPEG client in tests.
ensure_apt_packages python3 python3-venv python3-pip mosquitto chromium ffmpeg
check_python

section "creating virtualenv"
ensure_venv

section "installing python packages"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(dev_fingerprint)" ]; then
  echo "up to date (editable install; pyproject.toml unchanged)"
else
  rm -f "$STAMP"
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  dev_fingerprint > "$STAMP"
fi
"$VENV/bin/python" -m pip check || die "pip check found broken dependencies"

section "ruff"
ruff_rc=0
"$VENV/bin/ruff" check . || ruff_rc=$?

section "mypy (strict)"
# The folders install as glimpser.agent/hub/shared through a setuptools mapping that mypy cannot
# follow in an editable install, so it reads them through a link tree with the installed names.
# The tests import those names too, so they are linked into the same root and checked with them.
root="$VENV/mypy-root"
mkdir -p "$root/glimpser"
for side in agent hub shared; do ln -sfn "$PWD/$side" "$root/glimpser/$side"; done
ln -sfn "$PWD/tests" "$root/tests"
mypy_rc=0
MYPYPATH="$root" "$VENV/bin/mypy" --config-file pyproject.toml \
  -p glimpser.shared -p glimpser.agent -p glimpser.hub -p tests || mypy_rc=$?

section "running tests"
# The whole suite is bounded well under CI's 30 minutes; pytest-timeout (pyproject) bounds
# each test.
pytest_rc=0
fg=()
[ -t 0 ] && fg=(--foreground)  # let Ctrl-C reach pytest in a terminal
timeout "${fg[@]}" --kill-after=30 1500 "$VENV/bin/python" -m pytest "$@" || pytest_rc=$?

section "summary ($((SECONDS - started)) s)"
if [ "$pytest_rc" -eq 5 ]; then
  echo "ERROR: pytest collected NO tests (exit code 5): that is a failure, not a pass" >&2
  exit 5
elif [ "$pytest_rc" -eq 124 ] || [ "$pytest_rc" -eq 137 ]; then
  die "the test suite exceeded 25 minutes and was killed (exit code $pytest_rc)"
elif [ "$pytest_rc" -ne 0 ]; then
  echo "pytest FAILED (exit code $pytest_rc); ruff exit code $ruff_rc, mypy $mypy_rc" >&2
  exit "$pytest_rc"
elif [ "$ruff_rc" -ne 0 ]; then
  die "tests passed but ruff found problems (exit code $ruff_rc)"
elif [ "$mypy_rc" -ne 0 ]; then
  die "tests passed but mypy found type errors (exit code $mypy_rc)"
fi
echo "ruff, mypy and pytest passed"
