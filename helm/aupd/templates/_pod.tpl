{{/*
The aupd pod, shared by the StatefulSet (store.backend sled) and the
Deployment (postgres). Callers indent it under spec.template.
*/}}
{{- define "aupd.podTemplate" -}}
{{- $fullname := include "aupd.fullname" . }}
{{- $postgres := eq .Values.store.backend "postgres" -}}
metadata:
  labels:
    {{- include "aupd.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Settings and policies are read at start: roll the pod when they change.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    # The admin token (and the database URL) are read at start too; a
    # generated token is kept across upgrades, so only values are hashed.
    {{- $secrets := printf "%s/%s/%s/%s/%s" .Values.auth.adminToken .Values.auth.existingSecret .Values.auth.existingSecretKey .Values.webhookSecretKey.existingSecret .Values.webhookSecretKey.existingSecretKey }}
    {{- if $postgres }}
    {{- $secrets = printf "%s/%s/%s/%s" $secrets .Values.store.databaseUrl .Values.store.existingSecret .Values.store.existingSecretKey }}
    {{- end }}
    checksum/secret: {{ $secrets | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "aupd.serviceAccountName" . }}
  automountServiceAccountToken: false
  # aupd reads only AUPD_* variables; Service links would add noise.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.securityContext.runAsUser }}
    runAsGroup: {{ .Values.securityContext.runAsGroup }}
    fsGroup: {{ .Values.securityContext.fsGroup }}
    fsGroupChangePolicy: OnRootMismatch
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: aupd
      image: {{ include "aupd.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      env:
        - name: AUPD_CONFIG
          value: /etc/aupd/config/aupd.toml
        # Listen on every interface: the default 127.0.0.1 is unreachable
        # from the Service.
        - name: AUPD__SERVER__BIND
          value: "0.0.0.0:8080"
        {{- if $postgres }}
        - name: AUPD__STORE__BACKEND
          value: postgres
        # From the Secret, never as text in the pod spec.
        - name: AUPD__STORE__DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "aupd.databaseSecretName" . }}
              key: {{ include "aupd.databaseSecretKey" . }}
        # The pod name: unique among the replicas, and what a lease holder
        # is shown as in logs and metrics.
        - name: AUPD__CLUSTER__REPLICA_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- else }}
        # A directory inside the volume, so the volume's own entries
        # (lost+found) stay out of the store.
        - name: AUPD__STORE__PATH
          value: /var/lib/aupd/store
        {{- end }}
        - name: AUPD__POLICY__DIR
          value: /etc/aupd/policies
        - name: AUPD__AUTH__ADMIN_TOKEN_FILE
          value: /etc/aupd/secrets/admin-token
        - name: AUPD__DELIVERY__SECRET_KEY_FILE
          value: /etc/aupd/webhook-key/key
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ .Values.securityContext.runAsUser }}
        runAsGroup: {{ .Values.securityContext.runAsGroup }}
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        privileged: false
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      volumeMounts:
        {{- if not $postgres }}
        - name: data
          mountPath: /var/lib/aupd
        {{- end }}
        - name: tmp
          mountPath: /tmp
        - name: config
          mountPath: /etc/aupd/config
          readOnly: true
        - name: admin-token
          mountPath: /etc/aupd/secrets
          readOnly: true
        - name: webhook-key
          mountPath: /etc/aupd/webhook-key
          readOnly: true
        {{- /*
        Each override file is mounted over the image's file of the same
        name, so the rest of the baked-in policy directory (tests/,
        models/, escalation/) stays as built.
        */}}
        {{- range $name, $_ := .Values.policyOverrides }}
        - name: policy-overrides
          mountPath: /etc/aupd/policies/{{ $name }}
          subPath: {{ $name }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    - name: config
      configMap:
        name: {{ $fullname }}-config
    - name: admin-token
      secret:
        secretName: {{ include "aupd.secretName" . }}
        defaultMode: 0440
        items:
          - key: {{ include "aupd.secretKey" . }}
            path: admin-token
    - name: webhook-key
      secret:
        secretName: {{ include "aupd.webhookKeySecretName" . }}
        defaultMode: 0440
        items:
          - key: {{ include "aupd.webhookKeySecretKey" . }}
            path: key
    {{- if .Values.policyOverrides }}
    - name: policy-overrides
      configMap:
        name: {{ $fullname }}-policies
    {{- end }}
    {{- if and (not $postgres) (not .Values.persistence.enabled) }}
    - name: data
      emptyDir: {}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $postgres }}
  # Spread the replicas over nodes where the cluster can, so losing a node
  # loses one pod, not all of them.
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "aupd.selectorLabels" . | nindent 10 }}
  {{- end }}
{{- end }}
