#!/usr/bin/env bash
# The stats core does no I/O (issue 12): nothing in stats/ includes stdio.h
# (or the headers of file descriptors) or calls open/read/write, their stdio
# forms, fsync or printf. The daemon reads and writes the files (common/
# dt_file, daemon/state.c); stats/ encodes and decodes bytes in memory.
# Comments are stripped first (gcc -fpreprocessed), so prose may say "read".
# Negative controls: a copy of stats/ with one such include, and one with
# one such call, must each be caught.
source "$(dirname "$0")/../lib/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v gcc >/dev/null || skip "gcc is missing"
CALLS='(open|openat|creat|read|write|pread|pwrite|readv|writev|close|lseek|fsync|fdatasync|ftruncate|mmap|fopen|fdopen|fmemopen|open_memstream|fread|fwrite|fclose|fgetc|fgets|fputs|fprintf|printf|puts|perror|syslog)'
HEADERS='(stdio\.h|fcntl\.h|unistd\.h|sys/mman\.h|syslog\.h)'
# check DIR: prints each offence, status 1 if any
check() {
	local dir=$1 bad=0 f
	for f in "$dir"/*.c "$dir"/*.h; do
		[ -f "$f" ] || continue
		if grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]$HEADERS[>\"]" "$f"; then
			echo "  ^ $f includes an I/O header"
			bad=1
		fi
		if gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null |
			grep -nE "(^|[^A-Za-z0-9_.>])$CALLS[[:space:]]*\(" ; then
			echo "  ^ $f calls an I/O function"
			bad=1
		fi
	done
	return $bad
}
n=$(ls "$SRC"/stats/*.[ch] | wc -l)
[ "$n" -gt 5 ] || fail "stats/ has only $n files: wrong directory?"
out=$(check "$SRC/stats") || fail "the stats core does I/O:
$out"
echo "ok: none of the $n files of stats/ includes an I/O header or calls an I/O function"

# Negative controls: each offence alone is caught.
cp -r "$SRC/stats" "$TMP/inc"
sed -i '0,/#include/s//#include <stdio.h>\n#include/' "$TMP/inc/dt_persist.c"
check "$TMP/inc" >/dev/null && fail "negative control: an #include <stdio.h> in stats/dt_persist.c is not caught"
cp -r "$SRC/stats" "$TMP/call"
printf '\nint dt_x_io(int fd, void *p);\nint dt_x_io(int fd, void *p)\n{\n\treturn (int)read(fd, p, 1); /* read( */\n}\n' >>"$TMP/call/dt_stats.c"
check "$TMP/call" >/dev/null && fail "negative control: a read() call in stats/dt_stats.c is not caught"
# ... and a comment that says read( is not an offence.
cp -r "$SRC/stats" "$TMP/comment"
printf '\n/* the caller may read(2) or fopen() it */\n' >>"$TMP/comment/dt_stats.c"
check "$TMP/comment" >/dev/null || fail "a comment mentioning read( is taken for a call"
echo "ok: negative controls: an I/O include and an I/O call are caught, a comment is not"
