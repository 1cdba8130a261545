#!/usr/bin/env bash
# ollama-test-env.sh: a real Ollama with a tiny random-weight model for the
# end-to-end tests, on a fresh machine or in CI. See docs/real-ollama.md
# (or docs) for why it is built this way.
#
#   scripts/ollama-test-env.sh build   build the ollama binary only
#   scripts/ollama-test-env.sh start   build if needed, create the models, run
#                                      `ollama serve` on a free loopback port;
#                                      the last stdout line is
#                                      OLLAMA_HOST=http://127.0.0.1:<port>
#   scripts/ollama-test-env.sh stop    stop the server started by `start`
#   scripts/ollama-test-env.sh status  print OLLAMA_HOST=... if it is running
#
# Idempotent: the binary is built once per version into the cache dir
# (${PARLEY_OLLAMA_CACHE:-$HOME/.cache/parley-ollama}); `start` reuses an
# already-running healthy server. Progress goes to stderr. The server only
# listens on 127.0.0.1 and has Ollama's cloud features disabled.
set -euo pipefail

OLLAMA_VERSION=v0.17.4
MALGO_VERSION=v0.11.24

CACHE_DIR=${PARLEY_OLLAMA_CACHE:-$HOME/.cache/parley-ollama}
BIN_DIR=$CACHE_DIR/bin
BIN=$BIN_DIR/ollama
INCLUDE_DIR=$CACHE_DIR/include
MODEL_DIR=$CACHE_DIR/model
MODELS_DIR=$CACHE_DIR/models
STATE_FILE=$CACHE_DIR/server.state
LOG_FILE=$CACHE_DIR/serve.log

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[ollama-test-env] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# Headers that the ollama module zip leaves out of llama.cpp's vendor/ folder.
ensure_apt_headers() {
	if [ -f /usr/include/nlohmann/json.hpp ] && [ -f /usr/include/stb/stb_image.h ]; then
		return
	fi
	log "installing nlohmann-json3-dev libstb-dev"
	local pkgs=(nlohmann-json3-dev libstb-dev)
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
		log "apt-get install failed; running apt-get update and retrying"
		as_root apt-get update >&2
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
	fi
	[ -f /usr/include/nlohmann/json.hpp ] || die "nlohmann/json.hpp still missing"
	[ -f /usr/include/stb/stb_image.h ] || die "stb/stb_image.h still missing"
}

# miniaudio.h comes from the Go module github.com/gen2brain/malgo, which ships
# it at its root; $INCLUDE_DIR/miniaudio links to that module dir.
ensure_miniaudio() {
	if [ -f "$INCLUDE_DIR/miniaudio/miniaudio.h" ]; then
		return
	fi
	log "downloading github.com/gen2brain/malgo@$MALGO_VERSION for miniaudio.h"
	local json dir
	# Run outside any module so the project's go.mod/go.sum stay untouched.
	json=$(cd "$CACHE_DIR" && GOWORK=off GO111MODULE=on go mod download -json "github.com/gen2brain/malgo@$MALGO_VERSION")
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' | head -n 1)
	[ -n "$dir" ] && [ -f "$dir/miniaudio.h" ] || die "no miniaudio.h in malgo module (Dir=$dir)"
	mkdir -p "$INCLUDE_DIR"
	ln -sfn "$dir" "$INCLUDE_DIR/miniaudio"
}

binary_is_current() {
	[ -x "$BIN" ] || return 1
	go version -m "$BIN" 2>/dev/null |
		awk -v v="$OLLAMA_VERSION" '$1 == "mod" && $2 == "github.com/ollama/ollama" && $3 == v { ok = 1 } END { exit !ok }'
}

cmd_build() {
	command -v go >/dev/null 2>&1 || die "go is not on PATH"
	mkdir -p "$CACHE_DIR" "$BIN_DIR"
	if binary_is_current; then
		log "ollama $OLLAMA_VERSION already built: $BIN"
		return
	fi
	command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || die "gcc and g++ are needed (cgo)"
	ensure_apt_headers
	ensure_miniaudio
	log "building ollama $OLLAMA_VERSION into $BIN_DIR (about 6-7 minutes on 2 cores)"
	local start=$SECONDS
	(
		cd "$CACHE_DIR"
		GOWORK=off GO111MODULE=on CGO_ENABLED=1 GOBIN="$BIN_DIR" CGO_CPPFLAGS="-I$INCLUDE_DIR" \
			go install -ldflags="-X=github.com/ollama/ollama/version.Version=${OLLAMA_VERSION#v}" \
			"github.com/ollama/ollama@$OLLAMA_VERSION"
	) >&2
	binary_is_current || die "build finished but $BIN is not $OLLAMA_VERSION"
	log "built $BIN in $((SECONDS - start))s"
}

healthy() { # healthy http://host:port
	curl -fsS --max-time 3 "$1/api/version" >/dev/null 2>&1
}

has_models() { # has_models http://host:port
	local tags
	tags=$(curl -fsS --max-time 5 "$1/api/tags" 2>/dev/null) || return 1
	printf '%s' "$tags" | grep -q '"name":"tiny:latest"' &&
		printf '%s' "$tags" | grep -q '"name":"tiny-long:latest"' &&
		printf '%s' "$tags" | grep -q '"name":"tiny-loop:latest"'
}

# Our server's pid: alive and really our ollama binary (guards against pid reuse).
is_our_server() { # is_our_server pid
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$(readlink -f "$BIN")" ]
}

