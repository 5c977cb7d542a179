#!/usr/bin/env bash
# Sets up everything mpgpack needs on a fresh Debian 12 machine, idempotently (a second run
# only checks): Debian packages, the Python venv (.venv) with every extra, the npm packages
# of the web target. Run as root or with sudo available for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3.11}

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# --- Debian packages ---------------------------------------------------------------------
# chromium: browser tests and benchmarks; qemu-user-static: the emulated Raspberry Pi check;
# wrk: the HTTP load generator; time: peak RSS of the cold-start benchmarks; nodejs/npm: TF.js in Node and the page's build.
# openssl: the device-side Ed25519 check (the tests run it as a device would).
APT_PACKAGES=(chromium qemu-user-static wrk nodejs npm binutils time openssl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && continue
  # node/npm may come from elsewhere (NodeSource, nvm): a working binary is enough.
  case $pkg in nodejs|npm) command -v "${pkg/nodejs/node}" >/dev/null && continue ;; esac
  missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python ------------------------------------------------------------------------------
stamp=.venv/.mpgpack-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages (first run: a few minutes, TensorFlow is large)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[build,api,edge,s3,dev]"
  echo "$want" > "$stamp"
fi

# --- npm (TF.js for the page and for the Node parity check) ------------------------------
if [ ! -f mpgpack/targets/web/node_modules/.package-lock.json ] || \
   [ mpgpack/targets/web/package-lock.json -nt mpgpack/targets/web/node_modules/.package-lock.json ]; then
  say "installing npm packages in mpgpack/targets/web"
  (cd mpgpack/targets/web && npm ci --no-audit --no-fund --loglevel=error)
fi
bash scripts/setup_airflow.sh   # Airflow in its own .venv-airflow, for dags/ (MPGPACK_SKIP_AIRFLOW=1: skip)
say "ready (.venv/bin/mpgpack --help)"
