#!/usr/bin/env bash
# The test command of the README: every test target in a release build (the numeric tests are
# 10-200x slower in debug builds), after an end-to-end `verify reproduce --preset smoke` that must
# write all three result files.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product verify
smoke_run=.build/ci-smoke-run
swift run -c release verify reproduce --preset smoke --run "$smoke_run" --fresh
for f in results.md results.csv results.json report.html pictures/efficiency.svg pictures/segmentation.png \
  pictures/representation.png; do
  if [ ! -s "$smoke_run/$f" ]; then
    echo "test.sh: verify reproduce --preset smoke did not write $smoke_run/$f" >&2
    exit 1
  fi
done
echo "test.sh: smoke reproduction wrote results.md, results.csv, results.json, report.html and pictures/"
swift test -c release "$@"
