{{/* The release's resource name: the release name, with the chart's unless it already holds it. */}}
{{- define "smppgw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "smppgw.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "smppgw.labels" -}}
{{ include "smppgw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "smppgw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "smppgw.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The Secret the container takes its SMPPGW_* overrides from, if any. */}}
{{- define "smppgw.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if .Values.secretEnv -}}
{{- include "smppgw.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Whether the store is Redis (several replicas possible) rather than the embedded file. */}}
{{- define "smppgw.redis" -}}
{{- with .Values.config.store -}}{{- with .redis -}}{{- if .addrs -}}true{{- end -}}{{- end -}}{{- end -}}
{{- end -}}

{{/* Port number of a host:port setting, or the default given. */}}
{{- define "smppgw.port" -}}
{{- $addr := index . 0 | default "" | toString -}}
{{- if $addr -}}{{- regexReplaceAll "^.*:" $addr "" -}}{{- else -}}{{- index . 1 -}}{{- end -}}
{{- end -}}
