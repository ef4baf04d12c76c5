#!/usr/bin/env bash
# test/pgbuild.sh VARIANT: build PostgreSQL 15 from Debian's own source
# package (Debian's patches applied; the version of the installed
# postgresql-15, or the newest one the archive still delivers) with
# assertions and checks, plus Debian's pg-cron source package against it,
# into a cache outside the repository:
#
#   /var/tmp/ctr-dist-pg/VARIANT-DEBIANVERSION   (CTR_DIST_PG_CACHE=DIR moves it)
#
# and print that prefix on the last line of stdout (everything else goes to
# stderr).  A complete build (its stamp file records the flags it was built
# with) is reused; a missing, partial or differently configured one is
# rebuilt.  Variants, all with --enable-cassert --enable-debug (Assert,
# MEMORY_CONTEXT_CHECKING, CLOBBER_FREED_MEMORY) and --enable-tap-tests:
#
#   debug     -Og: the assert-enabled server of make test-debug
#   valgrind  -Og -DUSE_VALGRIND: palloc and pfree tell memcheck about every
#             chunk, so use of freed or unallocated palloc memory is an
#             error (make valgrind)
#   asan      -Og -fsanitize=address,undefined: the whole server, libpq and
#             the client programs (and pg_cron, when built from source)
#             under AddressSanitizer and UBSan (make sanitize; run them with
#             ASAN_OPTIONS=detect_leaks=0)
#
# Runs as root (apt-get); adds a deb-src source for Debian's archive if
# there is none.  Builds with make -j$(nproc).
set -euo pipefail
shopt -s inherit_errexit

variant=${1:?usage: test/pgbuild.sh debug|valgrind|asan}
root=${CTR_DIST_PG_CACHE:-/var/tmp/ctr-dist-pg}
pg_pkg=postgresql-15
cron_pkg=postgresql-15-cron

common=(--enable-cassert --enable-debug --enable-tap-tests
	--without-readline --without-icu --with-system-tzdata=/usr/share/zoneinfo)
case "$variant" in
	debug)
		cflags="-Og -g -fno-omit-frame-pointer"
		cppflags=""
		ldflags="" ;;
	valgrind)
		cflags="-Og -g -fno-omit-frame-pointer"
		cppflags="-DUSE_VALGRIND"
		ldflags="" ;;
	asan)
		cflags="-Og -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
		cppflags=""
		ldflags="-fsanitize=address,undefined"
		# pg_config and the other programs run during the build free
		# nothing before they exit
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} ;;
	*)
		echo "pgbuild: unknown variant \"$variant\" (debug, valgrind or asan)" >&2
		exit 2 ;;
esac

log() { echo "pgbuild: $*" >&2; }
pkg_version() { dpkg-query -W -f="\${$2}" "$1" 2>/dev/null; }
complete() { [ -f "$1/.ctr-dist-complete" ] && [ "$(head -1 "$1/.ctr-dist-complete")" = "$config" ]; }

bash "$(dirname "$0")/install-deps.sh" >&2
config="pgbuild 4: ${common[*]} CFLAGS=$cflags CPPFLAGS=$cppflags LDFLAGS=$ldflags"

# Debian's sources: a deb-src twin of every "Types: deb" stanza of the
# deb822 list (or of every deb line), if no deb-src is configured anywhere
# (grep reads all: with -q it would stop apt-cache with SIGPIPE, and pipefail
# would call that a failure)
if ! apt-cache showsrc "$pg_pkg" 2>/dev/null | grep '^Package:' >/dev/null; then
	if [ "$(id -u)" -ne 0 ]; then
		log "must run as root to add Debian's deb-src sources"
		exit 1
	fi
	if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
				> /etc/apt/sources.list.d/ctr-dist-deb-src.sources
		else
			grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | sed 's/^deb /deb-src /' \
				> /etc/apt/sources.list.d/ctr-dist-deb-src.list
		fi
		log "added Debian's deb-src sources to /etc/apt/sources.list.d/"
	fi
	apt-get update -q >&2
