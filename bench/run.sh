#!/usr/bin/env bash
# bench/run.sh SCENARIO — connection-scale benchmarks for Parley, each one
# command that starts its own servers on loopback, runs `parley loadgen`
# against Parley and against the goroutine-per-connection baseline
# (bench/baseline) in the same run, prints the reports and stops
# everything it started. See docs/benchmarks.md, section "Connection scale".
#
# Scenarios (defaults in brackets; each runs a few minutes at most):
#   idle     RSS per idle attached WebSocket at IDLE_CONNS [5000,10000,19000]
#            in one server process, pings every 5 s, Parley vs baseline
#   active   ACTIVE_CONNS [10000] connections over ACTIVE_SESSIONS [1000]
#            sessions, ACTIVE_CHATS [200] concurrent generations at
#            ACTIVE_TPS [50] tokens/s for ACTIVE_SECONDS [60]: inter-token
#            latency, server CPU, JetStream writes, Parley vs baseline
#   ttft     time to first token through Parley vs a direct call to the
#            same model server, TTFT_CHATS [20] concurrent chats
#   churn    CHURN_CONNS [2000] sockets closed and reopened for
#            CHURN_SECONDS [60], then goroutines/heap/RSS/fds vs before
#   profile  heap profiles of Parley holding PROFILE_CONNS [10000] idle
#            sockets (go tool pprof -sample_index=inuse_space -base ...)
#   smoke    a few hundred connections through every path, in seconds
#
# The model side is Parley's simulated model (PARLEY_PROVIDER=sim) at the
# same pace as the baseline's fake replies, except in ttft, which puts a
# small Ollama-protocol stub (bench/ollamastub) behind Parley so that the
# direct call and the call through Parley reach the same upstream.
#
# Environment: BENCH_OUT (where reports go; default a new temp dir),
# BENCH_PORT (base port, default 23000: Parley +80, baseline +81, model
# stub +999, NATS +422, pprof +60).
set -euo pipefail

scenario=${1:-}
case "$scenario" in
idle | active | ttft | churn | profile | smoke) ;;
*)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 2
	;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/parley-bench.XXXXXX")
OUT=${BENCH_OUT:-$WORK/out}
mkdir -p "$OUT" "$WORK/bin"
PORT=${BENCH_PORT:-23000}
PARLEY_ADDR=127.0.0.1:$((PORT + 80))
BASELINE_ADDR=127.0.0.1:$((PORT + 81))
STUB_ADDR=127.0.0.1:$((PORT + 999))
NATS_ADDR=127.0.0.1:$((PORT + 422))
PPROF_ADDR=127.0.0.1:$((PORT + 60))

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK/data" "$WORK/bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

build() {
	log "building into $WORK/bin"
	(cd "$ROOT" && go build -o "$WORK/bin/" ./cmd/parley ./bench/baseline ./bench/ollamastub ./bench/parleyprof)
}

