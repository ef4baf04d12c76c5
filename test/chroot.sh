# test/chroot.sh: Debian chroots for the PostgreSQL majors the host does not
# have (sourced by test/matrix.sh and test/deb.sh; run as root).
#
#   $CTR_CHROOTS/base-SUITE   a pristine minbase chroot with apt set up; the
#                             clean system a package is installed into
#   $CTR_CHROOTS/pgNN         a copy of the base with what building and
#                             testing against PostgreSQL NN needs
#
# Both are kept between runs (outside the repository: they are about 2 GB a
# major) and are rebuilt only when missing or left unfinished.
# chroot_mount registers an EXIT trap that unmounts everything it mounted, on
# failure too, after ending what is still running inside.

CTR_CHROOTS=${CTR_CHROOTS:-/var/tmp/ctr-chroots}

# The Debian suite that has PostgreSQL NN; "experimental" is sid plus
# experimental, preferred.  16 is in no Debian suite.
chroot_suite()
{
	case $1 in
		15) echo bookworm ;;
		17) echo trixie ;;
		18) echo sid ;;
		19) echo experimental ;;
		*) return 1 ;;
	esac
}

chroot_mirror()
{
	local m
	m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$m" ] || m=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	echo "${m:-http://deb.debian.org/debian}"
}

# Run a command inside a chroot, with a clean environment.  In the
# background, waited for: bash serves a signal's trap only between
# foreground commands, and the unmounting trap must not wait for a suite.
chroot_run()
{
	local dir=$1
	shift
	chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "$@" &
	wait $!
}

# Run a command in the background and wait for it, passing SIGTERM and
# SIGINT on to it (a script of ours, which then cleans up behind itself)
run_forwarding()
{
	local pid rc
	"$@" &
	pid=$!
	trap 'kill -TERM $pid 2>/dev/null; _forwarded=1' TERM INT
	wait $pid
	rc=$?
	while kill -0 $pid 2>/dev/null; do
		wait $pid
		rc=$?
	done
	trap - TERM INT
	[ -z "${_forwarded:-}" ] || exit 130
	return $rc
}

_chroot_mounted=()

_chroot_unmount_all()
{
	local i dir pid root try found
	for ((i = ${#_chroot_mounted[@]} - 1; i >= 0; i--)); do
		dir=${_chroot_mounted[i]}
		# what the tests started and left behind (nothing, normally): by pid,
		# only processes whose root is this chroot; again until none is
		# left, as one may still be starting another (pg_ctl a postmaster)
		for try in 1 2 3 4 5 6 7 8 9 10; do
			found=0
			for pid in $(ls /proc | grep -E '^[0-9]+$'); do
				root=$(readlink "/proc/$pid/root" 2>/dev/null) || continue
				if [ "$root" = "$dir" ]; then
					kill -KILL "$pid" 2>/dev/null || true
					found=1
				fi
			done
			[ $found = 0 ] && break
			sleep 0.5
		done
		for m in dev/shm sys dev/pts dev proc; do
			if mountpoint -q "$dir/$m"; then
				umount "$dir/$m" 2>/dev/null || umount -l "$dir/$m"
			fi
		done
	done
	_chroot_mounted=()
}

# Mount what PostgreSQL needs inside (/proc, /dev, /dev/shm, /sys)
chroot_mount()
{
	local dir=$1
	if [ ${#_chroot_mounted[@]} -eq 0 ]; then
		trap '_chroot_unmount_all' EXIT
		trap 'exit 130' INT TERM
	fi
	_chroot_mounted+=("$dir")
	mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
	mountpoint -q "$dir/dev" || mount --bind /dev "$dir/dev"
	mountpoint -q "$dir/dev/pts" || mount --bind /dev/pts "$dir/dev/pts"
	mountpoint -q "$dir/sys" || mount -t sysfs sys "$dir/sys"
	mountpoint -q "$dir/dev/shm" || mount -t tmpfs shm "$dir/dev/shm"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
}

chroot_umount()
{
	_chroot_unmount_all
	trap - EXIT INT TERM
}

# Remove a chroot directory; refuses while anything is mounted below it
chroot_remove()
{
	local dir=$1
	[ -d "$dir" ] || return 0
	if grep -q " $dir/" /proc/mounts; then
		echo "chroot: $dir still has mounts, not removing it" >&2
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

# base-SUITE: debootstrap, apt sources, no service starts, no main cluster
chroot_base()
{
	local suite=$1 dir=$CTR_CHROOTS/base-$1 mirror boot
	[ -e "$dir/.ctr-ready" ] && { echo "$dir"; return 0; }
	mirror=$(chroot_mirror)
	boot=$suite
	[ "$suite" = experimental ] && boot=sid
	command -v debootstrap >/dev/null || {
		apt-get update -q >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
	}
	chroot_remove "$dir"
	mkdir -p "$CTR_CHROOTS"
	echo "chroot: debootstrap $boot into $dir" >&2
	debootstrap --variant=minbase "$boot" "$dir" "$mirror" >"$CTR_CHROOTS/debootstrap-$suite.log" 2>&1 || {
		tail -n 20 "$CTR_CHROOTS/debootstrap-$suite.log" >&2
		return 1
	}
	printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
	chmod +x "$dir/usr/sbin/policy-rc.d"
	mkdir -p "$dir/etc/postgresql-common/createcluster.d"
	echo 'create_main_cluster = false' > "$dir/etc/postgresql-common/createcluster.d/no-main.conf"
	case $suite in
		sid | experimental)
			echo "deb $mirror sid main" > "$dir/etc/apt/sources.list"
			# sid's Release file is not always re-signed in time
			echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99no-valid-until"
			if [ "$suite" = experimental ]; then
				# PostgreSQL from experimental, everything else from sid
				# (preferring all of experimental mixes in half-built
				# transitions, perl's for one)
				echo "deb $mirror experimental main" >> "$dir/etc/apt/sources.list"
				cat > "$dir/etc/apt/preferences.d/postgresql-experimental" <<-'PIN'
					Package: postgresql-1* postgresql-client-1* postgresql-server-dev-1* libpq5 libpq-dev libecpg* libpgtypes3
					Pin: release a=experimental
					Pin-Priority: 990
				PIN
			fi
			;;
		*)
			printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s-security %s-security main\n' \
				"$mirror" "$suite" "$mirror" "$suite" "$mirror" "$suite" > "$dir/etc/apt/sources.list"
			;;
	esac
	rm -f "$dir"/etc/apt/sources.list.d/*
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	chroot_run "$dir" apt-get update -q >&2
	touch "$dir/.ctr-ready"
	echo "$dir"
}

# A fresh copy of base-SUITE at DIR (for builds and clean installs)
chroot_copy()
{
	local suite=$1 dir=$2 base
	base=$(chroot_base "$suite") || return 1
	chroot_remove "$dir"
	cp -a --reflink=auto "$base" "$dir"
	rm -f "$dir/.ctr-ready"
}

# Copy the work tree (tracked and untracked, not ignored files) to DIR
copy_source()
{
	local src=$1 dir=$2
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$dir"
}

# pgNN: a copy of the suite's base with make and the build and test
# dependencies of PostgreSQL NN (test/install-deps.sh of the work tree SRC,
# run inside).  Mounts it (chroot_mount: not in a $(...) subshell, whose trap
# would be lost) and sets CHROOT to it; fails with status 2 when the archive
# has no PostgreSQL NN.
chroot_pg()
{
	local major=$1 src=$2 suite dir
	suite=$(chroot_suite "$major") || { echo "chroot: no Debian suite has PostgreSQL $major" >&2; return 2; }
	dir=$CTR_CHROOTS/pg$major
	CHROOT=$dir
	if [ ! -e "$dir/.ctr-ready" ]; then
		chroot_copy "$suite" "$dir" || return 1
	fi
	chroot_mount "$dir"
	if [ ! -e "$dir/.ctr-ready" ]; then
		if ! [[ $(chroot_run "$dir" apt-cache policy "postgresql-$major") =~ Candidate:\ [^\(] ]]; then
			echo "chroot: $suite has no postgresql-$major (any more)" >&2
			return 2
		fi
		copy_source "$src" "$dir/build/deps"
		chroot_run "$dir" env PG_MAJOR="$major" bash /build/deps/test/install-deps.sh >&2 || return 1
		chroot_run "$dir" apt-get clean	# the downloaded packages: about 0.3 GB
		rm -rf "$dir/build/deps"
		touch "$dir/.ctr-ready"
	fi
}
