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
    if [[ -d $DATA_DIR/agent ]]; then
      "$BIN" agent --cleanup --data-dir "$DATA_DIR/agent" && echo "its containers are removed"
    fi
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

for _ in $(seq 1 600); do
  if grep -q "is Ready" "$LOG" 2>/dev/null; then break; fi
  if ! running; then echo "skiff server stopped; its log:" >&2; cat "$LOG" >&2; exit 1; fi
  sleep 0.1
done
grep -q "is Ready" "$LOG" || { echo "the node did not become Ready in 60s; see $LOG" >&2; exit 1; }
grep "is Ready" "$LOG" | tail -1

k() { echo "\$ skiff kubectl $*"; "$BIN" kubectl "$@"; echo; }
k get nodes -o wide
k apply -f examples/demo.yaml
k rollout status deployment/demo --timeout=120s
k get pods -l app=demo -o wide

# A pod that is not on its way out (a re-run may still be replacing old ones).
read -r pod ip < <("$BIN" kubectl get pods -l app=demo --no-headers \
  -o custom-columns=NAME:.metadata.name,IP:.status.podIP,GONE:.metadata.deletionTimestamp | awk '$3 == "<none>" {print $1, $2; exit}')
echo "\$ curl http://$ip:8080/      # a demo pod, straight on the pod network"
curl -fsS "http://$ip:8080/"
echo
echo "\$ curl -H 'Host: demo.local' http://127.0.0.1/      # through the built-in ingress controller"
for _ in $(seq 1 50); do curl -fsS -H 'Host: demo.local' http://127.0.0.1/ 2>/dev/null && break; sleep 0.2; done
echo
k get ingress demo
"$BIN" kubectl delete pod check --ignore-not-found --wait=false >/dev/null 2>&1 || true
"$BIN" kubectl run check --restart=Never --image=busybox -- sleep 300 >/dev/null
"$BIN" kubectl wait --for=condition=Ready pod/check --timeout=60s >/dev/null
k exec check -- wget -qO- http://demo/     # by Service name, from inside a pod
"$BIN" kubectl delete pod check --wait=false >/dev/null
k get svc demo
k get endpointslices -l kubernetes.io/service-name=demo
k logs "$pod" --tail=3

cat <<MSG
Skiff is running (pid $(cat "$PIDFILE"), log $LOG): one node, with the demo
Deployment's three pods running in containerd on this machine, its Service
on a ClusterIP and in the cluster DNS, and its Ingress on port 80.

  export KUBECONFIG=$KUBECONFIG
  kubectl get pods -o wide         # any kubectl works; so does: $BIN kubectl ...
  kubectl logs -f deploy/demo
  kubectl create deployment web --image=nginx && kubectl exec -it deploy/web -- sh
  kubectl port-forward deploy/demo 8080:8080 & curl localhost:8080
  kubectl run -it --rm shell --image=busybox --restart=Never -- sh
  kubectl top pods
  kubectl expose deploy/demo --name=demo-lb --type=LoadBalancer --port=8081 --target-port=http
  kubectl get svc demo-lb          # EXTERNAL-IP: this node's address; curl it on port 8081
  make stop                        # stop the server and remove its containers (state stays in $DATA_DIR)

Images are local builds standing in for the public ones (busybox, nginx,
skiff.local/demo); see README.
MSG
