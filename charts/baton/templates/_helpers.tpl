{{/* Chart name, truncated to 63 characters. */}}
{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object name. */}}
{{- define "baton.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object (the component label is added per object). */}}
{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" . }}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: baton
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the controller pods. */}}
{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the controller watches, comma-separated (controller.watchNamespace, then
controller.watchNamespaces, each once); empty means all namespaces. */}}
{{- define "baton.watchNamespaces" -}}
{{- $list := list }}
{{- with .Values.controller.watchNamespace }}
{{- $list = append $list . }}
{{- end }}
{{- range .Values.controller.watchNamespaces }}
{{- $list = append $list . }}
{{- end }}
{{- if and (not $list) (eq .Values.rbac.scope "namespace") }}
{{- $list = list .Release.Namespace }}
{{- end }}
{{- join "," (uniq $list) }}
{{- end }}

{{/* The one namespace the dashboard is confined to, or empty for all; the dashboard watches one
namespace or all of them, so a controller watching several has none. */}}
{{- define "baton.dashboardNamespace" -}}
{{- $watched := include "baton.watchNamespaces" . }}
{{- if contains "," $watched }}
{{- fail (printf "dashboard.enabled: the dashboard watches one namespace or all, and the controller watches %s; install one release per namespace for dashboards, or set dashboard.enabled=false" $watched) }}
{{- end }}
{{- $watched }}
{{- end }}

{{- define "baton.leaseNamespace" -}}
{{- default .Release.Namespace .Values.controller.leaderElection.leaseNamespace }}
{{- end }}

{{- define "baton.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Rules the controller needs in the namespaces it watches (Secrets are added separately): what
the demo scenario measured it using (tests/packaging/chart_rbac/least_privilege.rs), plus the grants
docs/operating.md lists under "Permissions beyond the demo scenario". It reads through watch
caches (list, watch; get only for pods and Leases: a listener's new holder and its liveness Lease
are read from the API server before its Lease is written, since the caches may still show a pod
that is gone or an agent that is not yet leaving), writes status and its ListenerSet finalizer with patches, pods'
drain annotation with a patch, Leases with conditional updates. For a Rollout's spec.workloadRef it
watches Deployments and scales one down through its scale subresource.
*/}}
{{- define "baton.controllerRules" -}}
- apiGroups: ["baton.dev"]
  resources: ["rollouts", "listenersets"]
  verbs: ["list", "watch"]
- apiGroups: ["baton.dev"]
  resources: ["listenersets"]
  verbs: ["patch"]
- apiGroups: ["baton.dev"]
  resources: ["rollouts/status", "listenersets/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* Cluster scope only: the CRDs of the two kinds, read by name, so the controller can say when
one is being deleted (namespace scope grants nothing cluster-wide; a deletion is then seen once
the CRD is gone). */}}
{{- define "baton.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  resourceNames: ["rollouts.baton.dev", "listenersets.baton.dev"]
  verbs: ["list", "watch"]
{{- end }}

{{- define "baton.secretRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Labels that select the dashboard pod. */}}
{{- define "baton.dashboardSelectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end }}

{{/* The leader Leases (JSON list): one, or one per shard ("<leaseName>-<shard>"). */}}
{{- define "baton.leaderLeaseNames" -}}
{{- $base := .Values.controller.leaderElection.leaseName -}}
{{- $names := list -}}
{{- range .Values.shards -}}
{{- $names = append $names (printf "%s-%s" $base .name) -}}
{{- end -}}
{{- if not $names -}}
{{- $names = list $base -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{/* CEL: the request names one of the leader Leases. */}}
{{- define "baton.leaderLeaseCel" -}}
{{- $names := include "baton.leaderLeaseNames" . | fromJsonArray -}}
{{- if eq (len $names) 1 -}}
request.name == '{{ index $names 0 }}'
{{- else -}}
request.name in [{{ range $i, $n := $names }}{{ if $i }}, {{ end }}'{{ $n }}'{{ end }}]
{{- end -}}
{{- end }}

{{/* The controller instances: the shards, or one unsharded controller (an empty shard). */}}
{{- define "baton.instances" -}}
{{- if .Values.shards -}}
{{- toJson .Values.shards -}}
{{- else -}}
{{- toJson (list (dict "name" "" "selector" "")) -}}
{{- end -}}
{{- end }}
