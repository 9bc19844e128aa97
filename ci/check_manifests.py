#!/usr/bin/env python3
"""Checks what kubernetes-validate cannot: the CRD objects (the Multus
NetworkAttachmentDefinition, the Prometheus Operator ServiceMonitor) for the
fields their published CRDs require, and the references between objects.

  ci/check_manifests.py RENDERED.yaml [--fast-path]

--fast-path: the SR-IOV/RDMA overlay, whose pods must ask for a VF, the
RDMA device and hugepages, be Guaranteed (integer CPUs, requests = limits)
and attach to an existing NetworkAttachmentDefinition."""
import json
import sys

import yaml


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def main():
    path = sys.argv[1]
    fast = "--fast-path" in sys.argv
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    by_kind = {}
    for d in docs:
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                fail(f"an object without {k}")
        by_kind.setdefault(d["kind"], []).append(d)
    sts = by_kind["StatefulSet"][0]
    pod = sts["spec"]["template"]
    c = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, want in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        p = c[probe]["httpGet"]
        if p["path"] != want or p["port"] not in ports:
            fail(f"{probe} is not {want} on a named container port")
    if sts["spec"]["serviceName"] not in {s["metadata"]["name"] for s in by_kind["Service"]}:
        fail("the StatefulSet's serviceName has no Service")
    if not any(s["spec"].get("clusterIP") == "None" for s in by_kind["Service"]):
        fail("no headless Service for stable identities")
    labels = pod["metadata"]["labels"]
    for s in by_kind["Service"]:
        sel = s["spec"]["selector"]
        if any(labels.get(k) != v for k, v in sel.items()):
            fail(f"Service {s['metadata']['name']} selects no broker pod")
        for p in s["spec"]["ports"]:
            if p.get("targetPort", p["port"]) not in ports and p["port"] not in ports.values():
                fail(f"Service {s['metadata']['name']} port {p['name']} targets no container port")
    pdb = by_kind["PodDisruptionBudget"][0]["spec"]
    if any(labels.get(k) != v for k, v in pdb["selector"]["matchLabels"].items()):
        fail("the PodDisruptionBudget selects no broker pod")
    # ServiceMonitor (monitoring.coreos.com/v1): spec.selector required,
    # endpoints[].port naming a port of the selected Service.
    sm = by_kind["ServiceMonitor"][0]
    if sm["apiVersion"] != "monitoring.coreos.com/v1" or "selector" not in sm["spec"]:
        fail("ServiceMonitor without spec.selector")
    picked = [s for s in by_kind["Service"]
              if all(s["metadata"].get("labels", {}).get(k) == v
                     for k, v in sm["spec"]["selector"]["matchLabels"].items())]
    if len(picked) != 1:
        fail(f"the ServiceMonitor selects {len(picked)} Services, not the admin one")
    for e in sm["spec"]["endpoints"]:
        if e["port"] not in {p["name"] for p in picked[0]["spec"]["ports"]} or e.get("path") != "/metrics":
            fail("a ServiceMonitor endpoint is not the admin port's /metrics")
    if not fast:
        print(f"PASS manifests {path}: {len(docs)} objects; probes, selectors, ports and the ServiceMonitor agree")
        return
    # NetworkAttachmentDefinition (k8s.cni.cncf.io/v1): spec.config is a CNI
    # JSON config with cniVersion, name and type.
    nads = by_kind.get("NetworkAttachmentDefinition", [])
    if not nads:
        fail("no NetworkAttachmentDefinition")
    nad = nads[0]
    cfg = json.loads(nad["spec"]["config"])
    for k in ("cniVersion", "name", "type"):
        if k not in cfg:
            fail(f"NetworkAttachmentDefinition config without {k}")
    ann = pod["metadata"].get("annotations", {})
    if ann.get("k8s.v1.cni.cncf.io/networks") != nad["metadata"]["name"]:
        fail("the pods do not attach to the NetworkAttachmentDefinition")
    vf = nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"]
    req, lim = c["resources"]["requests"], c["resources"]["limits"]
    for r in (vf, "rdma/hca_shared_devices_a", "hugepages-2Mi"):
        if r not in req or req.get(r) != lim.get(r):
            fail(f"resource {r} not requested (with an equal limit)")
    if req.get("cpu") != lim.get("cpu") or not str(req["cpu"]).isdigit() or req.get("memory") != lim.get("memory"):
        fail("not Guaranteed with integer CPUs (no pinned cores)")
    if "IPC_LOCK" not in c["securityContext"]["capabilities"].get("add", []):
        fail("no IPC_LOCK for registered memory")
    if not any(v.get("emptyDir", {}).get("medium", "").startswith("HugePages") for v in pod["spec"]["volumes"]):
        fail("no hugepages volume")
    print(f"PASS manifests {path}: {len(docs)} objects; VF {vf}, RDMA device, hugepages, "
          f"{req['cpu']} pinned CPUs, NetworkAttachmentDefinition {nad['metadata']['name']} referenced")


main()
