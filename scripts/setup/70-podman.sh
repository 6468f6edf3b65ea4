#!/usr/bin/env bash
# The container sandbox runner's test bed: Podman serving the Docker Engine API on a unix socket,
# and a local base image `localhost/sealroom-python:test` (no registry is reachable here).
#
# 1. apt: podman, runc, uidmap, slirp4netns, fuse-overlayfs, busybox-static (and python3-requests,
#    the base image's Python comes from the host).
# 2. containers.conf: runc as the OCI runtime; nofile/nproc ulimits the machine's hard limits allow
#    (Podman's default of 1048576 open files fails with EPERM where the hard limit is lower).
#    Rootful Podman does not read ~/.config/containers, so the file is also named by
#    CONTAINERS_CONF for every podman started here (the system's own config is left alone).
# 3. `podman system service --time=0` on $XDG_RUNTIME_DIR/podman/podman.sock (rootless) or
#    /run/podman/podman.sock (root), started in the background unless it already answers.
# 4. The base image, made with `podman import` from a tarball built here: the host's python3
#    binary, the shared libraries ldd finds for it and its extension modules, the standard
#    library, the `requests` package with the modules it imports, busybox-static as /bin/*, and a
#    minimal /etc. Rebuilt only when this recipe or the host's Python changes (image label).
#    The `sealroom` launcher is not in the image: the runner binds it and its libraries in.
# 5. `export SEALROOM_PODMAN_SOCKET=...` in target/test-env.sh, which scripts/test sources.
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir=$PWD
IMAGE=localhost/sealroom-python:test
PY=/usr/bin/python3

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
command -v fuse-overlayfs >/dev/null 2>&1 || need+=(fuse-overlayfs)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v curl >/dev/null 2>&1 || need+=(curl)
$PY -c "import requests" 2>/dev/null || need+=(python3-requests)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# --- containers.conf ---------------------------------------------------------------------------
conf_dir="${XDG_CONFIG_HOME:-$HOME/.config}/containers"
conf="$conf_dir/containers.conf"
mkdir -p "$conf_dir"
want_conf=$(cat <<'EOF'
# Written by sealroom scripts/setup/70-podman.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
)
# Without systemd as PID 1 (containers, CI machines) cgroups are managed directly.
if [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ]; then
  want_conf+=$'\ncgroup_manager = "cgroupfs"\nevents_logger = "file"'
fi
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want_conf" ]; then
  printf '%s\n' "$want_conf" > "$conf"
fi
export CONTAINERS_CONF="$conf"

# --- the API service ---------------------------------------------------------------------------
if [ -n "${XDG_RUNTIME_DIR:-}" ]; then
  sock="$XDG_RUNTIME_DIR/podman/podman.sock"
elif [ "$(id -u)" = 0 ]; then
  sock=/run/podman/podman.sock
else
  sock="/run/user/$(id -u)/podman/podman.sock"
fi
ping() { curl -fsS --max-time 5 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; }
if ! ping; then
  mkdir -p "$(dirname "$sock")" target
  rm -f "$sock"
  # From /: conmon drops files (e.g. `oom`) into its working directory.
  # Inherited descriptors other than 0-2 are closed, so that whoever runs this script and waits
  # for its pipes is not kept waiting by the service.
  (
    cd /
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    setsid nohup podman system service --time=0 "unix://$sock" \
      >"$root_dir/target/podman-service.log" 2>&1 </dev/null &
  )
  for _ in $(seq 1 100); do
    ping && break
    sleep 0.2
  done
  ping || { echo "podman system service did not come up; see target/podman-service.log" >&2; exit 1; }
fi

# --- the base image ----------------------------------------------------------------------------
recipe=$( (sha256sum "$0"; $PY -c 'import sys; print(sys.version)'; sha256sum /bin/busybox) | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{ index .Config.Labels "org.sealroom.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$recipe" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  mkdir -p "$rootfs"/{bin,usr/bin,etc,tmp,app,workspace,run,proc,sys,dev}
  chmod 1777 "$rootfs/tmp"
  # Python: the binary, the standard library (no tests, no GUI), requests and what it imports.
  pyver=$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  pybin=$(readlink -f $PY)
  cp -a "$pybin" "$rootfs/usr/bin/"
  ln -sf "$(basename "$pybin")" "$rootfs/usr/bin/python3"
  ln -sf python3 "$rootfs/usr/bin/python"
  stdlib=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  mkdir -p "$rootfs$stdlib"
  tar -C "$stdlib" --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
    --exclude=./ensurepip --exclude=./site-packages --exclude=./dist-packages -cf - . \
    | tar -C "$rootfs$stdlib" -xf -
  # Every module `requests` pulls in from outside the standard library, as whole top-level packages.
  $PY - "$stdlib" >"$work/pkgs" <<'EOF'
import os, sys
stdlib = os.path.realpath(sys.argv[1])
import requests, urllib3, idna, certifi  # noqa: F401
import requests.adapters, requests.packages  # noqa: F401
seen = set()
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if not f:
        continue
    f = os.path.realpath(f)
    if f.startswith(stdlib + os.sep) and "-packages" not in f:
        continue
    for p in sys.path:
        p = os.path.realpath(p) if p else ""
        if p and p != stdlib and f.startswith(p + os.sep):
            top = f[len(p) + 1:].split(os.sep)[0]
            seen.add(os.path.join(p, top))
for s in sorted(seen):
    print(s)
EOF
  while read -r p; do
    mkdir -p "$rootfs$(dirname "$p")"
    cp -a "$p" "$rootfs$(dirname "$p")/"
  done <"$work/pkgs"
  # Shared libraries of the interpreter and of every extension module copied.
  {
    echo "$pybin"
    find "$rootfs" -name '*.so*' -type f | sed "s|^$rootfs||"
  } | while read -r f; do
    [ -f "$f" ] && ldd "$f" 2>/dev/null || true
  done | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}' | sort -u >"$work/libs"
  while read -r lib; do
    cp -L --parents "$lib" "$rootfs/"
  done <"$work/libs"
  # busybox for /bin/sh and friends.
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/workspace:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  fi
  tar -C "$rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
  podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
  podman import \
    --change "LABEL org.sealroom.recipe=$recipe" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'CMD ["/bin/sh"]' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
  # Check it: Python with requests runs, with no network, read-only.
  podman run --rm --network none --read-only "$IMAGE" \
    python3 -c "import requests, ssl, json; print('base image ok', requests.__version__)"
fi

# --- for the tests -----------------------------------------------------------------------------
mkdir -p target
touch target/test-env.sh
grep -v '^export SEALROOM_PODMAN_SOCKET=' target/test-env.sh >target/test-env.sh.new || true
echo "export SEALROOM_PODMAN_SOCKET=$sock" >>target/test-env.sh.new
mv target/test-env.sh.new target/test-env.sh
echo "podman API at $sock, base image $IMAGE"
