#!/usr/bin/env bash
# Build the project's container images from nothing (no registry needed):
#   localhost/prosody-stack-base:<suite>   debootstrap --variant=minbase
#   localhost/prosody-stack:<suite>        + Prosody, systemd, sshd (Containerfile)
# for bookworm (Prosody 0.12) and trixie (Prosody 13.0).  Each image carries
# the digest of its recipe as a label and is rebuilt only when that changes.
#   molecule/images/build.sh [bookworm|trixie ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../containers.conf}"
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie)

for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { echo "[images] $tool is missing: run 'make setup'" >&2; exit 1; }
done

# The Debian mirror this machine already uses, read from its apt sources.
mirror() {
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | awk '{print $2}' | head -n1)
  [ -n "$uri" ] || uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -n1)
  [ -n "$uri" ] || { echo "[images] no Debian mirror found in /etc/apt/sources*" >&2; exit 1; }
  echo "$uri"
}

recipe_digest() { # suite, files...
  local suite=$1; shift
  { echo "$suite"; cat "$@"; } | sha256sum | cut -c1-16
}

is_current() { # image, digest
  [ "$(podman image inspect --format '{{ index .Labels "prosody-stack.recipe" }}' "$1" 2>/dev/null)" = "$2" ]
}

build_base() { # suite
  local suite=$1 image="localhost/prosody-stack-base:$1" digest root start
  digest=$(recipe_digest "$suite" "$0")
  if is_current "$image" "$digest"; then echo "[images] $suite base: cached"; return; fi
  echo "[images] $suite base: building (debootstrap)..."
  start=$SECONDS
  root=$(mktemp -d /var/tmp/prosody-stack-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  debootstrap --variant=minbase "$suite" "$root" "$(mirror)" >/dev/null
  tar -C "$root" -c . | podman import --change "LABEL prosody-stack.recipe=$digest" - "$image" >/dev/null
  echo "[images] $suite base: built in $((SECONDS - start)) s"
}

build_host() { # suite
  local suite=$1 image="localhost/prosody-stack:$1" digest start
  digest=$(recipe_digest "$suite" "$0" "$here/Containerfile")
  if is_current "$image" "$digest"; then echo "[images] $suite prosody: cached"; return; fi
  echo "[images] $suite prosody: building..."
  start=$SECONDS
  podman build --quiet --network host --build-arg "SUITE=$suite" --label "prosody-stack.recipe=$digest" \
    -t "$image" -f "$here/Containerfile" "$here" >/dev/null
  echo "[images] $suite prosody: built in $((SECONDS - start)) s"
}

for suite in "${suites[@]}"; do
  case "$suite" in bookworm|trixie) ;; *) echo "[images] unknown suite '$suite' (allowed: bookworm, trixie)" >&2; exit 2;; esac
  build_base "$suite"
  build_host "$suite"
done
