#!/usr/bin/env bash
# R1-Zero from a fresh clone: set up and build aha if needed, then run recipes/r1-zero-tiny.json,
# which builds a tiny base model (pretraining on worked problems and prose, never the R1-Zero
# template; reused on later runs) and trains it with GRPO on accuracy + format rewards, with
# held-out accuracy measured before, during and after. About 10 minutes on a 2-core CPU from a
# fresh clone (README.md gives the measured parts); it builds only the aha command.
#   ./scripts/r1-zero-tiny.sh [--set key=value ...]     (extra arguments go to `aha train`)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" aha  # the command only, not the test suites
aha="${AHA_BUILD_DIR:-$root/build}/aha"
cd "$root"
run_dir="runs/r1-zero-tiny-$(date +%Y%m%d-%H%M%S)"
"$aha" train recipes/r1-zero-tiny.json --run-dir "$run_dir" "$@"
cat <<MSG

Where to look:
  $run_dir/run.db          every metric, sample and checkpoint of the run (SQLite), e.g.
      sqlite3 $run_dir/run.db "select step, value from metrics where name = 'eval/accuracy'"
      sqlite3 $run_dir/run.db "select step, round(value, 3) from metrics where name = 'reward/format'"
      sqlite3 $run_dir/run.db "select completion from samples order by step desc, idx limit 3"
  $run_dir/checkpoints/grpo/  the trained policy in Hugging Face format (model/), loadable by transformers
Evaluate the trained model again (pass@1, maj@k, format rate; report under the run directory):
  $aha eval --model \$(ls -d $run_dir/checkpoints/grpo/step-*/model | tail -1) \\
      --data '{"synthetic": "arithmetic", "n": 500, "seed": 12, "difficulty": 2, "split": "heldout"}'
MSG
