{{/*
tabjob.name: the chart name (or nameOverride), cut to 63 characters because label values
and DNS names allow no more.
*/}}
{{- define "tabjob.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
tabjob.fullname: the prefix of every resource name. The release name alone when it already
contains the chart name (release "tabjob" gives "tabjob-api", not "tabjob-tabjob-api");
cut to 52 characters so that the longest suffix ("-worker-small") still fits in 63.
*/}}
{{- define "tabjob.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
tabjob.chart: chart name and version for the helm.sh/chart label ("+" is not allowed in labels).
*/}}
{{- define "tabjob.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
tabjob.selectorLabels: the labels that identify the release's pods. They are immutable in a
Deployment's selector, so they never include versions; templates add
app.kubernetes.io/component to tell the API from each worker lane.
*/}}
{{- define "tabjob.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tabjob.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
tabjob.labels: the common metadata labels of every object (the selector labels plus chart,
version and manager), so `kubectl get all -l app.kubernetes.io/instance=<release>` finds them.
*/}}
{{- define "tabjob.labels" -}}
helm.sh/chart: {{ include "tabjob.chart" . }}
{{ include "tabjob.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tabjob
{{- end }}

{{/*
tabjob.serviceAccountName: the ServiceAccount pods run as; the created one by default.
*/}}
{{- define "tabjob.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tabjob.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
tabjob.image: "repository@digest" when a digest is set (what CI/CD deploys, so every
environment runs the same bytes), else "repository:tag" with the tag defaulting to appVersion.
Call with (dict "image" .Values.image "root" $).
*/}}
{{- define "tabjob.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}
{{- end }}

{{/*
tabjob.workloadAnnotations: checkov skip annotations of a workload, each with its reason (a reason
must not contain "=", checkov splits on it). CKV_K8S_35 always: settings come from the
environment (pydantic-settings) by contract, and the values are secretKeyRef references. The
image checks only when the image is not pinned by digest (a kind or default install loads images
by tag); with a digest both checks pass and no skip is emitted.
Call with (dict "image" <image values> "root" $).
*/}}
{{- define "tabjob.workloadAnnotations" -}}
checkov.io/skip1: CKV_K8S_35=settings are read from the environment by contract and come from secretKeyRef references; no value is inline
{{- if not .image.digest }}
checkov.io/skip2: CKV_K8S_43=no digest in this install; CI/CD sets image.digest for the clusters it deploys
{{- if ne .root.Values.image.pullPolicy "Always" }}
checkov.io/skip3: CKV_K8S_15=image loaded by tag (kind load) so pulling Always would fail; digests pass this check
{{- end }}
{{- end }}
{{- end }}

{{/*
tabjob.redisAddress: the broker's host:port for the KEDA trigger: keda.redisAddress, or the host
of config.redisUrl (port 6379 when the URL names none).
*/}}
{{- define "tabjob.redisAddress" -}}
{{- if .Values.keda.redisAddress }}
{{- .Values.keda.redisAddress }}
{{- else }}
{{- $host := (urlParse .Values.config.redisUrl).host }}
{{- if contains ":" $host }}{{ $host }}{{ else }}{{ printf "%s:6379" $host }}{{ end }}
{{- end }}
{{- end }}

{{/*
tabjob.redisDatabase: the database index in config.redisUrl's path ("/0"), so KEDA counts the
same database Dramatiq writes to.
*/}}
{{- define "tabjob.redisDatabase" -}}
{{- default "0" (trimPrefix "/" (urlParse .Values.config.redisUrl).path) }}
{{- end }}

{{/*
tabjob.kedaTrigger: the KEDA trigger of one lane, one message per pod. Call with
(dict "root" $ "lane" "small"). With keda.scaleFrom "redis" (default), KEDA's redis trigger reads
the hash dramatiq:<lane>.msgs (pending and in-flight messages) itself. With "api", KEDA's
metrics-api trigger reads the same count from the API (GET /internal/scaling/lanes/<lane>,
bearer token secrets.scalerTokenKey): for brokers KEDA cannot log in to, such as Memorystore
with IAM authentication (a token that changes hourly; KEDA's redis trigger sends a static
password). Both authenticate through the release's TriggerAuthentication.
*/}}
{{- define "tabjob.kedaTrigger" -}}
{{- $root := .root -}}
{{- if eq $root.Values.keda.scaleFrom "api" -}}
- type: metrics-api
  metadata:
    url: {{ printf "http://%s-api.%s.svc:%v/internal/scaling/lanes/%s" (include "tabjob.fullname" $root) $root.Release.Namespace $root.Values.api.service.port .lane | quote }}
    format: json
    valueLocation: messages
    targetValue: "1"
    authModes: bearer
  authenticationRef:
    name: {{ include "tabjob.fullname" $root }}-redis
{{- else -}}
- type: redis
  metadata:
    address: {{ include "tabjob.redisAddress" $root | quote }}
    listName: {{ printf "dramatiq:%s.msgs" .lane | quote }}
    listLength: "1"
    databaseIndex: {{ include "tabjob.redisDatabase" $root | quote }}
    enableTLS: {{ include "tabjob.redisTls" $root | quote }}
  authenticationRef:
    name: {{ include "tabjob.fullname" $root }}-redis
{{- end }}
{{- end }}

{{/*
tabjob.redisTls: "true" when keda.redisTls is set or config.redisUrl is rediss://.
*/}}
{{- define "tabjob.redisTls" -}}
{{- if or .Values.keda.redisTls (eq (urlParse .Values.config.redisUrl).scheme "rediss") }}true{{ else }}false{{ end }}
{{- end }}

{{/*
tabjob.redisCaVolume: when secrets.redisCaKey is set, a pod volume "redis-ca" holding only that
key of the existing Secret, as the file redis-ca.pem: the broker's private CA (PEM) that the app
verifies rediss:// against (TABJOB_REDIS_CA_FILE, set in the ConfigMap). Mode 0440 (288): the
file belongs to the pod's fsGroup 10001, so the app's user reads it and nobody else. Renders
nothing when the key is empty. Call with the root context; add it to the pod's volumes.
*/}}
{{- define "tabjob.redisCaVolume" -}}
{{- if .Values.secrets.redisCaKey -}}
- name: redis-ca
  secret:
    secretName: {{ .Values.secrets.existingSecret }}
    items:
      - key: {{ .Values.secrets.redisCaKey }}
        path: redis-ca.pem
    defaultMode: 288
{{- end }}
{{- end }}

{{/*
tabjob.redisCaVolumeMount: when secrets.redisCaKey is set, mounts the "redis-ca" volume
(tabjob.redisCaVolume) read-only at /etc/tabjob/redis-ca, so the CA is
/etc/tabjob/redis-ca/redis-ca.pem, the path the ConfigMap gives as TABJOB_REDIS_CA_FILE.
Renders nothing when the key is empty. Call with the root context; add it to every app
container's volumeMounts.
*/}}
{{- define "tabjob.redisCaVolumeMount" -}}
{{- if .Values.secrets.redisCaKey -}}
- name: redis-ca
  mountPath: /etc/tabjob/redis-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
tabjob.podSecurityContext: non-root uid/gid 10001 (the image's user), RuntimeDefault seccomp.
*/}}
{{- define "tabjob.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
tabjob.containerSecurityContext: read-only root file system (scratch is the /tmp emptyDir), no
privilege escalation, no capabilities.
*/}}
{{- define "tabjob.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
tabjob.secretEnv: credentials as references into the existing Secret; the chart never sees
their values.
*/}}
{{- define "tabjob.secretEnv" -}}
{{- if eq .Values.config.redisAuth "password" }}
- name: TABJOB_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.redisPasswordKey }}
{{- end }}
- name: TABJOB_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.s3AccessKeyKey }}
- name: TABJOB_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.s3SecretKeyKey }}
{{- end }}

