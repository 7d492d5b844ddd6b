#!/usr/bin/env bash
# The test command of the README: every test target in a release build (the numeric tests are
# 10-200x slower in debug builds), after an end-to-end `verify reproduce --preset smoke` that must
# write all three result files, the same run as separate stage processes, with --jobs 2 (also
# beside a stage another process holds, and stopped and resumed; with --stop-after 0; carried to
# another folder by scripts/carry_run.sh), and `verify ablate --preset smoke`.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product verify
smoke_run=.build/ci-smoke-run
swift run -c release verify reproduce --preset smoke --run "$smoke_run" --fresh
for f in results.md results.csv results.json report.html pictures/efficiency.svg pictures/segmentation.png \
  pictures/representation.png pictures/propagation.png; do
  if [ ! -s "$smoke_run/$f" ]; then
    echo "test.sh: verify reproduce --preset smoke did not write $smoke_run/$f" >&2
    exit 1
  fi
done
echo "test.sh: smoke reproduction wrote results.md, results.csv, results.json, report.html and pictures/"

# verify ablate --preset smoke: the reduced grid (one value per factor besides the preset's), its
# preset point copied from the smoke reproduction (--reuse: the same stages, same seeds), every other
# point computed; it must write the tables, the plots and the spatial-identity equivariance figures.
ablate_run=.build/ci-smoke-ablate
swift run -c release verify ablate --preset smoke --run "$ablate_run" --fresh --reuse "$smoke_run" > "$ablate_run.log" 2>&1 ||
  { tail -n 20 "$ablate_run.log" >&2; exit 1; }
for f in results.md results.csv results.json pictures/ablation-D.svg pictures/ablation-spatial.svg \
  points/preset/stages/pretrain-infoNCE.json points/spatial-identity/stages/equivariance.json; do
  if [ ! -s "$ablate_run/$f" ]; then
    echo "test.sh: verify ablate --preset smoke did not write $ablate_run/$f" >&2
    exit 1
  fi
done
grep -q "reuse .*11 finished stage(s) copied" "$ablate_run.log"
echo "test.sh: smoke ablation wrote results.md, results.csv, results.json and pictures/ablation-*.svg"

# The same smoke reproduction as separate stage processes, two at a time, level by level (what a
# job scheduler does with --list-stages and --stage), then the plain command to assemble the table:
# results.csv must equal the single-process run's byte for byte.
verify="$(swift build -c release --show-bin-path)/verify"
staged=.build/ci-smoke-staged
staged_log=.build/ci-smoke-staged.log
rm -rf "$staged" "$staged_log"
"$verify" reproduce --preset smoke --list-stages > "$staged_log.stages"
for level in $(awk '{ print $1 }' "$staged_log.stages" | sort -un); do
  if ! awk -v level="$level" '$1 == level { print $2 }' "$staged_log.stages" |
    xargs -P 2 -I{} "$verify" reproduce --preset smoke --run "$staged" --stage {} >> "$staged_log" 2>&1; then
    tail -n 20 "$staged_log" >&2
    echo "test.sh: a stage process of level $level failed (log: $staged_log)" >&2
    exit 1
  fi
done
"$verify" reproduce --preset smoke --run "$staged" >> "$staged_log" 2>&1
cmp "$smoke_run/results.csv" "$staged/results.csv"
echo "test.sh: the smoke reproduction run as separate stage processes gave the same results.csv"

# And with --jobs 2: the stages in two child processes at a time, the same results.csv.
jobs_run=.build/ci-smoke-jobs
"$verify" reproduce --preset smoke --run "$jobs_run" --fresh --jobs 2 > "$jobs_run.log" 2>&1 ||
  { tail -n 20 "$jobs_run.log" >&2; exit 1; }
cmp "$smoke_run/results.csv" "$jobs_run/results.csv"
echo "test.sh: verify reproduce --jobs 2 gave the same results.csv"

# --stop-after 0: every stage's estimate ends past the deadline, so none starts; the command says
# so, exits 0 and writes no table (the folder resumes).
stop_run=.build/ci-smoke-stop
"$verify" reproduce --preset smoke --run "$stop_run" --fresh --jobs 2 --stop-after 0 > "$stop_run.log" 2>&1 ||
  { tail -n 20 "$stop_run.log" >&2; exit 1; }
grep -q "^--stop-after: .* stage(s) left for a later run" "$stop_run.log"
if compgen -G "$stop_run/stages/*.json" > /dev/null || [ -e "$stop_run/results.csv" ]; then
  echo "test.sh: --stop-after 0 computed a stage or wrote a table (log: $stop_run.log)" >&2
  exit 1
fi
echo "test.sh: --stop-after 0 started no stage and wrote no table"

# A run folder carried to another place by scripts/carry_run.sh (what moves a run between machines
# that share only a git repository): the plain command assembles the same results.csv from the
# carried stages and trains nothing.
carried=.build/ci-smoke-carried
rm -rf "$carried" "$carried.record"
scripts/carry_run.sh save "$jobs_run" "$carried.record" > /dev/null
scripts/carry_run.sh restore "$carried.record" "$carried" > /dev/null
"$verify" reproduce --preset smoke --run "$carried" > "$carried.log" 2>&1 || { tail -n 20 "$carried.log" >&2; exit 1; }
if grep -q "step/s" "$carried.log"; then
  echo "test.sh: the carried run folder trained again (log: $carried.log)" >&2
  exit 1
fi
cmp "$smoke_run/results.csv" "$carried/results.csv"
echo "test.sh: a run folder carried by scripts/carry_run.sh gave the same results.csv without training"

# --jobs 2 beside another live process that holds a stage (a sleep standing in for a --stage
# process; its lock names this host and its pid): the parent leaves the stage alone until its holder
# ends, then computes it. Stopped by SIGTERM midway, the parent stops its children; the same command
# resumes. The same results.csv.
held_run=.build/ci-smoke-held
rm -rf "$held_run" "$held_run.log" && mkdir -p "$held_run/stages"
sleep 20 &
holder=$!
printf '%s %s' "$(hostname)" "$holder" > "$held_run/stages/pretrain-infoNCE.lock"
timeout 600 "$verify" reproduce --preset smoke --run "$held_run" --jobs 2 > "$held_run.log" 2>&1 &
parent=$!
sleep 30
kill -TERM "$parent"
wait "$parent" || true
if pgrep -f -- "--run $held_run " > /dev/null; then
  echo "test.sh: stage processes of $held_run still ran after their parent was stopped" >&2
  exit 1
fi
timeout 600 "$verify" reproduce --preset smoke --run "$held_run" --jobs 2 >> "$held_run.log" 2>&1 ||
  { tail -n 20 "$held_run.log" >&2; exit 1; }
tr '\r' '\n' < "$held_run.log" | grep -q "pretrain-infoNCE (process .*): held"
grep -q "interrupted; stopped" "$held_run.log"
cmp "$smoke_run/results.csv" "$held_run/results.csv"
echo "test.sh: --jobs 2 waited for a stage another process held, stopped its children on SIGTERM, resumed: the same results.csv"

# verify profile checks every kernel and a whole step against the reference before timing them.
"$verify" profile --preset tiny > .build/ci-profile-tiny.txt ||
  { tail -n 20 .build/ci-profile-tiny.txt >&2; exit 1; }
grep -q "all results match" .build/ci-profile-tiny.txt
echo "test.sh: verify profile --preset tiny: all results match"
swift test -c release "$@"
