#!/usr/bin/env bash
# Base tools: apt index, gpg, openssl, Python test libraries, cargo-nextest, nightly for fuzzing.
set -euo pipefail
need_apt=()
for pkg in gnupg openssl python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q 'cryptography>=42'
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
