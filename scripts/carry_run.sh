#!/usr/bin/env bash
# Carries an unfinished run folder (of `verify reproduce` or `verify ablate`) between machines that
# share no file system: `save` copies its finished work into a record folder that can be committed
# or copied; `restore` puts a record back into a run folder, where the plain command goes on.
#
#   scripts/carry_run.sh save RUN_FOLDER RECORD_FOLDER
#   scripts/carry_run.sh restore RECORD_FOLDER RUN_FOLDER
#
# What is carried: config.json (the run's identity), log.txt, every finished stage's result and
# build record (every stages/ folder, an ablation's points/*/stages/ too) and the weights files
# (every weights/ folder: the pretrained backbones later stages read, the budget-1 runs the
# pictures draw). What is not:
# checkpoints of unfinished stages (each resumes only under the build that wrote it, and a stage
# in progress starts over on the other machine), locks, half-written files, the jobs' progress
# logs and the report, which the plain command rewrites from the stages. Finished stages from
# another build are used as they are; the report names every build that computed a stage.
# `restore` never overwrites a file the run folder already has.
set -euo pipefail
usage="usage: scripts/carry_run.sh save RUN_FOLDER RECORD_FOLDER | restore RECORD_FOLDER RUN_FOLDER"
action=${1:?$usage}
from=${2:?$usage}
to=${3:?$usage}
[ -d "$from" ] || { echo "carry_run.sh: $from: no such folder" >&2; exit 1; }
case "$action" in
  save)
    [ -f "$from/config.json" ] || { echo "carry_run.sh: $from: not a run folder (no config.json)" >&2; exit 1; }
    mkdir -p "$to"
    (cd "$from" && find . -type f \( -name config.json -o -name log.txt -o -path '*/stages/*' -o -path '*/weights/*' \) \
      ! -name '*.checkpoint' ! -name '*.lock' ! -name '*.partial' -print0 | sort -z | tar --null -T - -cf -) | (cd "$to" && tar -xf -)
    echo "carry_run.sh: saved $(find "$to" -path "*/stages/*.json" | wc -l) finished stage(s) of $from into $to"
    ;;
  restore)
    [ -f "$from/config.json" ] || { echo "carry_run.sh: $from: not a record of a run folder (no config.json)" >&2; exit 1; }
    mkdir -p "$to"
    (cd "$from" && find . -type f \( -name config.json -o -name log.txt -o -path '*/stages/*' -o -path '*/weights/*' \) -print0 \
      | sort -z | tar --null -T - -cf -) | (cd "$to" && tar --skip-old-files -xf -)
    echo "carry_run.sh: restored $from into $to; continue it with the command that started it, with --run $to"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