{{/*
tabjob.workerPodSpec: the pod spec of a worker of any lane (Deployment or ScaledJob).
Call with (dict "root" $ "lane" "small" "values" <lane values> "image" <image values>
"args" <list> "restartPolicy" "Always"|"Never").
The grace period is the lane's time limit plus a margin, and the worker is told the time limit
as its shutdown timeout: on SIGTERM it finishes the running job, then exits before the kubelet
would kill it.
*/}}
{{- define "tabjob.workerPodSpec" -}}
{{- $root := .root }}
{{- $lane := .values -}}
serviceAccountName: {{ include "tabjob.serviceAccountName" $root }}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
restartPolicy: {{ .restartPolicy }}
terminationGracePeriodSeconds: {{ add (int64 $lane.timeLimitS) (int64 $root.Values.gracePeriodMarginS) }}
securityContext:
  {{- include "tabjob.podSecurityContext" $root | nindent 2 }}
containers:
  - name: worker
    image: {{ include "tabjob.image" (dict "image" .image "root" $root) }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: ["tabjob"]
    args:
      {{- toYaml .args | nindent 6 }}
    ports:
      - name: health
        containerPort: 8001
        protocol: TCP
    envFrom:
      - configMapRef:
          name: {{ include "tabjob.fullname" $root }}-config
    env:
      {{- include "tabjob.secretEnv" $root | nindent 6 }}
      - name: TABJOB_WORKER_SHUTDOWN_TIMEOUT_S
        value: {{ int64 $lane.timeLimitS | quote }}
      - name: TABJOB_WORKER_HEALTH_PORT
        value: "8001"
      {{- with $lane.checkpointIntervalS }}
      # On SIGTERM a long fit checkpoints at its chunk's end (at most this long) and is requeued.
      - name: TABJOB_CHECKPOINT_INTERVAL_S
        value: {{ . | quote }}
      {{- end }}
      {{- with $lane.smallWorkConsumers }}
      # A toy never waits for KEDA to add a pod: this pod keeps a consumer for small work.
      - name: TABJOB_WORKER_SMALL_WORK_CONSUMERS
        value: {{ . | quote }}
      {{- end }}
      # The CPU budget: one thread per CPU of the container's limit (a whole number of CPUs,
      # equal to the request: checked by tabjob.workerCpus), for the worker's jobs
      # (TABJOB_WORKER_THREADS) and for OpenMP/BLAS in every process before any fork.
      {{- $_ := include "tabjob.workerCpus" (dict "lane" .lane "resources" .resources) }}
      {{- range $name := list "TABJOB_WORKER_THREADS" "OMP_NUM_THREADS" "OPENBLAS_NUM_THREADS" }}
      - name: {{ $name }}
        valueFrom:
          resourceFieldRef:
            containerName: worker
            resource: limits.cpu
            divisor: "1"
      {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    # A fit holds the CPU for minutes, so the health endpoint gets two minutes of patience
    # before the kubelet restarts the container.
    livenessProbe:
      httpGet:
        path: /healthz
        port: health
      initialDelaySeconds: 10
      periodSeconds: 20
      timeoutSeconds: 5
      failureThreshold: 6
    readinessProbe:
      httpGet:
        path: /healthz
        port: health
      initialDelaySeconds: 5
      periodSeconds: 10
      timeoutSeconds: 5
      failureThreshold: 3
    securityContext:
      {{- include "tabjob.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- with include "tabjob.redisCaVolumeMount" $root }}
      {{- . | nindent 6 }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $lane.scratchSizeLimit }}
  {{- with include "tabjob.redisCaVolume" $root }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
tabjob.workerCpus: the whole CPUs of a worker container, from its resources. A worker runs one
job at a time with one thread per CPU of its limit, so the limit must be a whole number of CPUs
(a fraction would be throttled: 1500m gives 1 thread and wastes the half) and the request must
equal it (the scheduler then reserves what the threads use; a lower request would oversubscribe
the node). Anything else fails the render with a message. Call with (dict "lane" L "resources" R).
*/}}
{{- define "tabjob.workerCpus" -}}
{{- $limits := .resources.limits | default dict }}
{{- $requests := .resources.requests | default dict }}
{{- $limit := include "tabjob.millicpu" (required (printf "workers.%s: resources.limits.cpu is required (the thread count follows it)" .lane) $limits.cpu) | int }}
{{- $request := include "tabjob.millicpu" ($requests.cpu | default $limits.cpu) | int }}
{{- if or (lt $limit 1000) (ne (mod $limit 1000) 0) }}
{{- fail (printf "%s worker: resources.limits.cpu must be a whole number of CPUs (one job thread per CPU), got %v" .lane $limits.cpu) }}
{{- end }}
{{- if ne $request $limit }}
{{- fail (printf "%s worker: resources.requests.cpu (%v) must equal limits.cpu (%v): its job runs one thread per CPU of the limit" .lane $requests.cpu $limits.cpu) }}
{{- end }}
{{- div $limit 1000 }}
{{- end }}

{{/*
tabjob.millicpu: a CPU quantity ("2", 2, "1.5", "500m") in millicores.
*/}}
{{- define "tabjob.millicpu" -}}
{{- $q := toString . }}
{{- if hasSuffix "m" $q }}{{ trimSuffix "m" $q | int }}
{{- else }}{{ mulf (float64 $q) 1000 | int }}
{{- end }}
{{- end }}

{{/*
tabjob.egressRules: where tabjob pods may connect: DNS, the broker and object store ports
(any address: Services, Memorystore and GCS have no fixed pod labels), and extraEgressCIDRs.
*/}}
{{- define "tabjob.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- ports:
    - port: {{ include "tabjob.brokerPort" . }}
      protocol: TCP
    - port: {{ include "tabjob.storagePort" . }}
      protocol: TCP
{{- with .Values.networkPolicy.extraEgressCIDRs }}
- to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
{{- end }}
{{- if .Values.networkPolicy.webhookEgress }}
{{- /* Job webhooks: HTTP(S) to public addresses only. The app refuses private targets itself
(app/webhooks/delivery.py); this keeps the cluster's own ranges, link-local (the metadata server,
169.254.169.254) and carrier-grade NAT out of reach even if it did not. */}}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- range list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "169.254.0.0/16" "100.64.0.0/10" "127.0.0.0/8" }}
          - {{ . }}
          {{- end }}
  ports:
    - port: 80
      protocol: TCP
    - port: 443
      protocol: TCP
{{- end }}
{{- end }}

{{/*
tabjob.urlPort: the TCP port of a URL: its explicit port, else 443 for https, 6379 for redis
and rediss, 80 otherwise. Call with the URL string.
*/}}
{{- define "tabjob.urlPort" -}}
{{- $url := urlParse . }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}
{{- else if eq $url.scheme "https" }}443
{{- else if has $url.scheme (list "redis" "rediss") }}6379
{{- else }}80
{{- end }}
{{- end }}

{{/*
tabjob.brokerPort: networkPolicy.brokerPort, or the port of config.redisUrl when it is 0.
*/}}
{{- define "tabjob.brokerPort" -}}
{{- if .Values.networkPolicy.brokerPort }}{{ int64 .Values.networkPolicy.brokerPort }}
{{- else }}{{ include "tabjob.urlPort" .Values.config.redisUrl }}
{{- end }}
{{- end }}

{{/*
tabjob.storagePort: networkPolicy.storagePort, or the port of config.s3Endpoint when it is 0
(443 for https://storage.googleapis.com, 8333 for in-cluster SeaweedFS).
*/}}
{{- define "tabjob.storagePort" -}}
{{- if .Values.networkPolicy.storagePort }}{{ int64 .Values.networkPolicy.storagePort }}
{{- else }}{{ include "tabjob.urlPort" .Values.config.s3Endpoint }}
{{- end }}
{{- end }}

{{/*
tabjob.secretChecksum: the checksum/secret pod annotation (secrets.checksum, the sha256 of the
Secret's contents from whoever writes it), so a rotated credential rolls the pods; nothing when
empty.
*/}}
{{- define "tabjob.secretChecksum" -}}
{{- with .Values.secrets.checksum }}
checksum/secret: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
tabjob.daskWorkerPod: the pod spec of a Dask worker (CPU: `dask worker`; GPU: dask-cuda's
`dask cuda worker`, one worker per GPU, on the GPU pool). Its memory limit for Dask is the
container's; the operator sets DASK_SCHEDULER_ADDRESS and DASK_WORKER_NAME. No probes: the nanny
restarts its worker process, and a worker that loses its scheduler exits (the operator replaces
the pod). The workers hold no Dask-managed data: no spilling, no pausing (app/local/dask_cluster.py).
Arguments: root, resources, image, gpu.
*/}}
{{- define "tabjob.daskWorkerPod" -}}
{{- $root := .root -}}
automountServiceAccountToken: false
securityContext:
  {{- include "tabjob.podSecurityContext" $root | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .gpu }}
{{- with $root.Values.gpu.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.gpu.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
containers:
  - name: worker
    image: {{ include "tabjob.image" (dict "image" .image "root" $root) }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    {{- /* A GPU pod holds one GPU (nvidia.com/gpu: 1), which a plain Dask worker of one thread
    sees alone: XGBoost trains there with device=cuda. dask-cuda (one worker per GPU of a node)
    is not needed for that, and is not in the GPU image: it pins one exact Dask release through
    rapids-dask-dependency, which would move the dask of the one lock file. */}}
    args: ["python", "-m", "distributed.cli.dask_worker", "--name", "$(DASK_WORKER_NAME)",
           "--nthreads", {{ ternary "1" ($root.Values.dask.worker.threads | toString) .gpu | quote }},
           "--memory-limit", {{ .resources.limits.memory | quote }}, "--no-dashboard",
           "--preload", "ml.distributed.preload", "--local-directory", "/tmp/dask"]
    env:
      - {name: DASK_DISTRIBUTED__WORKER__MEMORY__TARGET, value: "False"}
      - {name: DASK_DISTRIBUTED__WORKER__MEMORY__SPILL, value: "False"}
      - {name: DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE, value: "False"}
      - {name: ARROW_DEFAULT_MEMORY_POOL, value: system}
    resources:
      {{- toYaml .resources | nindent 6 }}
    securityContext:
      {{- include "tabjob.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $root.Values.dask.worker.scratchSizeLimit }}
{{- end }}
