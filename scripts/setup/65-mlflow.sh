#!/usr/bin/env bash
# The real MLflow tracking client (mlflow-skinny, pinned) in its own virtual environment, for
# crates/sealroom-agent/tests/mlflow.rs: it drives the Enclave API's MLflow subset with
# `mlflow.start_run()` / `log_param` / `log_metric(s)` / `end_run()`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
want="3.17.2"
venv="$PWD/target/mlflow-venv"
py="$venv/bin/python"
have=$("$py" -c 'import importlib.metadata as m; print(m.version("mlflow-skinny"))' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  mkdir -p target
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install -q --disable-pip-version-check "mlflow-skinny==$want" "requests>=2.31"
fi
"$py" -c "import importlib.metadata as m, sys, mlflow, requests; v = m.version('mlflow-skinny'); sys.exit(0 if v == '$want' else 'mlflow-skinny ' + v + ' installed, want $want')"
# Tell the tests where the interpreter is (scripts/test sources this file).
env_file=target/test-env.sh
line="export SEALROOM_MLFLOW_PYTHON=$py"
touch "$env_file"
grep -qxF "$line" "$env_file" || { grep -v '^export SEALROOM_MLFLOW_PYTHON=' "$env_file" > "$env_file.tmp" || true; echo "$line" >> "$env_file.tmp"; mv "$env_file.tmp" "$env_file"; }