# wait_port ADDR: until something listens there (30 s at most).
wait_port() {
	local host=${1%:*} port=${1##*:} i
	for i in $(seq 300); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "nothing listens on $1 after 30 s" >&2
	return 1
}

# stop PID: stop one server this script started.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# sim TPS TOKENS: the environment of Parley's simulated model.
sim() {
	echo PARLEY_PROVIDER=sim PARLEY_SIM_TTFT=0s PARLEY_SIM_TOKENS_PER_SECOND="$1" PARLEY_SIM_REPLY_TOKENS="$2"
}

# start_stub TPS TOKENS [TTFT]: the Ollama-protocol model server.
start_stub() {
	"$WORK/bin/ollamastub" -listen "$STUB_ADDR" -tps "$1" -tokens "$2" -ttft "${3:-0s}" 2>"$OUT/stub.log" &
	STUB_PID=$!
	PIDS+=("$STUB_PID")
	wait_port "$STUB_ADDR"
}

# start_parley serve|prof [ENV=VALUE...]: Parley on a fresh data dir.
start_parley() {
	local kind=$1
	shift
	rm -rf "$WORK/data"
	mkdir -p "$WORK/data"
	local -a cmd=("$WORK/bin/parley" serve)
	if [[ $kind == prof ]]; then
		cmd=("$WORK/bin/parleyprof" -pprof "$PPROF_ADDR")
	fi
	env PARLEY_DATA_DIR="$WORK/data" PARLEY_LISTEN="$PARLEY_ADDR" PARLEY_NATS_LISTEN=off \
		OLLAMA_HOST="http://$STUB_ADDR" PARLEY_MODEL=bench PARLEY_LOG_LEVEL=warn PARLEY_TITLES=off "$@" \
		"${cmd[@]}" >"$OUT/parley.out" 2>>"$OUT/parley.log" &
	PARLEY_PID=$!
	PIDS+=("$PARLEY_PID")
	wait_port "$PARLEY_ADDR"
}

# start_baseline TPS TOKENS [PING]
start_baseline() {
	"$WORK/bin/baseline" -listen "$BASELINE_ADDR" -tps "$1" -tokens "$2" -ping "${3:-25s}" 2>"$OUT/baseline.log" &
	BASELINE_PID=$!
	PIDS+=("$BASELINE_PID")
	wait_port "$BASELINE_ADDR"
}

# loadgen NAME ARGS...: one run; the text report goes to stdout and
# OUT/NAME.txt, the JSON one to OUT/NAME.json, progress to stderr and
# OUT/NAME.progress.
loadgen() {
	local name=$1
	shift
	log "loadgen $name: $*"
	"$WORK/bin/parley" loadgen -json-out "$OUT/$name.json" "$@" 2> >(tee "$OUT/$name.progress" >&2) | tee "$OUT/$name.txt"
}

run_idle() {
	local conns=${IDLE_CONNS:-5000,10000,19000}
	# shellcheck disable=SC2046
	start_parley serve $(sim 50 100) PARLEY_WS_PING_INTERVAL=5s PARLEY_WS_IDLE_TIMEOUT=20s
	start_baseline 50 100 5s
	# Settle past a ping interval so every socket has been pinged.
	loadgen idle-parley -label "idle, Parley" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$conns" -sessions 100 \
		-settle 7s -duration 5m -server-pid "$PARLEY_PID"
	loadgen idle-baseline -label "idle, baseline" -url "ws://$BASELINE_ADDR/v1/ws" -conns "$conns" -sessions 100 \
		-settle 7s -duration 5m -server-pid "$BASELINE_PID"
}

run_active() {
	local conns=${ACTIVE_CONNS:-10000} sessions=${ACTIVE_SESSIONS:-1000} chats=${ACTIVE_CHATS:-200}
	local tps=${ACTIVE_TPS:-50} secs=${ACTIVE_SECONDS:-60} tokens=${ACTIVE_TOKENS:-100}
	# shellcheck disable=SC2046
	start_parley serve $(sim "$tps" "$tokens") PARLEY_NATS_LISTEN="$NATS_ADDR"
	start_baseline "$tps" "$tokens"
	loadgen active-parley -label "active, Parley" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$conns" -sessions "$sessions" \
		-chats "$chats" -chat-duration "${secs}s" -duration 5m -server-pid "$PARLEY_PID" -nats-url "nats://$NATS_ADDR"
	loadgen active-baseline -label "active, baseline" -url "ws://$BASELINE_ADDR/v1/ws" -conns "$conns" -sessions "$sessions" \
		-chats "$chats" -chat-duration "${secs}s" -duration 5m -server-pid "$BASELINE_PID"
}

run_ttft() {
	local chats=${TTFT_CHATS:-20} secs=${TTFT_SECONDS:-30}
	start_stub 50 20
	# The stub serves every request at once: no line in front of it (the
	# Ollama provider's default is one generation at a time).
	start_parley serve PARLEY_UPSTREAM_CONCURRENCY="$chats"
	loadgen ttft-parley -label "ttft, through Parley to the stub" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$chats" -sessions "$chats" \
		-chats "$chats" -chat-duration "${secs}s" -duration 3m -server-pid "$PARLEY_PID"
	stop "$PARLEY_PID"
	# shellcheck disable=SC2046
	start_parley serve $(sim 50 20)
	loadgen ttft-parley-sim -label "ttft, through Parley to its simulated model" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$chats" \
		-sessions "$chats" -chats "$chats" -chat-duration "${secs}s" -duration 3m -server-pid "$PARLEY_PID"
	loadgen ttft-direct -direct "http://$STUB_ADDR" -model bench -chats "$chats" -chat-duration "${secs}s"
}

run_churn() {
	local conns=${CHURN_CONNS:-2000} secs=${CHURN_SECONDS:-60}
	# shellcheck disable=SC2046
	start_parley prof $(sim 50 100)
	start_baseline 50 100
	loadgen churn-parley -label "churn, Parley (with pprof)" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$conns" \
		-sessions $((conns / 10)) -churn "${secs}s" -settle 10s -duration 5m -server-pid "$PARLEY_PID" \
		-pprof-url "http://$PPROF_ADDR/debug/pprof"
	loadgen churn-baseline -label "churn, baseline" -url "ws://$BASELINE_ADDR/v1/ws" -conns "$conns" \
		-sessions $((conns / 10)) -churn "${secs}s" -settle 10s -duration 5m -server-pid "$BASELINE_PID"
}

run_profile() {
	local conns=${PROFILE_CONNS:-10000}
	# shellcheck disable=SC2046
	start_parley prof $(sim 50 100)
	mkdir -p "$OUT/profiles"
	loadgen profile-parley -label "heap profile, Parley" -url "ws://$PARLEY_ADDR/v1/ws" -conns "$conns" -sessions 100 \
		-settle 5s -duration 5m -server-pid "$PARLEY_PID" -pprof-url "http://$PPROF_ADDR/debug/pprof" \
		-heap-profile-dir "$OUT/profiles"
	log "top of the heap per $conns idle connections:"
	go tool pprof -sample_index=inuse_space -top -base "$OUT/profiles/heap-0.pb.gz" "$OUT/profiles/heap-$conns.pb.gz" 2>/dev/null |
		head -40 | tee "$OUT/profile-top.txt"
}

run_smoke() {
	# shellcheck disable=SC2046
	start_parley prof $(sim 100 20) PARLEY_NATS_LISTEN="$NATS_ADDR"
	start_baseline 100 20
	loadgen smoke-parley -label "smoke, Parley" -url "ws://$PARLEY_ADDR/v1/ws" -conns 100,300 -sessions 30 -chats 5 \
		-chat-duration 3s -churn 2s -settle 1s -duration 1m -server-pid "$PARLEY_PID" -nats-url "nats://$NATS_ADDR" \
		-pprof-url "http://$PPROF_ADDR/debug/pprof"
	loadgen smoke-baseline -label "smoke, baseline" -url "ws://$BASELINE_ADDR/v1/ws" -conns 100,300 -sessions 30 -chats 5 \
		-chat-duration 3s -churn 2s -settle 1s -duration 1m -server-pid "$BASELINE_PID"
}

build
log "scenario $scenario; reports in $OUT"
"run_$scenario"
log "done; reports in $OUT"
