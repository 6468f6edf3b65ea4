#!/usr/bin/env bash
# SoftHSM2 for the sealroom-broker PKCS#11 tests: install (apt) if missing, keep a private token
# directory and config under target/softhsm, initialise the token `sealroom-test` with known test
# PINs, and append the exports the tests read to target/test-env.sh. Safe to run again: each step
# checks first. The PINs below are test values for a throwaway software token, nothing else.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
module=/usr/lib/softhsm/libsofthsm2.so
label=sealroom-test
pin=1234-sealroom-test
so_pin=5678-sealroom-test-so
dir="$root/target/softhsm"
conf="$dir/softhsm2.conf"

if [ ! -e "$module" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "softhsm: installing softhsm2 from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi
if [ ! -e "$module" ]; then
  echo "softhsm: $module not found after installing softhsm2" >&2
  exit 1
fi

mkdir -p "$dir/tokens"
chmod 0700 "$dir" "$dir/tokens"
if [ ! -s "$conf" ]; then
  cat > "$conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
export SOFTHSM2_CONF="$conf"

if ! softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]*$label[[:space:]]*\$"; then
  echo "softhsm: initialising token $label in $dir/tokens"
  softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin "$so_pin" >/dev/null
fi

mkdir -p "$root/target"
envfile="$root/target/test-env.sh"
touch "$envfile"
grep -v -E '^export (SOFTHSM2_CONF|SEALROOM_TEST_PKCS11_MODULE|SEALROOM_TEST_PKCS11_TOKEN|SEALROOM_TEST_PKCS11_PIN)=' \
  "$envfile" > "$envfile.new" || true
{
  echo "export SOFTHSM2_CONF=$conf"
  echo "export SEALROOM_TEST_PKCS11_MODULE=$module"
  echo "export SEALROOM_TEST_PKCS11_TOKEN=$label"
  echo "export SEALROOM_TEST_PKCS11_PIN=$pin"
} >> "$envfile.new"
mv "$envfile.new" "$envfile"
echo "softhsm: token $label ready (see target/test-env.sh)"
