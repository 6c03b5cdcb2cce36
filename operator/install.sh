#!/usr/bin/env bash
# Install (or upgrade) the dask-kubernetes operator that gagebench's Helm chart needs:
# the CRDs (DaskCluster, DaskWorkerGroup, DaskAutoscaler, DaskJob) and the controller.
# Run once per Kubernetes cluster, as a cluster admin (it creates CRDs and a ClusterRole).
#
#   operator/install.sh                  # into namespace dask-operator
#   NAMESPACE=ops operator/install.sh
#
# Needs helm >= 3.8 and a kubeconfig pointing at the cluster. The version is pinned to the
# dask-kubernetes client inside the gagebench image (requirements/constraints.txt).
set -euo pipefail

OPERATOR_VERSION="2026.3.0"
NAMESPACE="${NAMESPACE:-dask-operator}"
RELEASE="${RELEASE:-dask-kubernetes-operator}"
HERE="$(cd "$(dirname "$0")" && pwd)"

helm upgrade --install "$RELEASE" dask-kubernetes-operator \
  --repo https://helm.dask.org \
  --version "$OPERATOR_VERSION" \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$HERE/values.yaml" \
  --wait --timeout 5m

# The chart's CRDs must be served before gagebench's chart is installed.
for crd in daskclusters daskworkergroups daskautoscalers daskjobs; do
  kubectl wait --for=condition=Established --timeout=120s "crd/${crd}.kubernetes.dask.org"
done
kubectl -n "$NAMESPACE" rollout status "deployment/${RELEASE}" --timeout=300s
echo "dask-kubernetes-operator ${OPERATOR_VERSION} ready in namespace ${NAMESPACE}"
