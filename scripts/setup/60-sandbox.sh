#!/usr/bin/env bash
# The sandbox runners' tools: bubblewrap (the default runner).
set -euo pipefail
if ! command -v bwrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap
fi
