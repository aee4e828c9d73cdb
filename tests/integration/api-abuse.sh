#!/usr/bin/env bash
# The bounded run of the HTTP abuse tester (tests/fuzz/http-abuse.sh):
# slowloris, huge headers and URLs, long-poll floods and a VM removed while
# its routes are hammered, for HTTP_ABUSE_SECONDS (default 20 s), under the
# build make check runs (ASan+UBSan). The long run: make fuzz-long.
exec bash "$(dirname "$0")/../fuzz/http-abuse.sh" "${HTTP_ABUSE_SECONDS:-20}"
