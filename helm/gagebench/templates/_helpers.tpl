{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "gagebench.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "gagebench.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Standard labels (app.kubernetes.io/*) on every object. */}}
{{- define "gagebench.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gagebench.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gagebench
{{- end }}

{{/* Labels that identify this release's objects. */}}
{{- define "gagebench.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gagebench.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The image every pod of the run uses. */}}
{{- define "gagebench.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The ServiceAccount name. */}}
{{- define "gagebench.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gagebench.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding S3 credentials ("" = none). */}}
{{- define "gagebench.s3SecretName" -}}
{{- if .Values.s3.inlineCredentials.enabled }}
{{- printf "%s-s3" (include "gagebench.fullname" .) }}
{{- else }}
{{- .Values.s3.existingSecret }}
{{- end }}
{{- end }}

{{/* Secret key names: env var -> key in the Secret. */}}
{{- define "gagebench.s3SecretKeys" -}}
{{- $keys := dict }}
{{- if .Values.s3.inlineCredentials.enabled }}
{{- $_ := set $keys "AWS_ACCESS_KEY_ID" "AWS_ACCESS_KEY_ID" }}
{{- $_ := set $keys "AWS_SECRET_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY" }}
{{- else if .Values.s3.existingSecret }}
{{- $_ := set $keys "AWS_ACCESS_KEY_ID" .Values.s3.accessKeyIdKey }}
{{- $_ := set $keys "AWS_SECRET_ACCESS_KEY" .Values.s3.secretAccessKeyKey }}
{{- if .Values.s3.sessionTokenKey }}
{{- $_ := set $keys "AWS_SESSION_TOKEN" .Values.s3.sessionTokenKey }}
{{- end }}
{{- end }}
{{- toJson $keys }}
{{- end }}

{{/* Plain S3 environment (region, endpoint) shared by controller, Dask pods and test pod. */}}
{{- define "gagebench.s3PlainEnv" -}}
{{- $env := dict }}
{{- if .Values.s3.region }}
{{- $_ := set $env "AWS_DEFAULT_REGION" .Values.s3.region }}
{{- $_ := set $env "AWS_REGION" .Values.s3.region }}
{{- end }}
{{- if .Values.s3.endpointUrl }}
{{- $_ := set $env "AWS_ENDPOINT_URL" .Values.s3.endpointUrl }}
{{- $_ := set $env "AWS_ENDPOINT_URL_S3" .Values.s3.endpointUrl }}
{{- end }}
{{- toJson $env }}
{{- end }}

{{/* EnvVar list with the S3 settings and credentials (controller and test pod). */}}
{{- define "gagebench.s3EnvVars" -}}
{{- $secret := include "gagebench.s3SecretName" . }}
{{- range $name, $key := (include "gagebench.s3SecretKeys" . | fromJson) }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $key }}
{{- end }}
{{- range $name, $value := (include "gagebench.s3PlainEnv" . | fromJson) }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* The run id: a one-off Job's is fixed by the chart; each CronJob run gets a new one
("{time}" is replaced by the controller with the UTC start time). */}}
{{- define "gagebench.runId" -}}
{{- if .Values.config.run_id }}
{{- .Values.config.run_id }}
{{- else if not .Values.schedule }}
{{- printf "%s-%d" .Release.Name (int .Release.Revision) }}
{{- else }}
{{- printf "%s-{time}" .Release.Name }}
{{- end }}
{{- end }}

{{/*
Fail with a clear message when the kubernetes backend is chosen and the cluster lacks the
dask-kubernetes operator's CRDs. Offline rendering (helm template) has no cluster: `lookup`
returns nothing there, so in "auto" mode the check runs only against a live API server
(detected by reading the namespace's default ServiceAccount, which every namespace has).
*/}}
{{- define "gagebench.crdCheck" -}}
{{- if and (eq .Values.config.cluster.backend "kubernetes") (ne .Values.crdCheck "never") }}
{{- if not (.Capabilities.APIVersions.Has "kubernetes.dask.org/v1") }}
{{- $live := false }}
{{- if eq .Values.crdCheck "auto" }}
{{- $live = not (empty (lookup "v1" "ServiceAccount" .Release.Namespace "default")) }}
{{- end }}
{{- if or (eq .Values.crdCheck "always") $live }}
{{- fail "gagebench: the kubernetes backend needs the dask-kubernetes operator, but this cluster has no kubernetes.dask.org/v1 API (DaskCluster CRD). Install the operator first (operator/install.sh, or: helm install dask-kubernetes-operator dask/dask-kubernetes-operator --version 2026.3.0 -n dask-operator --create-namespace), or set config.cluster.backend=local, or crdCheck=never to skip this check." }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
