{{/* The controller's Job spec, shared by the Job and the CronJob's jobTemplate. */}}
{{- define "gagebench.jobSpec" -}}
backoffLimit: {{ .Values.job.backoffLimit }}
activeDeadlineSeconds: {{ .Values.job.activeDeadlineSeconds }}
{{- if not (kindIs "invalid" .Values.job.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .Values.job.ttlSecondsAfterFinished }}
{{- end }}
template:
  metadata:
    labels:
      {{- include "gagebench.labels" . | nindent 6 }}
      app.kubernetes.io/component: controller
      {{- with .Values.controller.podLabels }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    annotations:
      # Restart-free config changes: a new ConfigMap content means a new pod template.
      checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
      {{- with .Values.controller.podAnnotations }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  spec:
    restartPolicy: Never
    serviceAccountName: {{ include "gagebench.serviceAccountName" . }}
    # The controller talks to the Kubernetes API (DaskCluster objects): it needs its token.
    automountServiceAccountToken: true
    enableServiceLinks: false
    {{- with .Values.imagePullSecrets }}
    imagePullSecrets:
      {{- range . }}
      - name: {{ . }}
      {{- end }}
    {{- end }}
    securityContext:
      {{- toYaml .Values.controller.podSecurityContext | nindent 6 }}
    {{- with .Values.controller.nodeSelector }}
    nodeSelector:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.controller.tolerations }}
    tolerations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.controller.affinity }}
    affinity:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    containers:
      - name: gagebench
        image: {{ include "gagebench.image" . }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command: [gagebench, run, --config, /etc/gagebench/run.yaml]
        env:
          - name: POD_NAME
            valueFrom:
              fieldRef:
                fieldPath: metadata.name
          - name: POD_NAMESPACE
            valueFrom:
              fieldRef:
                fieldPath: metadata.namespace
          - name: GAGEBENCH_IMAGE
            value: {{ include "gagebench.image" . | quote }}
          - name: HOME
            value: /tmp
          {{- with include "gagebench.s3EnvVars" . }}{{ . | nindent 10 }}{{ end }}
          {{- with .Values.controller.extraEnv }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        resources:
          {{- toYaml .Values.controller.resources | nindent 10 }}
        securityContext:
          {{- toYaml .Values.controller.securityContext | nindent 10 }}
        volumeMounts:
          - name: config
            mountPath: /etc/gagebench
            readOnly: true
          - name: tmp
            mountPath: /tmp
    volumes:
      - name: config
        configMap:
          name: {{ include "gagebench.fullname" . }}
      - name: tmp
        emptyDir:
          sizeLimit: {{ .Values.controller.tmpSizeLimit }}
{{- end }}
