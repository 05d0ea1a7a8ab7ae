#!/usr/bin/env bash
# A SelfPlay cluster on 127.0.0.1, for trying the cluster mode on one machine:
#   a private PostgreSQL (tests/postgres.sh: installed with apt-get when missing, run from a temp folder),
#   a seed node with the coordinator and replay roles, two search+inference nodes, a learner node,
# then `selfplay run --seed` runs a campaign on it. Everything it started is stopped by pid at the end, also on
# failure or Ctrl-C.
#
#   cluster/local-cluster.sh [--config FILE] [--run-dir DIR] [--set key=value]...
#
# Defaults: the quick campaign (hocon/campaigns/game24-quick.conf), run folder runs/cluster-<timestamp>.
set -uo pipefail
cd "$(dirname "$0")/.."

config=hocon/campaigns/game24-quick.conf
run_dir="runs/cluster-$(date +%Y%m%d-%H%M%S)"
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "local-cluster.sh: unknown option '$1' (--config FILE, --run-dir DIR, --set key=value)" >&2; exit 2 ;;
  esac
done

source tests/postgres.sh
pids=()
cleanup() {
  local i pid
  # Non-seed nodes first (the seed is pids[0]), so the seed does not wait for them to leave.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null && echo "local-cluster: pid $pid did not stop in 10 s, killed" >&2
  done
  [ ${#pids[@]} -gt 0 ] && echo "local-cluster: stopped node pids ${pids[*]}" >&2
  postgres_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "local-cluster: building" >&2
dotnet build src/SelfPlay.Cli -c Release -nologo -v:q -clp:ErrorsOnly >&2 || exit 1
selfplay=(dotnet src/SelfPlay.Cli/bin/Release/net10.0/selfplay.dll)

postgres_start || exit 1
database="selfplay_$(date +%s)"
postgres_as_owner "$POSTGRES_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -qc "CREATE DATABASE $database" || exit 1
mkdir -p "$run_dir/processes"
common=(--config "$config" --run-dir "$run_dir" "${sets[@]}"
        --set persistence.provider=postgres
        --set "persistence.connection-string=Host=127.0.0.1;Port=$POSTGRES_PORT;Database=$database;Username=postgres")

seed_port=$(postgres_free_port)
seed="127.0.0.1:$seed_port"
start_node() { # name roles port
  "${selfplay[@]}" node "${common[@]}" --roles "$2" --seed "$seed" --port "$3" >"$run_dir/processes/$1.out" 2>&1 &
  pids+=($!)
  echo "local-cluster: node $1 ($2) pid $! on 127.0.0.1:$3" >&2
}
wait_up() { # name
  for _ in $(seq 1 600); do
    grep -q "node up" "$run_dir/processes/$1.out" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "local-cluster: node $1 did not come up:" >&2; tail -20 "$run_dir/processes/$1.out" >&2; return 1
}

start_node seed coordinator,replay "$seed_port"
wait_up seed || exit 1
start_node search-1 search,inference "$(postgres_free_port)"
start_node search-2 search,inference "$(postgres_free_port)"
start_node learner learner "$(postgres_free_port)"
for n in search-1 search-2 learner; do wait_up "$n" || exit 1; done

echo "local-cluster: running the campaign (run folder $run_dir)" >&2
start=$(date +%s.%N)
"${selfplay[@]}" run "${common[@]}" --seed "$seed"
status=$?
echo "local-cluster: campaign exit code $status, $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s; node logs in $run_dir (node-*.log, processes/)" >&2
exit $status
