"""Kafka TLS from Secrets and ConfigMaps: the files mounted read-only under
/etc/chiprisk/kafka-tls/ and named by the librdkafka properties of
chiprisk.yaml, secrets never in the ConfigMap."""

import json

import yaml

from render import CHART, by_kind, config_map, render, rendered_config

TLS = "/etc/chiprisk/kafka-tls"
MTLS = CHART / "ci" / "kafka-with-mtls-values.yaml"
SASL = CHART / "ci" / "kafka-with-sasl-values.yaml"


def test_mtls_mounts_the_ca_and_the_client_certificate_and_names_them_in_the_configuration():
    config, mounts = rendered_config(MTLS)
    assert config["kafka"]["properties"] == {
        "security.protocol": "SSL",
        "ssl.ca.location": f"{TLS}/ca.crt",
        "ssl.certificate.location": f"{TLS}/tls.crt",
        "ssl.key.location": f"{TLS}/tls.key",
    }
    assert mounts == {
        "/etc/chiprisk/chiprisk.yaml": ("configMap", "risk-chiprisk", "chiprisk.yaml"),
        f"{TLS}/ca.crt": ("configMap", "kafka-ca-bundle", "trust-bundle.pem"),
        f"{TLS}/tls.crt": ("secret", "chiprisk-kafka-client", "tls.crt"),
        f"{TLS}/tls.key": ("secret", "chiprisk-kafka-client", "tls.key"),
    }


def test_the_tls_files_are_mounted_read_only():
    docs = render(MTLS)
    c = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    [config] = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/chiprisk"]
    assert config["readOnly"] is True
    assert all(m.get("readOnly") for m in c["volumeMounts"])


def test_sasl_ssl_trusts_the_mounted_ca_and_reads_the_password_from_a_file():
    config, mounts = rendered_config(SASL)
    kafka = config["kafka"]
    assert kafka["properties"]["security.protocol"] == "SASL_SSL"
    assert kafka["properties"]["sasl.mechanism"] == "SCRAM-SHA-512"
    assert kafka["properties"]["ssl.ca.location"] == f"{TLS}/ca.crt"
    assert "ssl.certificate.location" not in kafka["properties"], "no client certificate with SASL"
    assert mounts[f"{TLS}/ca.crt"] == ("secret", "events-cluster-ca-cert", "ca.crt")
    assert kafka["properties_from_files"] == {"sasl.password": "/var/run/secrets/kafka/password"}
    assert mounts["/var/run/secrets/kafka/password"] == ("secret", "chiprisk-kafka", "password")


def test_the_passphrase_of_an_encrypted_key_goes_through_a_secret_file_never_the_configmap():
    values = yaml.safe_load(MTLS.read_text())
    values["kafka"].update(existingSecret="chiprisk-kafka-key", secretProperties={"ssl.key.password": "passphrase"})
    config, mounts = rendered_config(values)
    assert config["kafka"]["properties_from_files"] == {"ssl.key.password": "/var/run/secrets/kafka/passphrase"}
    assert "ssl.key.password" not in config["kafka"]["properties"]
    assert mounts["/var/run/secrets/kafka/passphrase"] == ("secret", "chiprisk-kafka-key", "passphrase")
    assert "passphrase" not in json.dumps(config["kafka"]["properties"])


def test_a_ca_from_a_secret_with_its_own_key_and_a_client_certificate_with_other_keys():
    config, mounts = rendered_config({"kafka": {"tls": {
        "ca": {"secret": "corp-ca", "key": "root.pem"},
        "clientCertificate": {"secret": "client", "certKey": "cert.pem", "keyKey": "key.pem"},
    }}})
    assert mounts[f"{TLS}/ca.crt"] == ("secret", "corp-ca", "root.pem")
    assert mounts[f"{TLS}/tls.crt"] == ("secret", "client", "cert.pem")
    assert mounts[f"{TLS}/tls.key"] == ("secret", "client", "key.pem")
    assert config["kafka"]["properties"]["ssl.key.location"] == f"{TLS}/tls.key"


def test_the_chart_keeps_the_other_properties_and_its_paths_win():
    config, _ = rendered_config({"config": {"kafka": {"properties": {"ssl.ca.location": "/nowhere", "client.id": "x"}}},
                                 "kafka": {"tls": {"ca": {"configMap": "bundle"}}}})
    assert config["kafka"]["properties"] == {"ssl.ca.location": f"{TLS}/ca.crt", "client.id": "x"}


def test_without_tls_values_nothing_is_mounted_or_set():
    config, mounts = rendered_config({})
    assert config == {}
    assert list(mounts) == ["/etc/chiprisk/chiprisk.yaml"]


def test_pods_roll_when_the_tls_sources_change():
    def checksum(values):
        return by_kind(render(values), "Deployment")[0]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum({}) != checksum({"kafka": {"tls": {"ca": {"secret": "ca"}}}})


def test_no_certificate_or_key_material_is_in_the_configmap():
    for case in (MTLS, SASL):
        text = config_map(render(case))["data"]["chiprisk.yaml"]
        assert "BEGIN" not in text and "ssl.key.pem" not in text and "ssl.certificate.pem" not in text
