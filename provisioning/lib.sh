# Shared by up.sh and test.sh (sourced, not executed): apt, venv and pip steps that are quick
# to re-run. Callers have `set -euo pipefail` and are in the repository root.

section() { printf '\n== %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root (CI), through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $* (run as root or install sudo)"
  fi
}

# Install the given apt packages that are not installed yet; `apt-get update` once, only if
# something is missing. Quick no-op when everything is there.
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "already installed: $*"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]} and this is not a Debian/Ubuntu system (no apt-get)"
  echo "installing: ${missing[*]}"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q)
  as_root "${apt[@]}" update
  # A package this release does not ship (e.g. `chromium` on Ubuntu, where it is a snap) is
  # reported loudly and left out instead of failing every other install.
  local available=()
  for pkg in "${missing[@]}"; do
    if apt-cache show "$pkg" >/dev/null 2>&1; then
      available+=("$pkg")
    else
      printf 'WARNING: apt has no package %s on this system; tests needing it will fail\n' \
        "$pkg" >&2
    fi
  done
  [ "${#available[@]}" -gt 0 ] || return 0
  # No daemon starts during our installs (mosquitto's postinst would start a system broker on
  # 1883 where there is no systemd): the tests start their own on free ports. policy-rc.d is
  # the Debian mechanism (exit 101 = action forbidden); ours is removed right after.
  local policy=/usr/sbin/policy-rc.d created=0 rc=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && created=1
  fi
  as_root "${apt[@]}" install -y --no-install-recommends "${available[@]}" || rc=$?
  if [ "$created" -eq 1 ]; then as_root rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get install failed (exit code $rc)"
}

# The python3 that creates the venv: 3.11+ (Debian 12 / Ubuntu 23.04 and later).
check_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Glimpser needs Python >= 3.11; $(python3 --version 2>&1) found"
}

VENV=.venv
STAMP=$VENV/.glimpser-installed

# Create .venv unless a working one exists (a venv copied from another machine or left by an
# upgraded python is recreated).
ensure_venv() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
    echo "using existing $VENV ($("$VENV/bin/python" --version))"
    return 0
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  echo "created $VENV ($("$VENV/bin/python" --version))"
}

# Fingerprints deciding whether pip must run again.
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }
dev_fingerprint() { echo "dev $(hash_of pyproject.toml)"; }
run_fingerprint() {
  local files
  files=$(find pyproject.toml README.md agent hub shared -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort)
  # shellcheck disable=SC2086
  echo "run $(hash_of $files)"
}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
