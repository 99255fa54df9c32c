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

{{/* The labels of every resource: the chart's, then commonLabels (which cannot override them). */}}
{{- define "chiprisk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "chiprisk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chiprisk
{{- range $k, $v := omit .Values.commonLabels "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/managed-by" "app.kubernetes.io/part-of" }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* The pods' labels: selector, commonLabels, then podLabels (podLabels win over commonLabels). */}}
{{- define "chiprisk.podLabels" -}}
{{- $labels := merge (dict) (include "chiprisk.selectorLabels" . | fromYaml) .Values.podLabels .Values.commonLabels -}}
{{- toYaml $labels -}}
{{- end -}}

{{/*
  The image reference: global.imageRegistry replaces the registry of
  image.repository (its first part, when that names a host: it has a dot or
  a port, or is localhost), or goes in front of it; image.digest, when set,
  replaces the tag.
*/}}
{{- define "chiprisk.image" -}}
{{- $repository := .Values.image.repository -}}
{{- with (.Values.global).imageRegistry -}}
{{- $parts := splitn "/" 2 $repository -}}
{{- if and (contains "/" $repository) (or (contains "." $parts._0) (contains ":" $parts._0) (eq "localhost" $parts._0)) -}}
{{- $repository = $parts._1 -}}
{{- end -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "chiprisk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chiprisk.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the Kafka TLS files are mounted (one projected volume with the configuration, at /etc/chiprisk). */}}
{{- define "chiprisk.kafkaTlsDir" -}}/etc/chiprisk/kafka-tls{{- end -}}

{{/* The CA bundle's source: "secret", "configMap" or nothing. */}}
{{- define "chiprisk.kafkaCaSource" -}}
{{- $ca := .Values.kafka.tls.ca -}}
{{- if and $ca.secret $ca.configMap -}}
{{- fail "kafka.tls.ca: set secret or configMap, not both" -}}
{{- else if $ca.secret -}}secret
{{- else if $ca.configMap -}}configMap
{{- end -}}
{{- end -}}

{{/* The chiprisk configuration file, with secret-file and TLS properties added. */}}
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
{{- $tlsDir := include "chiprisk.kafkaTlsDir" . -}}
{{- $tlsProperties := dict -}}
{{- if include "chiprisk.kafkaCaSource" . -}}
{{- $_ := set $tlsProperties "ssl.ca.location" (printf "%s/ca.crt" $tlsDir) -}}
{{- end -}}
{{- if .Values.kafka.tls.clientCertificate.secret -}}
{{- $_ := set $tlsProperties "ssl.certificate.location" (printf "%s/tls.crt" $tlsDir) -}}
{{- $_ := set $tlsProperties "ssl.key.location" (printf "%s/tls.key" $tlsDir) -}}
{{- end -}}
{{- if $tlsProperties -}}
{{- $kafka := default dict (get $config "kafka") -}}
{{- $properties := default dict (get $kafka "properties") -}}
{{- $_ := set $kafka "properties" (merge $tlsProperties $properties) -}}
{{- $_ := set $config "kafka" $kafka -}}
{{- end -}}
{{- if .Values.api.tokenSecret -}}
{{- $http := default dict (get $config "http") -}}
{{- $_ := set $http "api_token_file" (printf "/var/run/secrets/chiprisk-api/%s" .Values.api.tokenSecretKey) -}}
{{- $_ := set $config "http" $http -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The runbook: monitoring.prometheusRule.runbookUrl, or docs/runbook.md at the chart's home. */}}
{{- define "chiprisk.runbookUrl" -}}
{{- .Values.monitoring.prometheusRule.runbookUrl | default (printf "%s/blob/main/docs/runbook.md" (trimSuffix "/" .Chart.Home)) -}}
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

{{/* An alert's labels: severity, category (policy, health or producer, for routing), then additionalRuleLabels. */}}
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
