#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds the comparison peers (docs/bench.md, "Against what users would pick
# instead") into build-peers/ from Debian packages, with plain cc/c++ and
# pkg-config:
#
#   uring-echo  a plain io_uring UDP echo (liburing)
#   zmq-echo    ZeroMQ DEALER/ROUTER over TCP (libzmq3-dev)
#   grpc-echo   gRPC C++ callback echo (libgrpc++-dev, protoc)
#   dpdk-echo   a minimal raw DPDK UDP echo (libdpdk-dev)
#
# Installs the packages that are missing first (apt-get; needs root).  Not
# part of the meson build on purpose: neither CI nor `./dev test` should
# install or compile gRPC and ZeroMQ to test ferry, and a meson option
# could not install them anyway.  bench/compare.py runs this script.
#
#   bench/peers/build.sh [OUTDIR]     (default: build-peers/ in the tree)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build-peers}

PKGS="gcc g++ pkgconf liburing-dev libzmq3-dev libgrpc++-dev libprotobuf-dev
protobuf-compiler protobuf-compiler-grpc libdpdk-dev"

missing=
for p in $PKGS; do
	if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "build.sh: missing Debian packages:$missing (run as root to" \
			"install them)" >&2
		exit 1
	fi
	echo "build.sh: installing$missing" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

mkdir -p "$out"
CC=${CC:-cc}
CXX=${CXX:-c++}
CFLAGS="-O2 -g -Wall -Wextra -std=gnu11"
CXXFLAGS="-O2 -g -Wall -Wextra -std=c++17"

# stale TARGET SOURCES...: true when TARGET is missing or older than one of
# SOURCES (or than this script).
stale() {
	t=$1
	shift
	[ -e "$t" ] || return 0
	for s in "$@" "$here/build.sh"; do
		[ "$s" -nt "$t" ] && return 0
	done
	return 1
}

common="$here/peer.c $here/peer.h $root/bench/hist.c $root/bench/hist.h"
if stale "$out/peer.o" $common; then
	$CC $CFLAGS -c "$here/peer.c" -o "$out/peer.o"
	$CC $CFLAGS -c "$root/bench/hist.c" -o "$out/hist.o"
fi
objs="$out/peer.o $out/hist.o"

if stale "$out/uring-echo" "$here/uring_echo.c" $common; then
	echo "build.sh: uring-echo" >&2
	$CC $CFLAGS "$here/uring_echo.c" $objs -o "$out/uring-echo" \
		$(pkg-config --cflags --libs liburing)
fi
if stale "$out/zmq-echo" "$here/zmq_echo.c" $common; then
	echo "build.sh: zmq-echo" >&2
	$CC $CFLAGS "$here/zmq_echo.c" $objs -o "$out/zmq-echo" \
		$(pkg-config --cflags --libs libzmq)
fi
if stale "$out/grpc-echo" "$here/grpc_echo.cc" "$here/echo.proto" $common; then
	echo "build.sh: grpc-echo (about a minute)" >&2
	protoc -I "$here" --cpp_out="$out" --grpc_out="$out" \
		--plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
		"$here/echo.proto"
	$CXX $CXXFLAGS -I "$out" -I "$here" "$here/grpc_echo.cc" \
		"$out/echo.pb.cc" "$out/echo.grpc.pb.cc" $objs \
		-o "$out/grpc-echo" \
		$(pkg-config --cflags --libs grpc++ protobuf) -pthread
fi
if stale "$out/dpdk-echo" "$here/dpdk_echo.c" $common; then
	echo "build.sh: dpdk-echo" >&2
	$CC $CFLAGS "$here/dpdk_echo.c" $objs -o "$out/dpdk-echo" \
		$(pkg-config --cflags --libs libdpdk)
fi
echo "$out"
