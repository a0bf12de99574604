#!/bin/sh
# ferryctl token issue prints a version 2 token and, on a second line, its
# holder key in hex (docs/tokens.md, section 7); the token line verifies
# and inspects as version 2.  Usage: ferryctl_token_check.sh FERRYCTL
set -eu
ctl=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
kr="$dir/kr"
"$ctl" --keyring "$kr" key new --max-ttl 3600 >/dev/null
"$ctl" --keyring "$kr" token issue --type subrequest --audience a:1 \
	--channel kv.store --ttl 60 >"$dir/out"
test "$(wc -l <"$dir/out")" -eq 2 || { echo "want 2 lines"; exit 1; }
tok=$(sed -n 1p "$dir/out")
hk=$(sed -n 2p "$dir/out")
echo "$hk" | grep -Eq '^[0-9a-f]{64}$' || { echo "bad hk line: $hk"; exit 1; }
"$ctl" --keyring "$kr" token verify --type subrequest --audience a:1 "$tok" |
	grep -q '^valid subrequest token for kv.store'
"$ctl" --keyring "$kr" token inspect --audience a:1 "$tok" |
	grep -q '^{"version":2,'
# Every token gets its own holder key.
"$ctl" --keyring "$kr" token issue --type subrequest --audience a:1 \
	--channel kv.store --ttl 60 | sed -n 2p >"$dir/hk2"
test "$(cat "$dir/hk2")" != "$hk" || { echo "hk repeated"; exit 1; }
echo ok
