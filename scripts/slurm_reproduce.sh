#!/usr/bin/env bash
# Spreads `verify reproduce` over a Slurm cluster: one job array per level of the plan's stages,
# each level waiting for the one before (afterok), then one job that assembles the table. The run
# folder must be on a file system every node sees; the package must be built there first
# (`swift build -c release --product verify`).
#
#   scripts/slurm_reproduce.sh RUN_FOLDER [verify reproduce options, e.g. --preset cpu --seed 1]
#
# Every job gets the same options, so each stage sees the same plan. Stages draw their randomness
# from their own names, so the table equals a single-process run's. The jobs run in the package
# folder, so they share its phantom cache (.cache/, generated once, by whichever job comes first).
# Tried on a one-node Slurm 22.05 (Debian's slurm-wlm) with --preset smoke: results.csv equal
# byte for byte to a single-process run's; test.sh runs the same stages with xargs -P 2.
set -euo pipefail
run=${1:?usage: scripts/slurm_reproduce.sh RUN_FOLDER [verify reproduce options]}
shift
mkdir -p "$run"
run=$(cd "$run" && pwd)  # absolute: the jobs run in the package folder, not in the caller's
cd "$(dirname "$0")/.."
verify="$(swift build -c release --show-bin-path)/verify"
"$verify" reproduce "$@" --list-stages > "$run/stages.txt"
dependency=()
for level in $(awk '{ print $1 }' "$run/stages.txt" | sort -un); do
  awk -v level="$level" '$1 == level { print $2 }' "$run/stages.txt" > "$run/stages-$level.txt"
  count=$(wc -l < "$run/stages-$level.txt")
  job=$(sbatch --parsable "${dependency[@]}" --array="1-$count" --cpus-per-task=2 --job-name="pix2rep-$level" \
    --output="$run/slurm-%A_%a.out" \
    --wrap "\"$verify\" reproduce $* --run \"$run\" --stage \"\$(sed -n \"\${SLURM_ARRAY_TASK_ID}p\" \"$run/stages-$level.txt\")\"")
  dependency=(--dependency="afterok:$job")
done
sbatch "${dependency[@]}" --cpus-per-task=2 --job-name=pix2rep-table --output="$run/slurm-table.out" \
  --wrap "\"$verify\" reproduce $* --run \"$run\""
