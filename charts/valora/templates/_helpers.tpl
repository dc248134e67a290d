{{/* Names, labels, image and the restricted security profile shared by every template. */}}

{{- define "valora.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "valora.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: valora
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "valora.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "valora.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Pod Security Standards "restricted": non-root, RuntimeDefault seccomp. */}}
{{- define "valora.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 10001 }}
runAsGroup: {{ .uid | default 10001 }}
fsGroup: {{ .uid | default 10001 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Read-only root filesystem, no privilege escalation, every capability dropped. */}}
{{- define "valora.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "valora.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "valora.databaseSecret" . }}
      key: {{ if .Values.postgresql.enabled }}url{{ else }}{{ .Values.database.existingSecretKey }}{{ end }}
{{- end -}}

{{- define "valora.databaseSecret" -}}
{{- if and (not .Values.postgresql.enabled) .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else -}}
{{ include "valora.fullname" . }}-database
{{- end -}}
{{- end -}}

{{- define "valora.redisUrl" -}}
{{- if .Values.redis.enabled -}}
redis://{{ include "valora.fullname" . }}-redis:6379
{{- else -}}
{{ .Values.redis.url }}
{{- end -}}
{{- end -}}

{{- define "valora.addr" -}}
{{ include "valora.fullname" .root }}-{{ .component }}:9090
{{- end -}}

{{/*
OTLP trace export for one Deployment (dict: root, name): the standard OTEL_* variables, the
service named after the Deployment and the Kubernetes resource attributes from the downward API.
Nothing when tracing.endpoint is empty.
*/}}
{{- define "valora.tracingEnv" -}}
{{- $t := .root.Values.tracing -}}
{{- if $t.endpoint -}}
- {name: OTEL_EXPORTER_OTLP_ENDPOINT, value: {{ $t.endpoint | quote }}}
- {name: OTEL_EXPORTER_OTLP_PROTOCOL, value: {{ $t.protocol | quote }}}
- {name: OTEL_TRACES_SAMPLER, value: parentbased_traceidratio}
- {name: OTEL_TRACES_SAMPLER_ARG, value: {{ $t.sampleRatio | toString | quote }}}
{{- with $t.headersSecret }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom: {secretKeyRef: {name: {{ . | quote }}, key: headers, optional: true}}
{{- end }}
- {name: OTEL_SERVICE_NAME, value: {{ .name | quote }}}
- name: K8S_NAMESPACE_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: K8S_POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- {name: OTEL_RESOURCE_ATTRIBUTES, value: {{ printf "k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),k8s.deployment.name=%s" .name | quote }}}
{{- end }}
{{- end -}}
