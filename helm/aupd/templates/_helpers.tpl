{{/* Chart name, overridable by nameOverride. */}}
{{- define "aupd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources. A release named like the chart is not
repeated ("aupd", not "aupd-aupd").
*/}}
{{- define "aupd.fullname" -}}
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

{{/* Chart name and version for the helm.sh/chart label. */}}
{{- define "aupd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "aupd.labels" -}}
helm.sh/chart: {{ include "aupd.chart" . }}
{{ include "aupd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aupd
{{- end }}

{{/* Labels that select the pod; never change them, selectors are immutable. */}}
{{- define "aupd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aupd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Name of the ServiceAccount the pod runs as. */}}
{{- define "aupd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aupd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding the admin token. */}}
{{- define "aupd.secretName" -}}
{{- default (include "aupd.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* Key of the admin token inside that Secret. */}}
{{- define "aupd.secretKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretKey }}
{{- else -}}
admin-token
{{- end }}
{{- end }}

{{/* Image reference: repository:tag, or repository@digest when pinned. */}}
{{- define "aupd.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Refuses values the schema cannot express. Included by validate.yaml, so
every render runs it, whatever the backend.
*/}}
{{- define "aupd.validate" -}}
{{- $store := .Values.store }}
{{- if eq $store.backend "sled" }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount must be 0 or 1 with store.backend sled (got %v): the embedded sled store locks its directory, so only one aupd pod can run; set store.backend=postgres (and a database) for several replicas" .Values.replicaCount) }}
{{- end }}
{{- if or $store.databaseUrl $store.existingSecret }}
{{- fail "store.databaseUrl and store.existingSecret are used only with store.backend postgres; with sled they would be ignored" }}
{{- end }}
{{- else }}
{{- if not (or $store.databaseUrl $store.existingSecret) }}
{{- fail "store.backend postgres needs the database URL: set store.existingSecret (a Secret holding postgres://... under store.existingSecretKey) or store.databaseUrl" }}
{{- end }}
{{- if and $store.databaseUrl $store.existingSecret }}
{{- fail "set store.databaseUrl or store.existingSecret, not both" }}
{{- end }}
{{- end }}
{{- $grace := int .Values.settings.server.shutdown_grace_secs }}
{{- if le (int .Values.terminationGracePeriodSeconds) $grace }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must exceed settings.server.shutdown_grace_secs (%v) so aupd can drain and flush its store before it is killed" .Values.terminationGracePeriodSeconds $grace) }}
{{- end }}
{{- if and .Values.auth.adminToken (lt (len .Values.auth.adminToken) 16) }}
{{- fail "auth.adminToken must be at least 16 characters (aupd refuses a shorter one at start)" }}
{{- end }}
{{- if and .Values.auth.adminToken .Values.auth.existingSecret }}
{{- fail "set auth.adminToken or auth.existingSecret, not both" }}
{{- end }}
{{- end }}

{{/* The Secret holding the key that seals webhook signing secrets. */}}
{{- define "aupd.webhookKeySecretName" -}}
{{- default (printf "%s-webhook-key" (include "aupd.fullname" .)) .Values.webhookSecretKey.existingSecret }}
{{- end }}

{{/* Key of the sealing key inside that Secret. */}}
{{- define "aupd.webhookKeySecretKey" -}}
{{- if .Values.webhookSecretKey.existingSecret }}
{{- .Values.webhookSecretKey.existingSecretKey }}
{{- else -}}
key
{{- end }}
{{- end }}

{{/* The Secret holding the database URL (store.backend postgres). */}}
{{- define "aupd.databaseSecretName" -}}
{{- default (printf "%s-database" (include "aupd.fullname" .)) .Values.store.existingSecret }}
{{- end }}

{{/* Key of the database URL inside that Secret. */}}
{{- define "aupd.databaseSecretKey" -}}
{{- if .Values.store.existingSecret }}
{{- .Values.store.existingSecretKey }}
{{- else -}}
database-url
{{- end }}
{{- end }}
