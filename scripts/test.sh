#!/usr/bin/env bash
# Sets up and builds aha if needed, then runs the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
ctest --test-dir "${AHA_BUILD_DIR:-$root/build}" --output-on-failure -j "$(nproc)" "$@"
