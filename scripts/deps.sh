#!/bin/sh
# Install, with apt-get and only when missing, the Debian packages that the
# build and the tests need ("test") or that the benchmarks need ("bench").
set -e
want="gcc make pkg-config clang libev-dev libssl-dev libbrotli-dev zlib1g-dev
liblmdb-dev libcmocka-dev libpcre2-dev libnghttp2-dev libhiredis-dev redis-server curl openssl python3
python3-pytest python3-brotli python3-h2 valgrind iproute2 libclang-rt-dev"
if [ "${1:-test}" = bench ]; then
    want="$want wrk nginx varnish nghttp2-client util-linux"
fi
missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: not root and no sudo; install these packages:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
