#!/usr/bin/env bash
# Builds a local stand-in for python:3.11-slim-bookworm where Docker Hub cannot be reached:
# Debian bookworm from Debian's archive (debootstrap), Debian's CPython 3.11 with its shared libpython
# (libpython3.11.so, headers for the module's build), venv and pip; imported as one layer.
#
#   docker/local-base.sh [TAG]            (default redisai-local/python:3.11-slim-bookworm)
#
# Environment:
#   DEBIAN_MIRROR    Debian archive (default http://deb.debian.org/debian)
#   CA_BUNDLE        a PEM bundle the image should trust (pip, Python's ssl, apt over https), e.g. the
#                    machine's own when a TLS-intercepting proxy stands between it and PyPI; it is baked
#                    into the base and named by PIP_CERT / SSL_CERT_FILE / REQUESTS_CA_BUNDLE
#   FORCE=1          rebuild even when an image of the same recipe is there
#
# The image is labelled with a hash of its recipe (RECIPE below, the mirror, the packages, CA_BUNDLE's
# content): a second run with the same recipe finds it and returns at once.
set -euo pipefail

TAG=${1:-redisai-local/python:3.11-slim-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CA_BUNDLE=${CA_BUNDLE:-}
# What the official slim image has (ca-certificates, netbase, tzdata, python3 with pip and venv) in
# Debian's packages; python3.11-dev for Python.h and the libpython3.11.so link the module builds against
# and dlopens (the official image has both under /usr/local).
PACKAGES=ca-certificates,netbase,tzdata,python3,python3.11,python3.11-venv,python3-venv,libpython3.11,python3.11-dev

log() { printf '[local-base %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Bump RECIPE when a step below changes what goes into the image (a rebuild of the base rebuilds every
# stage of the project's image on top of it).
RECIPE=1
recipe=$( { echo "$RECIPE $MIRROR $SUITE $PACKAGES"; [ -z "$CA_BUNDLE" ] || cat "$CA_BUNDLE"; } | sha256sum | cut -c1-16)
if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f '{{index .Config.Labels "org.redisai.local-base.recipe"}}' "$TAG" 2>/dev/null)" = "$recipe" ]; then
  log "$TAG is there (recipe $recipe)"
  exit 0
fi

command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/tmp/redisai-apt.log 2>&1 \
    || { cat /tmp/redisai-apt.log; exit 1; }
}

root=$(mktemp -d /var/tmp/redisai-local-base.XXXXXX)
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
log "debootstrap $SUITE from $MIRROR into $root"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" > "$root.log" 2>&1 || {
  tail -30 "$root.log"; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# The official image's apt sources (bookworm, its updates and security), then slim it down as the
# official image does: no apt lists or caches, no docs or man pages.
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/* \
       "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
find "$root/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} +

changes=(-c 'ENV LANG=C.UTF-8' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
         -c 'CMD ["python3"]' -c "LABEL org.redisai.local-base.recipe=$recipe")
if [ -n "$CA_BUNDLE" ]; then
  install -D -m 644 "$CA_BUNDLE" "$root/etc/ssl/redisai-local/ca-bundle.pem"
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  for var in PIP_CERT SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; do
    changes+=(-c "ENV $var=/etc/ssl/redisai-local/ca-bundle.pem")
  done
fi

log "importing $TAG"
tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$TAG" >/dev/null
docker run --rm "$TAG" python3 -c "import sys, sysconfig, ssl, venv; assert sys.version_info[:2] == (3, 11); assert sysconfig.get_config_var('Py_ENABLE_SHARED'); print('python', sys.version.split()[0], 'libpython', sysconfig.get_config_var('LDLIBRARY'))"
log "$TAG built ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1e6}'), recipe $recipe)"
