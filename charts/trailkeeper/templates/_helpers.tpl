{{/* The chart name, or nameOverride; 63 characters is the limit of a label value. */}}
{{- define "trailkeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The base name of every resource: fullnameOverride, else <release>-<name> unless the release name already contains it. */}}
{{- define "trailkeeper.fullname" -}}
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

{{/*
A DNS-1035 label (a Service name: at most 63 characters, lowercase letters, digits and "-", starting
with a letter) of the full name and a suffix. When the full name does not fit as it is (a long release
name, a dot, a leading digit), it is shortened and made unique again with a hash of the full name.
Call with (list . "metrics").
*/}}
{{- define "trailkeeper.dnsLabel" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $fullname := include "trailkeeper.fullname" $root }}
{{- $name := printf "%s-%s" $fullname $suffix }}
{{- if and (le (len $name) 63) (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) }}
{{- $name }}
{{- else }}
{{- $base := $fullname | replace "." "-" | regexReplaceAll "^[^a-z]+" "" | trunc (int (sub 53 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s-%s" (default "tk" $base) (sha256sum $fullname | trunc 8) $suffix }}
{{- end }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "trailkeeper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "trailkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The labels selecting the operator pods; immutable in a Deployment, so nothing version-dependent. */}}
{{- define "trailkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trailkeeper.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* The ServiceAccount name. Without create a name is required: falling back to "default" would grant the operator's permissions to every pod using that account. */}}
{{- define "trailkeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trailkeeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name the existing ServiceAccount the operator runs as" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The peering object's name: peering.name, else the full name, so that each release has its own. */}}
{{- define "trailkeeper.peeringName" -}}
{{- default (include "trailkeeper.fullname" .) .Values.peering.name }}
{{- end }}

{{/* The operator image: repository@digest when a digest is given, else repository:tag (tag default appVersion). */}}
{{- define "trailkeeper.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Value combinations the chart refuses, each saying what to do instead (deployment.yaml includes this). */}}
{{- define "trailkeeper.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.peering.enabled) }}
{{- fail "replicaCount above 1 needs peering.enabled: standalone replicas would all reconcile every object" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled: the ServiceMonitor scrapes that Service" }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if .enabled }}
{{- $min := toString .minAvailable }}
{{- $max := toString .maxUnavailable }}
{{- if and (eq $min "") (eq $max "") }}
{{- fail "podDisruptionBudget.enabled needs podDisruptionBudget.minAvailable or podDisruptionBudget.maxUnavailable" }}
{{- end }}
{{- if and (ne $min "") (ne $max "") }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to \"\")" }}
{{- end }}
{{- if and (regexMatch "^[0-9]+$" $min) (ge (atoi $min) (int $.Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%s) is not below replicaCount (%d): no operator pod could be evicted and node drains would hang; raise replicaCount or set maxUnavailable instead" $min (int $.Values.replicaCount)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $tokenMounted := false }}
{{- range .Values.extraVolumeMounts }}
{{- if eq (trimSuffix "/" .mountPath) "/var/run/secrets/kubernetes.io/serviceaccount" }}
{{- $tokenMounted = true }}
{{- end }}
{{- end }}
{{- if not (or .Values.automountServiceAccountToken $tokenMounted) }}
{{- fail "automountServiceAccountToken false needs extraVolumes and extraVolumeMounts bringing a token to /var/run/secrets/kubernetes.io/serviceaccount: the operator cannot reach the API server without one" }}
{{- end }}
{{- end }}