read_state() {
	STATE_PID= STATE_HOST=
	[ -f "$STATE_FILE" ] || return 1
	STATE_PID=$(sed -n 's/^PID=//p' "$STATE_FILE")
	STATE_HOST=$(sed -n 's/^OLLAMA_HOST=//p' "$STATE_FILE")
	[ -n "$STATE_PID" ] && [ -n "$STATE_HOST" ]
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_models() {
	mkdir -p "$MODEL_DIR"
	log "writing tiny model GGUF"
	(cd "$REPO_ROOT" && go run ./internal/tools/tinymodel -o "$MODEL_DIR/tiny.gguf.tmp") >&2
	mv -f "$MODEL_DIR/tiny.gguf.tmp" "$MODEL_DIR/tiny.gguf"

	local template='TEMPLATE """{{- range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}assistant: """'
	cat >"$MODEL_DIR/Modelfile.tiny" <<EOF
FROM ./tiny.gguf
$template
PARAMETER num_predict 64
PARAMETER top_k 1
PARAMETER repeat_penalty 2
EOF
	# No repeat penalty: greedy decoding soon repeats one token, and Ollama
	# then ends the stream without a done record. Tests use it on purpose.
	cat >"$MODEL_DIR/Modelfile.tiny-loop" <<EOF
FROM ./tiny.gguf
$template
PARAMETER num_predict 64
PARAMETER top_k 1
EOF
	cat >"$MODEL_DIR/Modelfile.tiny-long" <<EOF
FROM ./tiny.gguf
$template
PARAMETER num_predict 4000
PARAMETER top_k 1
PARAMETER repeat_penalty 2
EOF
}

start_server() { # sets SERVER_PID SERVER_HOST
	mkdir -p "$MODELS_DIR"
	local attempt port pid hostport i
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		port_in_use "$port" && continue
		hostport=127.0.0.1:$port
		log "starting ollama serve on $hostport (log: $LOG_FILE)"
		# setsid + nohup: the server outlives this script and its terminal.
		OLLAMA_HOST=$hostport OLLAMA_MODELS=$MODELS_DIR OLLAMA_NO_CLOUD=1 \
			setsid nohup "$BIN" serve >"$LOG_FILE" 2>&1 </dev/null &
		pid=$!
		for i in $(seq 1 150); do
			if healthy "http://$hostport"; then
				SERVER_PID=$pid SERVER_HOST=http://$hostport
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			die "ollama serve did not answer on $hostport within 30s; see $LOG_FILE"
		fi
		log "ollama serve exited (attempt $attempt); last log lines:"
		tail -n 5 "$LOG_FILE" >&2 || true
	done
	die "could not start ollama serve; see $LOG_FILE"
}

cmd_start() {
	command -v curl >/dev/null 2>&1 || die "curl is needed"
	mkdir -p "$CACHE_DIR"
	if read_state && is_our_server "$STATE_PID" && healthy "$STATE_HOST" && has_models "$STATE_HOST"; then
		log "reusing running ollama (pid $STATE_PID)"
		echo "OLLAMA_HOST=$STATE_HOST"
		return
	fi
	if read_state && is_our_server "$STATE_PID"; then
		log "stale or unhealthy server (pid $STATE_PID); restarting"
		cmd_stop
	fi
	rm -f "$STATE_FILE"

	cmd_build
	write_models
	start_server

	local m
	for m in tiny tiny-long tiny-loop; do
		log "ollama create $m"
		(cd "$MODEL_DIR" && OLLAMA_HOST=$SERVER_HOST "$BIN" create "$m" -f "Modelfile.$m") >&2 ||
			{ kill "$SERVER_PID" 2>/dev/null || true; die "ollama create $m failed"; }
	done
	has_models "$SERVER_HOST" || { kill "$SERVER_PID" 2>/dev/null || true; die "models missing after create"; }

	printf 'PID=%s\nOLLAMA_HOST=%s\nOLLAMA_MODELS=%s\nLOG=%s\n' \
		"$SERVER_PID" "$SERVER_HOST" "$MODELS_DIR" "$LOG_FILE" >"$STATE_FILE.tmp"
	mv -f "$STATE_FILE.tmp" "$STATE_FILE"
	log "ollama ready at $SERVER_HOST (pid $SERVER_PID)"
	echo "OLLAMA_HOST=$SERVER_HOST"
}

cmd_stop() {
	if ! read_state; then
		log "no state file; nothing to stop"
		rm -f "$STATE_FILE"
		return
	fi
	if is_our_server "$STATE_PID"; then
		log "stopping ollama (pid $STATE_PID)"
		kill -TERM "$STATE_PID" 2>/dev/null || true
		local i
		for i in $(seq 1 50); do
			kill -0 "$STATE_PID" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$STATE_PID" 2>/dev/null; then
			log "still running; sending SIGKILL"
			kill -KILL "$STATE_PID" 2>/dev/null || true
		fi
	else
		log "server (pid $STATE_PID) is not running"
	fi
	rm -f "$STATE_FILE"
}

cmd_status() {
	if read_state && is_our_server "$STATE_PID" && healthy "$STATE_HOST"; then
		echo "OLLAMA_HOST=$STATE_HOST"
	else
		log "not running"
		return 1
	fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
build) cmd_build ;;
status) cmd_status ;;
*)
	echo "usage: $0 start|stop|build|status" >&2
	exit 2
	;;
esac
