#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ferry.pc works for an installed ferry (TAP).
#
#   pkgconfig_check.sh SOURCE_ROOT BUILD_DIR
#
# Installs BUILD_DIR into a DESTDIR, points PKG_CONFIG_PATH at a copy of the
# installed ferry.pc whose prefix is moved into the DESTDIR (what a .pc says
# is /usr/local; pkgconf's --define-prefix cannot move a Debian multiarch
# libdir), then checks:
#   1. the install;
#   2. `pkg-config --cflags ferry` names only ferry's include folder;
#   3. `pkg-config --static --libs ferry` names every library libferry.so
#      is linked with (its NEEDED entries, the C library's own left out);
#   4. examples/echo.c builds against the installed libferry.so and runs;
#   5. it links against libferry.a with `pkg-config --static --libs` (the
#      DPDK, liburing and libsodium libraries shared) and runs.
# A sanitized build's library needs the sanitizers in the program too: they
# are added from BUILD_DIR's b_sanitize.
# No pipefail: `cmd | grep -q` would fail whenever grep, done early, leaves
# cmd writing to a closed pipe.
set -u

root=$1
build=$2
cc=${CC:-cc}
# meson test points LD_LIBRARY_PATH at the build folder; the programs below
# must find the installed libferry.so.
unset LD_LIBRARY_PATH
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	[ -f "$tmp/out" ] && sed 's/^/#   /' "$tmp/out"
}
skip_rest() {
	while [ "$n" -lt 5 ]; do
		n=$((n + 1))
		echo "ok $n - # SKIP $1"
	done
}

echo "1..5"

option() {
	python3 - "$build/meson-info/intro-buildoptions.json" "$1" <<'PY'
import json, sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == sys.argv[2]:
        print(o["value"])
PY
}
# libdir and includedir may be given relative to prefix or absolute.
under_prefix() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
prefix=$(option prefix)
libdir=$(under_prefix "$(option libdir)")
includedir=$(under_prefix "$(option includedir)")
sanitize=$(option b_sanitize)
san=()
[ "$sanitize" != none ] && san=("-fsanitize=$sanitize")

dest=$tmp/dest
if meson install -C "$build" --destdir "$dest" --no-rebuild --quiet \
	>"$tmp/out" 2>&1 && [ -f "$dest$libdir/pkgconfig/ferry.pc" ]; then
	ok "meson install into a DESTDIR"
else
	not_ok "meson install into a DESTDIR"
	skip_rest "nothing installed"
	exit 1
fi

mkdir "$tmp/pc"
sed "s|^prefix=.*|prefix=$dest$prefix|" "$dest$libdir/pkgconfig/ferry.pc" \
	>"$tmp/pc/ferry.pc"
export PKG_CONFIG_PATH=$tmp/pc

# 2. Nothing but -I<include folder>: no -include, -march, -D or other
# packages' folders.
cflags=$(echo $(pkg-config --cflags ferry))
bad=
for f in $cflags; do
	[ "$f" = "-I$dest$includedir" ] || bad="$bad $f"
done
if [ -n "$cflags" ] && [ -z "$bad" ]; then
	ok "pkg-config --cflags ferry: $cflags"
else
	echo "pkg-config --cflags ferry: $cflags" >"$tmp/out"
	not_ok "pkg-config --cflags ferry names only ferry's include folder"
fi

# 3. NEEDED libX.so.N -> -lX.
static_libs=$(echo $(pkg-config --static --libs ferry))
missing=
for lib in $(readelf -d "$dest$libdir/libferry.so" |
	sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	case $lib in
	libc.so.* | ld-linux* | libm.so.* | libpthread.so.* | libdl.so.* | \
	librt.so.* | libasan.so.* | libubsan.so.* | libgcc_s.so.*) continue ;;
	esac
	name=${lib#lib}
	name=${name%%.so*}
	case " $static_libs " in
	*" -l$name "*) ;;
	*) missing="$missing $lib" ;;
	esac
done
if [ -z "$missing" ]; then
	ok "pkg-config --static --libs ferry names every NEEDED library"
else
	echo "missing:$missing; --static --libs: $static_libs" >"$tmp/out"
	not_ok "pkg-config --static --libs ferry names every NEEDED library"
fi

# 4. Shared.
if "$cc" "${san[@]}" -o "$tmp/echo-shared" "$root/examples/echo.c" \
	$cflags $(pkg-config --libs ferry) -Wl,-rpath,"$dest$libdir" \
	>"$tmp/out" 2>&1 &&
	"$tmp/echo-shared" "shared" >"$tmp/out" 2>&1 &&
	grep -qx "reply: shared" "$tmp/out" &&
	ldd "$tmp/echo-shared" >"$tmp/ldd" &&
	grep -q "$dest$libdir/libferry.so" "$tmp/ldd"; then
	ok "examples/echo.c against the installed libferry.so"
else
	not_ok "examples/echo.c against the installed libferry.so"
fi

# 5. Static libferry: -lferry would take the .so, so name the archive.
libs=$(echo " $static_libs " | sed 's/ -lferry / -l:libferry.a /')
libs=$(echo $libs)
if "$cc" "${san[@]}" -o "$tmp/echo-static" "$root/examples/echo.c" \
	$cflags $libs >"$tmp/out" 2>&1 &&
	readelf -d "$tmp/echo-static" >"$tmp/dynamic" &&
	! grep -q "libferry" "$tmp/dynamic" &&
	"$tmp/echo-static" "static" >"$tmp/out" 2>&1 &&
	grep -qx "reply: static" "$tmp/out"; then
	ok "examples/echo.c against libferry.a: $libs"
else
	not_ok "examples/echo.c against libferry.a with pkg-config --static --libs"
fi
exit $failed
