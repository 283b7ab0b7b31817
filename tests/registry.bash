#!/usr/bin/env bash
# Bats helper: a private Debian docker-registry (distribution 2.8) on
# 127.0.0.1, with its storage in a temp dir, for the registry suites.
#
#   registry_start [DIR]   start one (storage under DIR, default a new temp
#                          dir) on a free port; sets REGISTRY (127.0.0.1:PORT),
#                          REG_DIR, REG_PID and REG_STORAGE, and waits until
#                          /v2/ answers. (Not REGISTRY_*: the registry reads
#                          REGISTRY_* variables as configuration.)
#                          With REG_HTPASSWD set (an htpasswd file,
#                          bcrypt), it asks for basic auth.
#   registry_stop          stop it (SIGTERM, then SIGKILL), keeping its files
#   registry_cleanup       registry_stop, proxy_stop, then remove REG_DIR
#   registry_blob_path D   the file holding blob D (sha256:...) in its storage
#   skopeo_push SRC NAME   skopeo copy SRC (e.g. oci:DIR:REF) to
#                          docker://$REGISTRY/NAME over plain HTTP; extra
#                          skopeo copy flags may follow
#   proxy_start RATE       a throttling TCP proxy in front of it (PROXY)
#   proxy_wait_bytes N     wait until the proxy forwarded N bytes
#   require_registry       skip unless docker-registry and skopeo are installed
#
# A file-level registry (started in setup_file) is shared by the tests of a
# file; tests that kill or corrupt a registry start their own. Background
# processes close fd 3 so that bats does not wait for them.

REG_BIN=${REG_BIN:-/usr/bin/docker-registry}

require_registry() {
	if [ ! -x "$REG_BIN" ]; then
		skip "docker-registry not installed (apt-get install docker-registry)"
	fi
	if ! command -v skopeo >/dev/null 2>&1; then
		skip "skopeo not installed (apt-get install skopeo)"
	fi
}

# free_port: a TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

registry_start() {
	local dir=${1:-}
	if [ -z "$dir" ]; then
		dir=$(mktemp -d "${BATS_TMPDIR:-/tmp}/stowage-registry.XXXXXX")
	fi
	REG_DIR=$dir
	REG_STORAGE="$dir/storage"
	mkdir -p "$REG_STORAGE"
	local try port
	for try in 1 2 3 4 5; do
		port=$(free_port)
		cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_STORAGE
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
EOC
		if [ -n "${REG_HTPASSWD:-}" ]; then
			# plain HTTP with basic auth: distribution only warns
			cat >>"$dir/config.yml" <<EOC
auth:
  htpasswd:
    realm: stowage-test
    path: $REG_HTPASSWD
EOC
		fi
		"$REG_BIN" serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 3>&- &
		REG_PID=$!
		REGISTRY=127.0.0.1:$port
		export REGISTRY REG_DIR REG_PID REG_STORAGE
		local i
		for i in $(seq 1 100); do
			case $(curl -sS -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" 2>/dev/null) in
			200 | 401) return 0 ;;
			esac
			if ! kill -0 "$REG_PID" 2>/dev/null; then
				break # exited: most likely the port was taken meanwhile
			fi
			sleep 0.1
		done
		kill -9 "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	done
	echo "docker-registry did not start; its log:" >&2
	cat "$dir/registry.log" >&2
	return 1
}

registry_stop() {
	if [ -n "${REG_PID:-}" ] && kill -0 "$REG_PID" 2>/dev/null; then
		kill "$REG_PID" 2>/dev/null || true
		local i
		for i in $(seq 1 50); do
			kill -0 "$REG_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$REG_PID" 2>/dev/null || true
		wait "$REG_PID" 2>/dev/null || true
	fi
	REG_PID=
}

registry_cleanup() {
	registry_stop
	proxy_stop
	if [ -n "${REG_DIR:-}" ] && [ -d "$REG_DIR" ]; then
		rm -rf "$REG_DIR"
	fi
	REG_DIR=
}

registry_blob_path() {
	local hex=${1#sha256:}
	echo "$REG_STORAGE/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

skopeo_push() {
	local src=$1 name=$2
	shift 2
	timeout 300 skopeo --policy "$TESTSDIR/../bench/policy.json" copy --quiet --dest-tls-verify=false "$@" \
		"$src" "docker://$REGISTRY/$name"
}

# proxy_start RATE: a TCP proxy on 127.0.0.1 in front of $REGISTRY that
# forwards at most RATE bytes per second per connection downstream, so that
# a pull is reliably still transferring when a test kills something. Sets
# PROXY (127.0.0.1:PORT) and PROXY_PID; it counts forwarded bytes in
# $REG_DIR/proxy.bytes. When the upstream side closes, it closes the
# client side at once.
proxy_start() {
	local rate=$1 port
	port=$(free_port)
	python3 - "$port" "${REGISTRY##*:}" "$rate" "$REG_DIR/proxy.bytes" >>"$REG_DIR/proxy.log" 2>&1 3>&- <<'PY' &
import socket, sys, threading, time
port, up, rate, counter = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
total = [0]
lock = threading.Lock()
def pipe(src, dst, limit):
    try:
        while True:
            t0 = time.monotonic()
            b = src.recv(16384)
            if not b:
                break
            dst.sendall(b)
            if limit:
                with lock:
                    total[0] += len(b)
                    open(counter, "w").write(str(total[0]))
                time.sleep(max(0.0, len(b) / rate - (time.monotonic() - t0)))
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
def handle(c):
    try:
        u = socket.create_connection(("127.0.0.1", up))
    except OSError:
        c.close()
        return
    threading.Thread(target=pipe, args=(c, u, False), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c, True), daemon=True).start()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
while True:
    c, _ = ls.accept()
    handle(c)
PY
	PROXY_PID=$!
	PROXY=127.0.0.1:$port
	export PROXY PROXY_PID
	local i
	for i in $(seq 1 50); do
		if curl -fsS -o /dev/null "http://$PROXY/v2/" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "proxy did not start" >&2
	return 1
}

proxy_stop() {
	if [ -n "${PROXY_PID:-}" ]; then
		kill -9 "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
	fi
	PROXY_PID=
}

# proxy_wait_bytes N: wait (up to 60 s) until the proxy forwarded N bytes.
proxy_wait_bytes() {
	local i n
	for i in $(seq 1 600); do
		n=$(cat "$REG_DIR/proxy.bytes" 2>/dev/null || true)
		if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge "$1" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "the proxy forwarded only $(cat "$REG_DIR/proxy.bytes" 2>/dev/null || echo 0) bytes" >&2
	return 1
}
