{{- define "chiprisk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chiprisk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
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
