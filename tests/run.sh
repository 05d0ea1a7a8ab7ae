#!/usr/bin/env bash
# The test command of the README. Needs only the .NET SDK: SQLite comes with Microsoft.Data.Sqlite, TorchSharp's
# natives come from NuGet and are made loadable by the repo's own build (Directory.Build.targets).
# Builds once, runs every test project, and ends with a plain "N passed, N failed" line.
# Tests that need PostgreSQL get a private server started here (tests/postgres.sh: apt-get installs it when missing
# and we are root); without one they are reported as skipped, unless SELFPLAY_REQUIRE_POSTGRES=1 (CI) makes that fatal.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${SELFPLAY_TEST_POSTGRES:-}" ]; then
  source tests/postgres.sh
  trap postgres_stop EXIT
  if ! postgres_start; then
    if [ "${SELFPLAY_REQUIRE_POSTGRES:-0}" = 1 ]; then echo "0 passed, 1 failed, 0 skipped (PostgreSQL could not be started)"; exit 1; fi
    echo "WARNING: no PostgreSQL; the PostgreSQL tests will be skipped" >&2
  fi
fi

# The dashboard test drives a real headless browser.
source tests/chromium.sh
chromium_install || echo "WARNING: no chromium; the dashboard's browser test will fail" >&2

results="$(pwd)/tests/TestResults"
rm -rf "$results"
mkdir -p "$results"

dotnet build SelfPlay.sln -nologo -v:q -clp:ErrorsOnly || { echo "0 passed, 1 failed, 0 skipped (build failed)"; exit 1; }

dotnet test SelfPlay.sln --no-build -nologo -v:q \
  --logger "trx;LogFilePrefix=selfplay" --results-directory "$results" "$@"
status=$?

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(echo "$counters" | grep -o ' passed="[0-9]*"' | grep -o '[0-9]*'); f=$(echo "$counters" | grep -o ' failed="[0-9]*"' | grep -o '[0-9]*')
  # A skipped test is counted in total but not in executed.
  t=$(echo "$counters" | grep -o ' total="[0-9]*"' | grep -o '[0-9]*'); e=$(echo "$counters" | grep -o ' executed="[0-9]*"' | grep -o '[0-9]*')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${t:-0} - ${e:-0}))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
