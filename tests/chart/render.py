"""The chart rendered offline by Helm's own Go SDK (helm-python-sdk), as the
tests and the end-to-end tests read it.

    import sys; sys.path.insert(0, "tests/chart")
    from render import rendered_config
    config, mounts = rendered_config("helm/chiprisk/ci/kafka-with-mtls-values.yaml")

`config` is chiprisk.yaml as the chart's ConfigMap holds it (a dict);
`mounts` maps every file path the pod sees that comes from a ConfigMap or a
Secret, and that the chart mounts by key or the configuration names, to
(kind, name, key): kind "configMap" or "secret", the object's name, the key
in it. A test that runs chiprisk outside Kubernetes writes each such file
and rewrites the configuration's paths to where it wrote them.
"""

from pathlib import Path, PurePosixPath

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "chiprisk"
RELEASE = "risk"
NAMESPACE = "chiprisk"


def values_of(source):
    """Values from a values file (path) or as given (dict); None: {}."""
    if source is None:
        return {}
    if isinstance(source, dict):
        return source
    return yaml.safe_load(Path(source).read_text()) or {}


def render_sources(values=None, chart=CHART, release=RELEASE, namespace=NAMESPACE):
    """(template path, manifest) for every manifest the chart renders."""
    out = helm.Chart.load(str(chart)).render(values_of(values), name=release, namespace=namespace)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend((path, d) for d in yaml.safe_load_all(text) if d)
    return docs


def render(values=None, **kwargs):
    """Every manifest the chart renders."""
    return [d for _, d in render_sources(values, **kwargs)]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def config_map(docs):
    """The ConfigMap that holds chiprisk.yaml."""
    return next(d for d in by_kind(docs, "ConfigMap") if "chiprisk.yaml" in d.get("data", {}))


def named_paths(config):
    """Every file path chiprisk's configuration names."""
    kafka = config.get("kafka") or {}
    paths = list((kafka.get("properties_from_files") or {}).values())
    paths += [v for k, v in (kafka.get("properties") or {}).items() if k.replace("_", ".").endswith(".location")]
    if (config.get("http") or {}).get("api_token_file"):
        paths.append(config["http"]["api_token_file"])
    return paths


def _source(volume_source):
    for kind in ("configMap", "secret"):
        if kind in volume_source:
            s = volume_source[kind]
            return kind, s.get("name") or s.get("secretName"), s.get("items")
    return None


def pod_mounts(deployment, named=()):
    """File path -> (kind, name, key) for the chiprisk container of a
    Deployment: every file mounted by key (items), and every path in
    `named` under a volume mounted whole (each key a file)."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    container = next(c for c in pod["containers"] if c["name"] == "chiprisk")
    mounts = {}
    for m in container.get("volumeMounts", []):
        volume = volumes[m["name"]]
        base = PurePosixPath(m["mountPath"])
        if "subPath" in m:
            source = _source(volume)
            if source:
                kind, name, items = source
                key = next((i["key"] for i in items or [] if i["path"] == m["subPath"]), m["subPath"])
                mounts[str(base)] = (kind, name, key)
            continue
        sources = [_source(s) for s in volume["projected"]["sources"]] if "projected" in volume else [_source(volume)]
        for source in filter(None, sources):
            kind, name, items = source
            if items:
                for item in items:
                    mounts[str(base / item["path"])] = (kind, name, item["key"])
            else:
                for path in named:
                    p = PurePosixPath(path)
                    if base in p.parents and p.parent == base:
                        mounts[str(p)] = (kind, name, p.name)
    return mounts


def rendered_config(values_file, release=RELEASE, namespace=NAMESPACE):
    """(chiprisk.yaml of the rendered ConfigMap as a dict, mounts) for a
    values file (or a dict of values); see the module's doc."""
    docs = render(values_file, release=release, namespace=namespace)
    config = yaml.safe_load(config_map(docs)["data"]["chiprisk.yaml"]) or {}
    mounts = pod_mounts(by_kind(docs, "Deployment")[0], named_paths(config))
    return config, mounts
