# Sourced by scripts/bench.sh and scripts/release.sh: instances of a server
# on free loopback ports, a private Redis, and stopping them all. The caller
# sets SERVER (the server's binary) and SERVERS_LOG (the directory for the
# logs), and may set ON_SERVER_CORE (a command prefix the servers and Redis
# run under, such as taskset).

# The per-connection limits, lifted: the generator sends far beyond a human.
FRAME_LIMITS=(--typing-per-sec 100000 --typing-burst 100000 --actions-per-sec 100000
  --actions-burst 100000 --excess-burst 100000 --queue-capacity 256)
# The admission limits, lifted: the generator is one address.
ADMISSION_LIMITS=(--max-connections-per-ip 100000 --connections-per-ip-per-sec 100000
  --connections-per-ip-burst 100000 --connections-per-sec 100000 --connections-burst 100000)
server_flags=("${FRAME_LIMITS[@]}" "${ADMISSION_LIMITS[@]}")

# The instances started, their addresses (comma-separated), and Redis's pid.
pids=()
addrs=""
redis_pid=""

# launch COMMAND...: runs a server that prints "listening on http://<addr>",
# waits until its /readyz answers 200, and adds its address to $addrs.
launch() {
  local log="$SERVERS_LOG/server-${#pids[@]}.log" addr=""
  "${ON_SERVER_CORE[@]}" "$@" > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|listening on http://||' || true)
    if [ -n "$addr" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ]; then
      addrs="${addrs:+$addrs,}$addr"
      return
    fi
    sleep 0.1
  done
  echo "the server did not become ready (see $log)" >&2; exit 1
}

# start_server [ENV=VALUE...]: starts one more instance of $server_bin (or
# $SERVER) on a free port with $server_flags, waits until it is ready, and
# adds its address to $addrs.
start_server() {
  launch env "$@" LEPTOS_SITE_ROOT=target/site RUST_LOG=warn,battle_status::server=info NO_COLOR=1 \
    "${server_bin:-$SERVER}" --addr 127.0.0.1:0 "${server_flags[@]}"
}

# start_redis [WRAPPER...]: a private redis-server on a free port, run
# under WRAPPER if given (valgrind, say); sets $redis_port and $redis_url.
start_redis() {
  local log="$SERVERS_LOG/redis.log"
  redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${ON_SERVER_CORE[@]}" "$@" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    > "$log" 2>&1 &
  redis_pid=$!
  redis_url="redis://127.0.0.1:$redis_port/"
  for _ in $(seq 1 100); do
    grep -q 'Ready to accept connections' "$log" && return
    sleep 0.1
  done
  echo "redis-server did not start (see $log)" >&2; exit 1
}

# stop_servers: SIGTERM to every instance and Redis, and waits for each to
# exit (a graceful shutdown: an instrumented server writes its profile then).
stop_servers() {
  for pid in "${pids[@]}" $redis_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
  redis_pid=""
  addrs=""
}
