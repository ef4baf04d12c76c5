# Shared by the benchmark scripts (sourced).

# start_provider_server WORKDIR [server options...]: start test/provider_server.py
# (or $BENCH_PROVIDER_SERVER, e.g. another branch's copy) on a free port in the
# background; sets server_pid and port, or exits
start_provider_server() {
	local dir=$1
	shift
	python3 "${BENCH_PROVIDER_SERVER:-$top/test/provider_server.py}" --port 0 --port-file "$dir/port" \
		--parent-pid $$ "$@" >"$dir/server.out" 2>&1 &
	server_pid=$!
	for _ in $(seq 1 200); do
		[ -s "$dir/port" ] && break
		sleep 0.05
	done
	if [ ! -s "$dir/port" ]; then
		echo "provider server did not start:" >&2
		cat "$dir/server.out" >&2
		exit 1
	fi
	port=$(cat "$dir/port")
}
