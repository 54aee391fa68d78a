#!/usr/bin/env bash
# make run: start skiff server on this machine in the background, wait until
# it is ready, show a few kubectl commands working, and say what to do next.
# `scripts/run.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${DATA_DIR:-/var/lib/skiff}
BIN=$PWD/bin/skiff
PIDFILE=$DATA_DIR/server.pid
LOG=$DATA_DIR/server.log
KUBECONFIG=$DATA_DIR/admin.kubeconfig
export KUBECONFIG

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [[ ${1:-} == stop ]]; then
  if running; then
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 1 100); do running || break; sleep 0.1; done
    echo "skiff server stopped"
  else
    echo "skiff server is not running"
  fi
  rm -f "$PIDFILE"
  exit 0
fi

mkdir -p "$DATA_DIR"
if running; then
  echo "skiff server already running (pid $(cat "$PIDFILE")); restarting it with the new build"
  "$0" stop
fi
start=$(date +%s.%N)
nohup "$BIN" server --data-dir "$DATA_DIR" >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 300); do
  if grep -q "skiff server is ready" "$LOG" 2>/dev/null; then break; fi
  if ! running; then echo "skiff server failed to start; its log:" >&2; cat "$LOG" >&2; exit 1; fi
  sleep 0.1
done
grep -q "skiff server is ready" "$LOG" || { echo "skiff server not ready after 30s; see $LOG" >&2; exit 1; }
printf 'skiff server is ready (%.1fs)\n\n' "$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo 0)"

k() { echo "\$ skiff kubectl $*"; "$BIN" kubectl "$@"; echo; }
k get namespaces
k apply -f examples/demo.yaml
k get deployments,services,configmaps -l app=demo -o wide

cat <<MSG
Skiff is running (pid $(cat "$PIDFILE"), log $LOG).

  export KUBECONFIG=$KUBECONFIG
  kubectl get all -A              # any kubectl works; so does: $BIN kubectl ...
  kubectl explain deployment.spec
  make stop                       # stop the server (state stays in $DATA_DIR)

The scheduler and controllers are running, but this build has no node agent
yet, so the demo's pods wait as Pending for a node. To see them scheduled and
"run" on simulated nodes (no containers):

  $BIN sim --nodes 3 &            # then: kubectl get pods -o wide
MSG
