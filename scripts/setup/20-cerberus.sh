#!/usr/bin/env bash
# Python Cerberus 1.3.8: the reference implementation the sealroom-criteria differential tests
# compare against (crates/sealroom-criteria/tests/differential.rs). Idempotent.
set -euo pipefail
want="1.3.8"
have=$(python3 -c 'import cerberus; print(cerberus.__version__)' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  python3 -m pip install -q "cerberus==$want"
fi
python3 -c "import cerberus, sys; v = cerberus.__version__; sys.exit(0 if v == '$want' else 'cerberus ' + v + ' installed, want $want')"