fi

# source versions to try: the installed server's first, then every other
# version the archive lists, newest first
versions() {
	local pkg=$1 installed=$2
	echo "$installed"
	apt-cache showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u \
		| while read -r v; do dpkg --compare-versions "$v" ne "$installed" && echo "$v"; done \
		| sort -rV
}

# apt-get source PKG=VERSION into $srcroot/PKG_VERSION; prints the unpacked
# tree, or fails if the archive cannot deliver it
srcroot=$root/src
fetch_source() {
	local pkg=$1 v=$2 dir=$srcroot/$1_$2
	if [ ! -f "$dir/.ok" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		if ! (cd "$dir" && apt-get source -q "$pkg=$v" > "$dir.log" 2>&1); then
			grep '^E: ' "$dir.log" | head -1 >&2
			rm -rf "$dir" "$dir.log"
			return 1
		fi
		rm -f "$dir.log"
		touch "$dir/.ok"
	fi
	find "$dir" -mindepth 1 -maxdepth 1 -type d | head -1
}

mkdir -p "$root" "$srcroot"
chmod 755 "$root"
pg_installed=$(pkg_version "$pg_pkg" source:Version)
prefix=
pg_src=
for v in $(versions "$pg_pkg" "$pg_installed"); do
	if complete "$root/$variant-$v"; then
		log "reusing $root/$variant-$v"
		echo "$root/$variant-$v"
		exit 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "must run as root to build $root/$variant-$v"
		exit 1
	fi
	if pg_src=$(fetch_source "$pg_pkg" "$v"); then
		pg_version=$v
		prefix=$root/$variant-$v
		break
	fi
	log "the archive does not deliver the source of $pg_pkg $v; trying the next version"
done
if [ -z "$prefix" ]; then
	log "no source package of $pg_pkg could be downloaded"
	exit 1
fi
[ "$pg_version" = "$pg_installed" ] ||
	log "building $pg_pkg $pg_version from source: the installed server is $pg_installed"

# one build of a variant at a time; the others wait and then reuse it
exec 9>"$root/$variant.lock"
flock 9
if complete "$prefix"; then
	log "reusing $prefix (built meanwhile)"
	echo "$prefix"
	exit 0
fi

# what building needs beyond install-deps.sh: bison and flex in case a
# Debian patch touches a grammar
need=()
for p in dpkg-dev bison flex zlib1g-dev perl; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# pg_cron for the TAP tests: Debian's pg-cron source package, built against
# this server; if the archive delivers no version of it, the installed
# Debian binary (same major, so the same ABI; without assertions)
cron_installed=$(pkg_version "$cron_pkg" source:Version)
cron_src=
for v in $(versions pg-cron "$cron_installed"); do
	if cron_src=$(fetch_source pg-cron "$v"); then
		cron_from="pg-cron $v, Debian's source package built against this server"
		break
	fi
	cron_src=
	log "the archive does not deliver the source of pg-cron $v"
done
if [ -z "$cron_src" ]; then
	cron_from="$cron_pkg $(pkg_version "$cron_pkg" Version), Debian's binary package (no pg-cron source could be downloaded)"
	log "pg_cron: using $cron_from"
fi

build=$root/build/$variant-$pg_version
buildlog=$root/build/$variant-$pg_version.log
# a build directory left by a failed attempt with the same flags is built
# on (make is incremental); anything else starts afresh
if [ "$(cat "$build/.ctr-dist-config" 2>/dev/null)" != "$config" ]; then
	rm -rf "$build"
fi
rm -rf "$prefix"
mkdir -p "$build"
echo "$config" > "$build/.ctr-dist-config"
log "building $variant into $prefix (log: $buildlog)"
start=$(date +%s)
failed() {
	log "build failed; the end of $buildlog:"
	tail -n 40 "$buildlog" >&2
	exit 1
}
# make install into a staging directory first, and stop if anything would
# land outside the prefix: that is how a private build could overwrite the
# system server's files
stage=$build/stage
staged_install() {
	rm -rf "$stage"
	make "$@" install DESTDIR="$stage"
	local outside
	outside=$(find "$stage" -path "$stage$prefix" -prune -o \( -type f -o -type l \) -print)
	if [ -n "$outside" ]; then
		echo "pgbuild: make install would write outside $prefix:"
		echo "$outside" | head
		return 1
	fi
	mkdir -p "$prefix"
	cp -a "$stage$prefix/." "$prefix/"
	rm -rf "$stage"
}
build_all() {
	cd "$build"
	# run from make (make test-debug), MAKELEVEL > 0 would make PostgreSQL's
	# build skip its generated headers (errcodes.h): build as a top-level make
	unset MAKELEVEL MAKEFLAGS MFLAGS
	# Debian's 50-per-version-dirs patch makes pkglibdir the system server's
	# /usr/lib/postgresql/15/lib whatever the prefix: put it back under the
	# prefix as upstream has it (once: the source serves every variant)
	local debian_pkglibdir='^override pkglibdir := /usr/lib/postgresql/@PG_MAJORVERSION@/lib$'
	if grep -q "$debian_pkglibdir" "$pg_src/src/Makefile.global.in"; then
		sed -i "s|$debian_pkglibdir|override pkglibdir := \$(pkglibdir)/postgresql|" "$pg_src/src/Makefile.global.in"
	fi
	"$pg_src/configure" --prefix="$prefix" "${common[@]}" \
		CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags"
	make -j"$(nproc)"
	staged_install
	# contrib's file_fdw: 015_order reads personas through a foreign table
	make -C contrib/file_fdw -j"$(nproc)"
	staged_install -C contrib/file_fdw
	local pkglibdir sharedir
	pkglibdir=$("$prefix/bin/pg_config" --pkglibdir)
	sharedir=$("$prefix/bin/pg_config" --sharedir)
	case "$pkglibdir" in "$prefix"/*) ;; *) echo "pgbuild: pkglibdir $pkglibdir is outside $prefix"; return 1 ;; esac
	# PostgreSQL's own suppressions, for make valgrind
	cp "$pg_src/src/tools/valgrind.supp" "$sharedir/"
	if [ -n "$cron_src" ]; then
		# out of its own copy of the source, so that variants never share objects
		cp -a "$cron_src" "$build/pg_cron"
		make -C "$build/pg_cron" -j"$(nproc)" PG_CONFIG="$prefix/bin/pg_config"
		staged_install -C "$build/pg_cron" PG_CONFIG="$prefix/bin/pg_config"
	else
		dpkg -L "$cron_pkg" | grep '/lib/pg_cron\.so$' | xargs -I{} cp {} "$pkglibdir/"
		dpkg -L "$cron_pkg" | grep '/extension/pg_cron[^/]*\(\.sql\|\.control\)$' \
			| xargs -I{} cp {} "$sharedir/extension/"
		test -f "$pkglibdir/pg_cron.so"
	fi
}
# in the background so that errexit holds inside (it does not on the left of ||)
build_all >"$buildlog" 2>&1 &
wait $! || failed
# run as postgres by the tests
chmod -R a+rX "$prefix"
seconds=$(( $(date +%s) - start ))
rm -rf "$build"
size=$(du -sm "$prefix" | cut -f1)
printf '%s\n%s %s from Debian source\npg_cron: %s\nbuilt in %s s on %s cores, %s MB\n' "$config" "$pg_pkg" "$pg_version" \
	"$cron_from" "$seconds" "$(nproc)" "$size" > "$prefix/.ctr-dist-complete"
log "built $variant in $seconds s, $size MB in $prefix"
echo "$prefix"
