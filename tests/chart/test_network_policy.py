"""The rendered NetworkPolicy, evaluated as Kubernetes evaluates it: which
pods may open a connection to chiprisk's HTTP port."""

import ipaddress

import pytest

from render import NAMESPACE, by_kind, render

PROMETHEUS = {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"}


def namespace(name, **labels):
    # Kubernetes (1.22+) labels every namespace with its name.
    return {"kubernetes.io/metadata.name": name, **labels}


def selects(selector, labels):
    """A LabelSelector: matchLabels and matchExpressions, all must hold; {} selects everything."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def peer_admits(peer, policy_namespace, source):
    """A NetworkPolicyPeer: podSelector alone means pods of the policy's
    namespace; namespaceSelector alone, every pod of the selected
    namespaces; both, the selected pods of the selected namespaces; ipBlock,
    the addresses in its CIDR but its exceptions."""
    if "ipBlock" in peer:
        ip = ipaddress.ip_address(source.get("ip", "0.0.0.0"))
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(ip in ipaddress.ip_network(c) for c in block.get("except", []))
    if source["namespace_labels"] is None:
        return False  # not a pod: only an ipBlock can admit it
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], source["namespace_labels"]):
            return False
    elif source["namespace_labels"]["kubernetes.io/metadata.name"] != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), source["pod_labels"])


def port_admits(rule, port):
    """Whether a rule's ports include (port name, number, protocol); no ports: all."""
    name, number, protocol = port
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if p.get("port") is None or p["port"] == name or (
                isinstance(p["port"], int) and p["port"] <= number <= p.get("endPort", p["port"])):
            return True
    return False


def admitted(policy, target_labels, source, port):
    """Whether the policy lets `source` (namespace_labels and pod_labels, or
    None for what is not a pod; ip)
    reach `port` (name, number, protocol) of a pod labelled `target_labels`
    in the policy's namespace. A pod the policy does not select is not
    isolated by it."""
    ns = policy["metadata"].get("namespace", NAMESPACE)
    spec = policy["spec"]
    if not selects(spec["podSelector"], target_labels):
        return True
    if "Ingress" not in spec.get("policyTypes", ["Ingress"]):
        return True
    for rule in spec.get("ingress") or []:
        peers = rule.get("from")
        if port_admits(rule, port) and (not peers or any(peer_admits(p, ns, source) for p in peers)):
            return True
    return False


def policy_and_pod(values):
    docs = render(values)
    [policy] = by_kind(docs, "NetworkPolicy")
    dep = by_kind(docs, "Deployment")[0]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    port = next(p for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"] if p["name"] == "http")
    return policy, pod_labels, ("http", port["containerPort"], "TCP")


def reaches(values, ns_labels, pod_labels, port=None, ip="10.1.2.3"):
    policy, target, http = policy_and_pod(values)
    return admitted(policy, target, {"namespace_labels": ns_labels, "pod_labels": pod_labels, "ip": ip}, port or http)


def test_the_evaluator_reads_peers_as_kubernetes_does():
    policy = {"metadata": {"namespace": "app"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [
        {"ports": [{"port": 80}], "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"role": "web"}}}]},
        {"ports": [{"port": 90}], "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}, {"podSelector": {"matchLabels": {"role": "web"}}}]},
    ]}}
    a_web = {"namespace_labels": namespace("x", team="a"), "pod_labels": {"role": "web"}}
    a_db = {"namespace_labels": namespace("x", team="a"), "pod_labels": {"role": "db"}}
    app_web = {"namespace_labels": namespace("app"), "pod_labels": {"role": "web"}}
    other_web = {"namespace_labels": namespace("y"), "pod_labels": {"role": "web"}}
    port80, port90 = ("", 80, "TCP"), ("", 90, "TCP")
    # One peer with both selectors: both must hold.
    assert admitted(policy, {}, a_web, port80) and not admitted(policy, {}, a_db, port80)
    assert not admitted(policy, {}, app_web, port80)
    # Two peers: either; a podSelector alone means the policy's namespace.
    assert admitted(policy, {}, a_db, port90) and admitted(policy, {}, app_web, port90)
    assert not admitted(policy, {}, other_web, port90)
    assert not admitted(policy, {}, a_web, ("", 91, "TCP")) and not admitted(policy, {}, a_web, ("", 80, "UDP"))


def test_prometheus_in_the_monitoring_namespace_reaches_the_http_port_by_default():
    assert reaches({}, namespace("monitoring"), PROMETHEUS)


def test_pods_of_the_release_namespace_reach_it_and_other_namespaces_do_not():
    assert reaches({}, namespace(NAMESPACE), {"app": "dashboard"})
    assert not reaches({}, namespace("default"), PROMETHEUS)
    assert not reaches({}, namespace("team-b", purpose="monitoring"), PROMETHEUS)


def test_only_the_http_port_is_open():
    assert not reaches({}, namespace("monitoring"), PROMETHEUS, port=("", 22, "TCP"))
    assert not reaches({}, namespace(NAMESPACE), {}, port=("http", 9464, "UDP"))


def test_the_policy_selects_the_chiprisk_pods():
    policy, target, _ = policy_and_pod({})
    assert selects(policy["spec"]["podSelector"], target)
    assert "Egress" in policy["spec"]["policyTypes"]


def test_the_monitoring_namespace_is_a_value_and_can_be_dropped():
    assert reaches({"networkPolicy": {"monitoringNamespace": "observability"}}, namespace("observability"), PROMETHEUS)
    assert not reaches({"networkPolicy": {"monitoringNamespace": "observability"}}, namespace("monitoring"), PROMETHEUS)
    assert not reaches({"networkPolicy": {"monitoringNamespace": ""}}, namespace("monitoring"), PROMETHEUS)


@pytest.mark.parametrize("values, source_ns, source_pod, admitted_", [
    ({"ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]},
     namespace("ingress-nginx"), {"app.kubernetes.io/name": "ingress-nginx"}, True),
    ({"ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]},
     namespace("default"), {}, False),
    ({"allowAll": True}, namespace("default"), {}, True),
], ids=["ingressFrom-admits", "ingressFrom-only-those", "allowAll"])
def test_values_widen_who_may_reach_the_http_port(values, source_ns, source_pod, admitted_):
    assert reaches({"networkPolicy": values}, source_ns, source_pod) is admitted_
    # Widening never narrows: Prometheus is still admitted.
    assert reaches({"networkPolicy": values}, namespace("monitoring"), PROMETHEUS)


def test_allow_all_admits_addresses_outside_the_cluster_and_the_default_does_not():
    outside = (None, None)  # not a pod
    assert reaches({"networkPolicy": {"allowAll": True}}, *outside, ip="203.0.113.7")
    assert not reaches({}, *outside, ip="203.0.113.7")
    assert reaches({"networkPolicy": {"ingressFrom": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}}, *outside, ip="203.0.113.7")


def test_egress_goes_to_dns_the_brokers_and_extra_rules_only():
    policy, _, _ = policy_and_pod({"networkPolicy": {"kafkaPort": 9093, "extraEgress": [
        {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}]}]}})
    egress = policy["spec"]["egress"]
    assert [sorted((p["port"], p["protocol"]) for p in r["ports"]) for r in egress] == [
        [(53, "TCP"), (53, "UDP")], [(9093, "TCP")], [(443, "TCP")]]
    assert egress[2]["to"] == [{"ipBlock": {"cidr": "192.0.2.10/32"}}]
