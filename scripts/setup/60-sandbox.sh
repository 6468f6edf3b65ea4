#!/usr/bin/env bash
# The sandbox runners' tools: bubblewrap (the default runner), and Debian's python3-requests for
# the algorithms the tests run inside the sandbox (they use /usr/bin/python3 with `requests`, as
# EscrowAI's examples do).
set -euo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
/usr/bin/python3 -c "import requests" 2>/dev/null || need+=(python3-requests)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
