#!/bin/sh
# Build kmq's C coders (kmq._ctx1 and kmq._mix) with clang, AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage instrumentation into fuzz/build/, for the fuzz targets (see fuzz/README.md).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python}"
include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
mkdir -p "$here/build"
for coder in _ctx1 _mix; do
    clang -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link \
        -fno-sanitize-recover=undefined -shared -fPIC -I"$include" \
        "$here/../codec/$coder.c" -o "$here/build/$coder$suffix"
    echo "built $here/build/$coder$suffix"
done
