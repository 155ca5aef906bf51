#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs a built fabric tree into temporary prefixes and builds and runs
# tests/install/consumer against them, the ways a user would:
#   1. find_package(fabric), shared libraries (the default when installed)
#   2. find_package(fabric) with -Dfabric_SHARED_LIBS=OFF: static libraries
#   3. pkg-config --cflags --libs fabric: shared libraries
#   4. pkg-config --static, in a prefix holding only the static libraries
# It also checks the installed tree: SONAMEs, no codec/ or internal/ header,
# no zmq/msgpack include, every fabric include resolvable inside the prefix,
# and the two binaries. Nothing is rebuilt; registered with ctest by
# tests/install/CMakeLists.txt.
#
# Usage: install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR CXX GENERATOR
set -euo pipefail

build=$1 source=$2 work=$3 cxx=$4 generator=$5
consumer_src=$source/tests/install/consumer
step_timeout=120

fail() {
  echo "install_test: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }
# run_bounded CMD...: runs CMD with the per-step time limit.
run_bounded() { timeout --kill-after=5 "$step_timeout" "$@"; }

rm -rf "$work"
mkdir -p "$work"
both=$work/prefix          # static + shared libraries, headers, binaries
static_only=$work/prefix-static

step "cmake --install into $both"
run_bounded cmake --install "$build" --prefix "$both" >"$work/install.log"
step "cmake --install --component fabric_dev, fabric_static into $static_only"
for component in fabric_dev fabric_static; do
  run_bounded cmake --install "$build" --prefix "$static_only" \
    --component "$component" >>"$work/install.log"
done

pc=$(find "$both" -name fabric.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n $pc ]] || fail "no fabric.pc installed"
libdir=$(dirname "$(dirname "$pc")")
libdir_rel=${libdir#"$both"/}
[[ -f $libdir/cmake/fabric/fabricConfig.cmake ]] ||
  fail "no fabricConfig.cmake in $libdir/cmake/fabric"
[[ -f $libdir/cmake/fabric/fabricConfigVersion.cmake ]] ||
  fail "no fabricConfigVersion.cmake"

step "installed tree"
(cd "$both" && find . \( -type f -o -type l \) | LC_ALL=C sort)

step "shared libraries carry their SONAME"
for module in base codec spool peers discovery node work_queue pubsub reqrep; do
  lib=$libdir/libfabric_$module.so
  [[ -f $libdir/libfabric_$module.a ]] || fail "no libfabric_$module.a"
  [[ -L $lib ]] || fail "no $lib (namelink)"
  soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
  [[ $soname == "libfabric_$module.so.0" ]] ||
    fail "$lib: SONAME '$soname', want libfabric_$module.so.0"
  [[ -e $libdir/$soname ]] || fail "no $libdir/$soname"
done
if find "$static_only" -name '*.so*' | grep -q .; then
  fail "the fabric_static component installed shared libraries"
fi

step "public headers only"
include=$both/include
[[ -f $include/fabric/version.h ]] || fail "no fabric/version.h"
leaks=$(cd "$include" && find . -path '*/codec/*' -o -path '*/internal/*')
[[ -z $leaks ]] || fail "private headers installed: $leaks"
if grep -rnE '#include [<"](zmq|msgpack)' "$include"; then
  fail "an installed header includes zmq or msgpack"
fi
# Every fabric header an installed header includes is installed too.
while IFS= read -r inc; do
  [[ -f $include/$inc ]] || fail "installed headers include missing $inc"
done < <(grep -rhoE '#include [<"]fabric/[^>"]+' "$include" |
  sed -E 's/#include [<"]//' | sort -u)

step "binaries"
for binary in fabric fabric-relay; do
  [[ -x $both/bin/$binary ]] || fail "no bin/$binary"
done
run_bounded "$both/bin/fabric" --help >/dev/null

# check_links BINARY shared|static: the consumer links fabric as expected.
check_links() {
  local needed
  needed=$(readelf -d "$1" | grep -c 'NEEDED.*libfabric_' || true)
  if [[ $2 == shared ]]; then
    readelf -d "$1" | grep -q 'NEEDED.*\[libfabric_work_queue\.so\.0\]' ||
      fail "$1 does not load libfabric_work_queue.so.0"
  elif ((needed != 0)); then
    fail "$1 loads fabric shared libraries; want them static"
  fi
}

# cmake_consumer NAME PREFIX KIND [CMAKE ARGS...]
cmake_consumer() {
  local name=$1 prefix=$2 kind=$3
  shift 3
  step "consumer: find_package, $kind ($name)"
  run_bounded cmake -S "$consumer_src" -B "$work/$name" -G "$generator" \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" "$@" \
    >"$work/$name.configure.log" || {
    cat "$work/$name.configure.log"
    fail "configuring the consumer ($name)"
  }
  grep -q "$kind libraries" "$work/$name.configure.log" ||
    fail "$name: fabricConfig.cmake did not load the $kind libraries"
  run_bounded cmake --build "$work/$name" || fail "building $name"
  check_links "$work/$name/consumer" "$kind"
  run_bounded "$work/$name/consumer" || fail "running $name"
}

# pkgconfig_consumer NAME PREFIX KIND [PKG-CONFIG FLAGS...]
pkgconfig_consumer() {
  local name=$1 prefix=$2 kind=$3 flags
  shift 3
  step "consumer: pkg-config $*, $kind ($name)"
  flags=$(PKG_CONFIG_PATH=$prefix/$libdir_rel/pkgconfig \
    pkg-config "$@" --cflags --libs fabric) ||
    fail "pkg-config $* fabric"
  echo "flags: $flags"
  mkdir -p "$work/$name"
  # shellcheck disable=SC2086 # the flags are words
  run_bounded "$cxx" -std=c++20 -Wall -Wextra -Werror \
    "$consumer_src/main.cc" -o "$work/$name/consumer" $flags ||
    fail "building $name"
  check_links "$work/$name/consumer" "$kind"
  LD_LIBRARY_PATH=$prefix/$libdir_rel run_bounded "$work/$name/consumer" ||
    fail "running $name"
}

cmake_consumer cmake-shared "$both" shared
cmake_consumer cmake-static "$both" static -Dfabric_SHARED_LIBS=OFF
pkgconfig_consumer pkgconfig-shared "$both" shared
pkgconfig_consumer pkgconfig-static "$static_only" static --static

echo "install_test: ok"
