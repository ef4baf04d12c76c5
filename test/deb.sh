#!/usr/bin/env bash
# make deb PG_MAJOR=NN: build postgresql-NN-ctr-dist from debian/ in the
# chroot of PostgreSQL NN (test/chroot.sh; pg_buildext runs the regression
# tests during the build), then install the .deb into a fresh copy of the
# suite's clean base chroot and check it there: CREATE EXTENSION, the mock
# answers ctr_predict, and the autopkgtest (debian/tests) passes.  Run as
# root.  The package is left in $CTR_CHROOTS/debs/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
. test/chroot.sh

major=${1:-${PG_MAJOR:-15}}
suite=$(chroot_suite "$major") || { echo "deb: no Debian suite has PostgreSQL $major" >&2; exit 1; }
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" ctr_dist.control)
out=$CTR_CHROOTS/debs
mkdir -p "$out"

echo "== build postgresql-$major-ctr-dist in $CTR_CHROOTS/pg$major"
chroot_pg "$major" "$top"
build=$CHROOT/build/deb
rm -rf "$build"
copy_source "$top" "$build/ctr-dist-$version"
# debian/control is generated for the majors this suite has (pg_buildext)
chroot_run "$CHROOT" bash -c "
	set -e
	cd /build/deb/ctr-dist-$version
	echo $major > /etc/postgresql-common/supported_versions
	apt-get install -y -q --no-install-recommends debhelper dpkg-dev postgresql-server-dev-all >/dev/null
	pg_buildext updatecontrol
	apt-get build-dep -y -q ./ >/dev/null
	dpkg-buildpackage -us -uc -b
"
deb=$(cd "$build" && ls "postgresql-$major-ctr-dist_"*.deb | grep -v dbgsym)
rm -f "$out/postgresql-$major-ctr-dist_"*.deb
cp "$build/$deb" "$out/"
dpkg-deb --info "$out/$deb" | sed -n 's/^ \(Package\|Version\|Depends\):/  \1:/p'
chroot_umount

echo "== install $deb into a clean $suite chroot"
clean=$CTR_CHROOTS/clean-pg$major
chroot_copy "$suite" "$clean"
chroot_mount "$clean"
cleanup_clean()
{
	_chroot_unmount_all
	chroot_remove "$clean"
}
trap cleanup_clean EXIT
mkdir -p "$clean/build"
cp "$out/$deb" "$clean/build/"
# the source as built: its debian/tests/control names this major's packages
cp -a "$build/ctr-dist-$version" "$clean/build/src"
chroot_run "$clean" apt-get install -y -q --no-install-recommends "/build/$deb" >/dev/null
chroot_run "$clean" dpkg -s "postgresql-$major-ctr-dist" | sed -n 's/^\(Status\|Version\):/  \1:/p'

echo "== CREATE EXTENSION ctr_dist in a cluster of the installed PostgreSQL $major"
chroot_run "$clean" bash -c "
	set -e
	bin=/usr/lib/postgresql/$major/bin
	d=\$(mktemp -d /tmp/ctr_deb.XXXXXX)
	chown postgres: \$d
	as_pg() { runuser -u postgres -- \"\$@\"; }
	as_pg \$bin/initdb -D \$d/data -A trust -U postgres >/dev/null
	trap 'as_pg \$bin/pg_ctl -D \$d/data -m immediate stop >/dev/null 2>&1 || true; rm -rf \$d' EXIT
	as_pg \$bin/pg_ctl -D \$d/data -l \$d/log -w -o \"-k \$d -c listen_addresses='' -c shared_preload_libraries=ctr_dist\" start >/dev/null
	as_pg \$bin/psql -X -q -h \$d -d postgres -v ON_ERROR_STOP=1 -At <<'SQL'
CREATE EXTENSION ctr_dist;
SELECT 'version ' || extversion FROM pg_extension WHERE extname = 'ctr_dist';
CREATE TABLE personas (id int PRIMARY KEY, age int, occupation text);
INSERT INTO personas SELECT g, 18 + g % 60, 'nurse' FROM generate_series(1, 100) g;
SET client_min_messages = warning;
SELECT 'ctr_predict: ' || count(*) || ' rows, ' || count(*) FILTER (WHERE provider = 'mock') || ' from the mock'
  FROM ctr_predict('personas', 20, ad => 'Free fitness trial');
SQL
"

echo "== autopkgtest (debian/tests) against the installed package"
chroot_run "$clean" bash -c "
	set -e
	cd /build/src
	# the test's Depends (@ is the package, installed): of alternatives
	# a | b, the first the archive has, as autopkgtest does
	deps=()
	for d in \$(sed -n 's/^Depends: *//p' debian/tests/control | tr -d ' ' | tr ',' ' '); do
		[ \"\$d\" = @ ] && continue
		for alt in \${d//|/ }; do
			if [[ \$(apt-cache policy \"\$alt\") =~ Candidate:\ [^\(] ]]; then
				deps+=(\"\$alt\")
				break
			fi
		done
	done
	echo \"test depends: \${deps[*]}\"
	apt-get install -y -q --no-install-recommends \"\${deps[@]}\" >/dev/null
	for t in \$(sed -n 's/^Tests: *//p' debian/tests/control); do
		echo \"-- debian/tests/\$t\"
		debian/tests/\$t
	done
"
echo "deb: postgresql-$major-ctr-dist ($out/$deb) builds, installs and works"
