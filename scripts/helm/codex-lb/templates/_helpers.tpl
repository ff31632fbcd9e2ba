{{/* The names every template uses: the release name, and the Secrets it reads. */}}
{{- define "codex-lb.fullname" -}}
{{- printf "%s-codex-lb" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "codex-lb.labels" -}}
app.kubernetes.io/name: codex-lb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "codex-lb.selector" -}}
app.kubernetes.io/name: codex-lb
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
