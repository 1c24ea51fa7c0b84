{{- define "istio.labels" -}}
app.kubernetes.io/name: istiod
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: istio
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "istiod.name" -}}
istiod{{ if .Values.revision }}-{{ .Values.revision }}{{ end }}
{{- end }}
