{{/*
One Valora service: Deployment (`valora serve <service>`), Service, HorizontalPodAutoscaler and
PodDisruptionBudget. Arguments (dict): root, component, serve (the `valora serve` name), values
(the component's values), env (a YAML list), http (true: REST on 8080 with /readyz, as the gateway).
*/}}
{{- define "valora.component" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $name := printf "%s-%s" (include "valora.fullname" $root) .component -}}
{{- $ctx := dict "root" $root "name" (printf "valora-%s" .component) "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "valora.labels" $ctx | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  selector:
    matchLabels:
      {{- include "valora.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "valora.labels" $ctx | nindent 8 }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ if .http }}"8080"{{ else }}"9464"{{ end }}
    spec:
      serviceAccountName: {{ include "valora.fullname" $root }}-services
      automountServiceAccountToken: {{ .kube | default false }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "valora.podSecurityContext" dict | nindent 8 }}
      terminationGracePeriodSeconds: 30
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "valora.selectorLabels" $ctx | nindent 14 }}
      containers:
        - name: {{ .component }}
          image: {{ include "valora.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["serve", {{ .serve | quote }}]
          env:
            - name: HOST
              value: "0.0.0.0"
            - name: GRPC_PORT
              value: "9090"
            {{- if .http }}
            - name: PORT
              value: "8080"
            {{- else }}
            - name: METRICS_PORT
              value: "9464"
            {{- end }}
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef: {fieldPath: metadata.namespace}
            - name: SHUTDOWN_DRAIN_DELAY_MS
              value: "5000"
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with include "valora.tracingEnv" (dict "root" $root "name" $name) }}
            {{- . | nindent 12 }}
            {{- end }}
          ports:
            - {name: grpc, containerPort: 9090, protocol: TCP}
            {{- if .http }}
            - {name: http, containerPort: 8080, protocol: TCP}
            {{- else }}
            - {name: metrics, containerPort: 9464, protocol: TCP}
            {{- end }}
          readinessProbe:
            {{- if .http }}
            httpGet: {path: /readyz, port: http}
            {{- else }}
            grpc: {port: 9090}
            {{- end }}
            periodSeconds: 5
            failureThreshold: 3
          livenessProbe:
            httpGet: {path: /healthz, port: {{ if .http }}http{{ else }}metrics{{ end }}}
            periodSeconds: 10
            failureThreshold: 6
          startupProbe:
            httpGet: {path: /healthz, port: {{ if .http }}http{{ else }}metrics{{ end }}}
            periodSeconds: 2
            failureThreshold: 60
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "valora.containerSecurityContext" dict | nindent 12 }}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 256Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "valora.labels" $ctx | nindent 4 }}
spec:
  type: {{ if .http }}{{ $v.service.type }}{{ else }}ClusterIP{{ end }}
  selector:
    {{- include "valora.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- if .http }}
    - {name: http, port: {{ $v.service.httpPort }}, targetPort: http, protocol: TCP}
    - {name: grpc, port: {{ $v.service.grpcPort }}, targetPort: grpc, protocol: TCP, appProtocol: grpc}
    {{- else }}
    - {name: grpc, port: 9090, targetPort: grpc, protocol: TCP, appProtocol: grpc}
    - {name: metrics, port: 9464, targetPort: metrics, protocol: TCP}
    {{- end }}
{{- if $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "valora.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ $name }}}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ $v.autoscaling.targetCPUUtilization }}}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 300
{{- end }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "valora.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "valora.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- end -}}
