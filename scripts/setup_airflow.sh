#!/usr/bin/env bash
# The optional Airflow environment for dags/mpg_retrain.py, idempotently (a second run only
# checks): .venv-airflow with apache-airflow 3 and mpgpack[build,s3] in one venv, pinned by
# constraints.txt + constraints-airflow.txt (the latter explains why Airflow 3.0.6).
# Called by scripts/setup.sh; set MPGPACK_SKIP_AIRFLOW=1 to leave it out (the DAG tests then
# fail, they need it). About 300 MB beside .venv; ~1.5 min when .venv's wheels are cached.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.venv-airflow
AIRFLOW_VERSION=3.0.6

say() { printf '\033[1msetup-airflow:\033[0m %s\n' "$*"; }

if [ "${MPGPACK_SKIP_AIRFLOW:-0}" = 1 ]; then
  say "skipped (MPGPACK_SKIP_AIRFLOW=1)"; exit 0
fi

stamp=$VENV/.mpgpack-installed
want=$(cat pyproject.toml constraints.txt constraints-airflow.txt | sha256sum | cut -c1-16)
if [ ! -x $VENV/bin/python ]; then
  say "creating $VENV with $PY"
  "$PY" -m venv $VENV
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing apache-airflow $AIRFLOW_VERSION and mpgpack[build,s3] into $VENV"
  started=$(date +%s)
  $VENV/bin/python -m pip install -q --upgrade pip
  # constraints.txt without the packages constraints-airflow.txt overrides, then both.
  merged=$(mktemp); trap 'rm -f "$merged"' EXIT
  "$PY" - constraints.txt constraints-airflow.txt > "$merged" <<'PYEOF'
import re, sys
norm = lambda line: re.sub(r"[-_.]+", "-", line.split("==")[0].strip()).lower()
main, airflow = (open(p).read().splitlines() for p in sys.argv[1:3])
overridden = {norm(l) for l in airflow if "==" in l and not l.startswith("#")}
print("\n".join(l for l in main if "==" not in l or norm(l) not in overridden))
PYEOF
  $VENV/bin/python -m pip install -q -c "$merged" -c constraints-airflow.txt \
    "apache-airflow==$AIRFLOW_VERSION" -e ".[build,s3]"
  echo "$want" > "$stamp"
  say "installed in $(( $(date +%s) - started )) s"
fi
say "ready ($VENV/bin/airflow)"
