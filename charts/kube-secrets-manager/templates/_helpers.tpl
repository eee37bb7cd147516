{{- define "kube-secrets-manager.name" -}}kube-secrets-manager{{- end }}

{{- define "kube-secrets-manager.labels" -}}
app.kubernetes.io/name: kube-secrets-manager
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "kube-secrets-manager.selector" -}}
app.kubernetes.io/name: kube-secrets-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-secrets-manager.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
