#!/usr/bin/env bash
# Install the build/test dependencies of ctr_dist on Debian (run as root).
#
# PG_MAJOR (default 15, Debian 12's) picks the PostgreSQL packages; the
# clang that builds the fuzzers is the suite's default one (clang and
# libclang-rt-dev follow it: 14 on bookworm, 19 on trixie, 21 on sid).
# Only missing packages are installed, and `apt-get update` runs only if
# something is missing.  Prints one line saying what was installed.
#
# Optional packages are installed when the archive has them: pg_cron does
# not exist for every major (not for 19 in experimental); the test that
# needs it skips its pg_cron part then.
#
# CTR_DIST_EXTRA_PKGS="pkg ..."  (optional, space-separated) adds packages to
# the list -- handy for testing the missing-package path with a fake name,
# e.g. CTR_DIST_EXTRA_PKGS=no-such-pkg test/install-deps.sh
set -euo pipefail

major=${PG_MAJOR:-15}
pkgs=(postgresql-$major postgresql-server-dev-$major
      libcurl4-openssl-dev libcjson-dev libipc-run-perl
      python3 make gcc libc6-dev pkg-config curl clang libclang-rt-dev)
optional=(postgresql-$major-cron)
read -r -a extra <<< "${CTR_DIST_EXTRA_PKGS:-}"
pkgs+=("${extra[@]}")

# (no grep -q in a pipe: under pipefail its early exit fails the pipe)
installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *'install ok installed'* ]]
}

# does the archive, as apt knows it now, have a version of it?
available() {
    [[ $(apt-cache policy "$1" 2>/dev/null) =~ Candidate:\ [^\(] ]]
}

missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done
opt_missing=()
for p in "${optional[@]}"; do
    installed "$p" || opt_missing+=("$p")
done

# an optional package the lists do not have is not worth an apt-get update
want_opt=()
for p in "${opt_missing[@]}"; do
    available "$p" && want_opt+=("$p")
done

if [ "${#missing[@]}" -eq 0 ] && [ "${#want_opt[@]}" -eq 0 ]; then
    echo "install-deps: nothing missing for PostgreSQL $major, all ${#pkgs[@]} packages already installed" \
        "${opt_missing[*]:+(not in the archive: ${opt_missing[*]})}"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: must run as root to install missing packages: ${missing[*]} ${want_opt[*]}" >&2
    exit 1
fi

# Debian's postgresql-common creates and starts a "NN main" cluster on port
# 5432 when postgresql-NN is installed.  Remember whether it existed before.
had_main=no
[ -d "/etc/postgresql/$major/main" ] && had_main=yes

apt-get update -q
want_opt=()
for p in "${opt_missing[@]}"; do
    available "$p" && want_opt+=("$p")
done
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" "${want_opt[@]}"

# Stop (never drop) a NN/main cluster that our install just created.
if [[ " ${missing[*]} " == *" postgresql-$major "* ]] && [ "$had_main" = no ] \
        && [ -d "/etc/postgresql/$major/main" ]; then
    pg_ctlcluster "$major" main stop 2>/dev/null || true   # fails if not running
fi

echo "install-deps: installed ${missing[*]} ${want_opt[*]}"
