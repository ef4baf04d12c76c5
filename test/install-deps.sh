#!/usr/bin/env bash
# Install the build/test dependencies of ctr_dist on Debian 12 (run as root).
#
# Only missing packages are installed, and `apt-get update` runs only if
# something is missing.  Prints one line saying what was installed.
#
# CTR_DIST_EXTRA_PKGS="pkg ..."  (optional, space-separated) adds packages to
# the list -- handy for testing the missing-package path with a fake name,
# e.g. CTR_DIST_EXTRA_PKGS=no-such-pkg test/install-deps.sh
set -euo pipefail

pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-contrib
      libcurl4-openssl-dev libcjson-dev postgresql-15-cron libipc-run-perl
      python3 make gcc pkg-config curl clang libclang-rt-14-dev)
read -r -a extra <<< "${CTR_DIST_EXTRA_PKGS:-}"
pkgs+=("${extra[@]}")

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: nothing missing, all ${#pkgs[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root to install missing packages: ${missing[*]}" >&2
    exit 1
fi

# Debian's postgresql-common creates and starts a "15 main" cluster on port
# 5432 when postgresql-15 is installed.  Remember whether it existed before.
had_main=no
[ -d /etc/postgresql/15/main ] && had_main=yes

apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Stop (never drop) a 15/main cluster that our install just created.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && [ "$had_main" = no ] \
        && [ -d /etc/postgresql/15/main ]; then
    pg_ctlcluster 15 main stop 2>/dev/null || true   # fails if not running
fi

echo "install-deps: installed ${missing[*]}"
