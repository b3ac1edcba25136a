#!/usr/bin/env bash
# Runs Caravan's whole test suite on a fresh machine: restores, builds, starts what the tests
# need, runs every test, stops what it started, and ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
dotnet test --project tests/Caravan.Api.Tests/Caravan.Api.Tests.csproj "$@" 2>&1 | tee "$log" || status=$?

count() { grep -E "^\s*$1:\s*[0-9]+" "$log" | awk -F: '{s += $2} END {print s + 0}'; }
passed=$(count succeeded)
failed=$(count failed)
skipped=$(count skipped)
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
