{{- define "chiprisk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chiprisk.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "chiprisk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chiprisk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chiprisk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "chiprisk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chiprisk
{{- end -}}

{{- define "chiprisk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chiprisk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The chiprisk configuration file, with secret-file properties added. */}}
{{- define "chiprisk.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.kafka.existingSecret -}}
{{- $kafka := default dict (get $config "kafka") -}}
{{- $files := default dict (get $kafka "properties_from_files") -}}
{{- range $property, $key := .Values.kafka.secretProperties -}}
{{- $_ := set $files $property (printf "/var/run/secrets/kafka/%s" $key) -}}
{{- end -}}
{{- $_ := set $kafka "properties_from_files" $files -}}
{{- $_ := set $config "kafka" $kafka -}}
{{- end -}}
{{- if .Values.api.tokenSecret -}}
{{- $http := default dict (get $config "http") -}}
{{- $_ := set $http "api_token_file" (printf "/var/run/secrets/chiprisk-api/%s" .Values.api.tokenSecretKey) -}}
{{- $_ := set $config "http" $http -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{- define "chiprisk.monitoringAvailable" -}}
{{- if or .Values.monitoring.assumeCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* A duration such as 30m, 72h or 3d, in seconds. */}}
{{- define "chiprisk.seconds" -}}
{{- $n := regexFind "^[0-9]+" . | int -}}
{{- $unit := regexFind "[a-z]+$" . -}}
{{- mul $n (get (dict "s" 1 "m" 60 "h" 3600 "d" 86400) $unit) -}}
{{- end -}}

{{/* An alert's labels: severity, category (policy or health, for routing), then additionalRuleLabels. */}}
{{- define "chiprisk.ruleLabels" -}}
severity: {{ .severity }}
category: {{ .category }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A policy alert's links: the vendor's explanation (API and status page), the event's source (`source`: a policy change) and the runbook. */}}
{{- define "chiprisk.policyLinks" -}}
explanation_url: {{ printf "%s/api/v1/scores/{{ $labels.vendor }}" .url | quote }}
status_page_url: {{ printf "%s/#v-{{ $labels.vendor }}" .url | quote }}
{{- if .source }}
source_url: {{ `{{ $labels.source_url }}` | quote }}
{{- end }}
runbook_url: {{ printf "%s#%s" .runbook .anchor | quote }}
{{- end -}}
