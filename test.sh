#!/usr/bin/env bash
# The test command of the README: every test target, in a release build (the numeric tests are
# 10-200x slower in debug builds, see README).
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product verify
swift test -c release "$@"
