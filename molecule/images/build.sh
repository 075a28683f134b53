#!/usr/bin/env bash
# Build the project's container images from nothing (no registry needed):
#   localhost/prosody-stack-base:<suite>   debootstrap --variant=minbase
#   localhost/prosody-stack:<suite>        + Prosody, systemd, sshd (Containerfile)
# for bookworm (Prosody 0.12) and trixie (Prosody 13.0).  Each image carries
# the sha256 of its recipe as a label and is rebuilt only when that changes.
#   molecule/images/build.sh [bookworm|trixie ...]     (default: both)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Our engine settings (runc, lower ulimits) without touching /etc.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../containers.conf}"
label=prosody-stack.recipe

say() { echo "[images] $*"; }
die() { echo "[images] error: $*" >&2; exit 1; }

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)
for suite in "${suites[@]}"; do
  case "$suite" in bookworm|trixie) ;; *) die "unknown suite '$suite' (allowed: bookworm, trixie)";; esac
done
# debootstrap needs root, and the tests use root's podman image store.
[ "$(id -u)" = 0 ] || die "run as root"
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make setup' (apt-get install podman runc debootstrap)"
done

# Scratch space for root filesystems and logs; removed on any exit.  A failed
# debootstrap can leave /proc or /sys mounted inside its target: unmount
# those first, and never let rm cross into another file system.
work=$(mktemp -d /var/tmp/prosody-stack-images.XXXXXX)
cleanup() {
  awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Run a step quietly; on failure show the end of its output (and of
# debootstrap's own log, which would otherwise vanish with the target).
run() { # log, command...
  local log=$1; shift
  "$@" >"$log" 2>&1 && return
  echo "[images] failed: $*" >&2
  tail -n 25 "$log" "$work"/rootfs-*/debootstrap/debootstrap.log >&2 2>/dev/null || true
  exit 1
}

# The Debian mirror this machine already uses, read from its apt sources
# (deb822 "URIs:" first, then one-line "deb [options] URI suite ..." format).
mirror() {
  local uri
  uri=$(awk '/^[ \t]*URIs:/ && !/security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(sed -nE '/security/d; s/^[ \t]*deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+).*/\2/p' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d/}"
  echo "$uri"
}

digest() { sha256sum | cut -d' ' -f1; }
# Remember the image a rebuild replaces, to remove it at the end (podman
# keeps it untagged otherwise; an image still used by a container stays).
superseded=()
remember() { superseded+=("$(podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)"); }
is_current() { # image, digest
  [ "$(podman image inspect --format "{{ index .Labels \"$label\" }}" "$1" 2>/dev/null)" = "$2" ]
}

build_base() { # suite
  local suite=$1 image=localhost/prosody-stack-base:$1 sum uri root start t script=()
  sum=$({ echo "$suite"; cat "$here/build.sh"; } | digest)
  if is_current "$image" "$sum"; then say "$suite base: cached"; return; fi
  # An older debootstrap may not know the newer suite yet: the sid script
  # bootstraps any current Debian release.
  [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
  uri=$(mirror)
  say "$suite base: building (debootstrap from $uri)..."
  remember "$image"
  start=$SECONDS root=$work/rootfs-$suite
  run "$work/debootstrap-$suite.log" debootstrap --variant=minbase \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$suite" "$root" "$uri" "${script[@]}"
  t=$((SECONDS - start))
  say "$suite base: debootstrap done in ${t} s, importing..."
  # apt's package lists are stale by the time the image is used: leave them out.
  tar -C "$root" --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*.bin' -c . | podman import --quiet --change "LABEL $label=$sum" - "$image" >/dev/null
  rm -rf --one-file-system "$root"
  say "$suite base: built in $((SECONDS - start)) s (debootstrap ${t} s)"
}

build_host() { # suite
  local suite=$1 image=localhost/prosody-stack:$1 sum start
  # The base image's id is part of the recipe: a rebuilt base means a rebuild here.
  sum=$({ echo "$suite"; podman image inspect --format '{{.Id}}' "localhost/prosody-stack-base:$suite";
          cat "$here/build.sh" "$here/Containerfile"; } | digest)
  if is_current "$image" "$sum"; then say "$suite prosody: cached"; return; fi
  say "$suite prosody: building (podman build)..."
  remember "$image"
  start=$SECONDS
  run "$work/build-$suite.log" podman build --network host --build-arg "SUITE=$suite" \
    --label "$label=$sum" -t "$image" -f "$here/Containerfile" "$here"
  say "$suite prosody: built in $((SECONDS - start)) s"
}

for suite in "${suites[@]}"; do
  build_base "$suite"
  build_host "$suite"
done
# Newest first, so a replaced image goes before the replaced base it was built on.
for ((i = ${#superseded[@]} - 1; i >= 0; i--)); do
  [ -z "${superseded[i]}" ] || podman rmi "${superseded[i]}" >/dev/null 2>&1 || true
done
