#!/bin/sh
# run.sh - builds the libFuzzer targets of tests/fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS
# (default 30), bounded. By hand or `make fuzz`; not part of `make test`.
# A crash leaves its input in build-fuzz/ and makes this script fail.
set -eu
cd "$(dirname "$0")/../.."
SECONDS_EACH=${FUZZ_SECONDS:-30}
OUT=build-fuzz
mkdir -p "$OUT"
command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
LIBSRC=$(ls lib/util/*.c lib/mail/*.c lib/smtp/*.c lib/tls/*.c)
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -g -O1 -Ilib -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
status=0
for t in tests/fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    # shellcheck disable=SC2086
    clang $CFLAGS -o "$OUT/$name" "$t" $LIBSRC -ldb -lcrypt -lssl -lcrypto
    mkdir -p "$OUT/corpus-$name"
    echo "== $name ($SECONDS_EACH s)"
    if ! (cd "$OUT" && "./$name" -max_total_time="$SECONDS_EACH" -max_len=65536 \
            -print_final_stats=1 "corpus-$name" 2>"$name.log"); then
        tail -30 "$OUT/$name.log"
        status=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$name.log" || true
    fi
done
exit $status
