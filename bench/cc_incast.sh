#!/bin/bash
# SPDX-License-Identifier: MIT
#
# cc_incast.sh - a small incast bed for congestion control (run as root):
# N client network namespaces and one server namespace joined by a bridge,
# a tbf bottleneck on the bridge's port towards the server; ferry-bench
# server in one, a client in each of the others, all at once, then each
# client alone.  Prints one line per client run: p50/p99 (us), calls/s,
# retransmits.  Until bench/testbed (issue 15, item 1) lands, this is how
# docs/bench.md's "Congestion control" figures are made.
#
#   bench/cc_incast.sh FERRY_BENCH CC [CLIENTS] [RATE] [SECS] [extra args]
#
# Everything it creates carries this process's id and is removed on exit,
# however it exits.
set -euo pipefail
BENCH=$1 CC=$2 N=${3:-3} RATE=${4:-1gbit} SECS=${5:-4}
shift $(( $# < 5 ? $# : 5 ))
EXTRA=("$@")
T=cc$$ # unique to this process
BR=${T}br
cleanup() {
	for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for i in $(seq 0 "$N"); do
		ip netns del "${T}h$i" 2>/dev/null || true
		ip link del "${T}v$i" 2>/dev/null || true
	done
	ip link del "$BR" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
ip link add "$BR" type bridge
ip link set "$BR" up
# Host 0 is the server (10.77.0.1); hosts 1..N are clients.
for i in $(seq 0 "$N"); do
	ip netns add "${T}h$i"
	ip link add "${T}v$i" type veth peer name eth0 netns "${T}h$i"
	ip link set "${T}v$i" master "$BR" up
	ip -n "${T}h$i" addr add "10.77.0.$((i + 1))/24" dev eth0
	ip -n "${T}h$i" link set eth0 up
	ip -n "${T}h$i" link set lo up
done
# The bottleneck: what leaves the bridge towards the server, with a queue
# of about 1 ms at the rate (a shallow switch buffer).
tc qdisc add dev "${T}v0" root tbf rate "$RATE" burst 32kb latency 1ms
ip netns exec "${T}h0" "$BENCH" server --addr 10.77.0.1 --cc "$CC" \
	--no-pin --max-frame 1472 --size 64K --resp-size 32 "${EXTRA[@]}" >/tmp/$T.server.log 2>&1 &
sleep 1
client() { # host, output file
	ip netns exec "${T}h$1" "$BENCH" client --connect 10.77.0.1 \
		--ip "10.77.0.$(($1 + 1))" --cc "$CC" --no-pin \
		--max-frame 1472 --size 64K --resp-size 32 --inflight 4 \
		--duration "$SECS" --warmup 1 --json "$2" "${EXTRA[@]}" \
		>"$2.log" 2>&1 || { cat "$2.log" >&2; return 1; }
}
summary() { # label, json file
	python3 -c 'import json, sys
d = json.load(open(sys.argv[2]))
g = lambda k: d.get(k, "?")
print(sys.argv[1], "p50_us=%s p99_us=%s rps=%s gbps=%s retransmits=%s" %
      (g("p50_us"), g("p99_us"), g("rps"), g("gbps"), g("retransmits")))' "$1" "$2"
}
D=$(mktemp -d)
for i in $(seq 1 "$N"); do client "$i" "$D/alone$i.json"; summary "alone c$i" "$D/alone$i.json"; done
for i in $(seq 1 "$N"); do client "$i" "$D/tog$i.json" & done
wait $(jobs -p | tail -n "$N")
for i in $(seq 1 "$N"); do summary "together c$i" "$D/tog$i.json"; done
tc -s qdisc show dev "${T}v0" | grep -o 'dropped [0-9]*' | sed 's/^/bottleneck /'
rm -rf "$D"
