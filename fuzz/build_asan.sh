#!/bin/sh
# Build kmq's C coder with clang, AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage instrumentation into fuzz/build/, for the fuzz targets (see fuzz/README.md).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python}"
include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
suffix="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
mkdir -p "$here/build"
clang -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link \
    -fno-sanitize-recover=undefined -shared -fPIC -I"$include" \
    "$here/../codec/_ctx1.c" -o "$here/build/_ctx1$suffix"
echo "built $here/build/_ctx1$suffix"
