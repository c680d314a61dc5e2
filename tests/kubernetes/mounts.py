"""Lays out, under ROOT/DEPLOYMENT/CONTAINER, the files every scim-gateway container of the given
manifests sees: each ConfigMap and Secret volume it mounts, key by key, at that root + mountPath. The mounted
gateway.toml is rewritten so its paths under those mounts point under ROOT too. Prints one JSON
line per container: {"name": "deployment/container", "config": path, "env": {literal env}}.

    python mounts.py ROOT MANIFEST...

tests/it/packaging.rs runs `scim-gateway check --offline` on each printed config.
"""
import base64
import json
import os
import sys

import yaml


def main(root, files):
    docs = [d for f in files for d in yaml.safe_load_all(open(f)) if d and d["kind"] != "Kustomization"]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    for dep in by_kind.get("Deployment", {}).values():
        spec = dep["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            if "scim-gateway" not in c["image"]:
                continue
            name = dep["metadata"]["name"] + "/" + c["name"]
            top = os.path.join(root, name)
            mounts = []
            for m in c.get("volumeMounts", []):
                v = volumes[m["name"]]
                if "configMap" in v:
                    data = by_kind["ConfigMap"][v["configMap"]["name"]]["data"]
                elif "secret" in v:
                    s = by_kind["Secret"][v["secret"]["secretName"]]
                    data = dict(s.get("stringData", {}))
                    data.update({k: base64.b64decode(x).decode() for k, x in s.get("data", {}).items()})
                else:
                    continue
                target = top + m["mountPath"]
                os.makedirs(target, exist_ok=True)
                for key, value in data.items():
                    with open(os.path.join(target, key), "w") as out:
                        out.write(value)
                mounts.append(m["mountPath"])
            args = c.get("args", [])
            config = top + args[args.index("-c") + 1]
            text = open(config).read()
            for m in mounts:
                text = text.replace('"' + m + "/", '"' + top + m + "/")
            with open(config, "w") as out:
                out.write(text)
            env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
            print(json.dumps({"name": name, "config": config, "env": env}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
