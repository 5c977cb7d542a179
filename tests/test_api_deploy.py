"""deploy/: the Kubernetes manifests validate against the Kubernetes schemas (offline, with
kubernetes-validate), the KServe InferenceService has the structure KServe needs, the Triton
model repository matches the bundle, and the Dockerfile follows the rules we set for it."""
from __future__ import annotations

import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from tests.helpers import REPO

DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30.0"
DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _all_k8s():
    return {p.name: _docs(p) for p in sorted((DEPLOY / "k8s").glob("*.yaml"))}


@pytest.mark.parametrize("name", sorted(p.name for p in (DEPLOY / "k8s").glob("*.yaml")))
def test_manifest_validates_against_kubernetes_schema(name):
    for doc in _docs(DEPLOY / "k8s" / name):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_really_rejects_a_broken_manifest():
    doc = _docs(DEPLOY / "k8s" / "deployment.yaml")[0]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"no": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_deployment_service_hpa_fit_together():
    k8s = {d["kind"]: d for docs in _all_k8s().values() for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(k8s)
    dep, svc, hpa = k8s["Deployment"], k8s["Service"], k8s["HorizontalPodAutoscaler"]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert svc["spec"]["ports"][0]["targetPort"] in port_names
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    args = container["args"]
    assert args[0] == "serve" and args[args.index("--port") + 1] == str(port_names["http"])
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert container["resources"]["requests"]["cpu"]       # the HPA's utilisation needs it


def test_kserve_inference_service_structure(manifest):
    """The KServe CRD is not in kubernetes-validate's schemas: check what KServe requires."""
    (isvc,) = _docs(DEPLOY / "kserve" / "inferenceservice.yaml")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"
    name = isvc["metadata"]["name"]
    assert DNS_1123.fullmatch(name) and len(name) <= 63
    assert name == manifest["model"]["name"]         # V2 path /v2/models/mpg/infer
    assert set(isvc["spec"]) == {"predictor"}
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "onnx"
    assert model["protocolVersion"] == "v2"
    assert re.fullmatch(r"(pvc|s3|gs|https?)://[^\s]+", model["storageUri"])
    for kind in ("requests", "limits"):
        assert set(model["resources"][kind]) == {"cpu", "memory"}
    # The resources block is a core/v1 ResourceRequirements: validate it as one.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [
        {"name": "x", "image": "x", "resources": model["resources"]}]}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_triton_model_repository_matches_the_bundle(bundle_dir, manifest, tmp_path):
    import numpy as np
    import onnxruntime as ort
    out = tmp_path / "repo"
    result = subprocess.run([sys.executable, str(DEPLOY / "kserve" / "model_repository.py"),
                             "--bundle", str(bundle_dir), "--out", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    model = out / "mpg" / "1" / "model.onnx"
    import hashlib
    assert hashlib.sha256(model.read_bytes()).hexdigest() == manifest["artifacts"]["onnx"]["sha256"]
    config = (out / "mpg" / "config.pbtxt").read_text()
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert f'name: "{inp.name}"' in config and f'name: "{outp.name}"' in config
    assert inp.type == "tensor(float)" and "TYPE_FP32" in config
    assert "dims: [ -1, 7 ]" in config and inp.shape[1] == 7
    pred = session.run(None, {inp.name: np.array([[4, 97, 88, 2130, 14.5, 70, 3]], np.float32)})[0]
    assert pred.shape == (1, 1)


def test_triton_repository_refuses_a_tampered_model(bundle_copy, tmp_path):
    (bundle_copy / "model.onnx").write_bytes(b"not a model")
    result = subprocess.run([sys.executable, str(DEPLOY / "kserve" / "model_repository.py"),
                             "--bundle", str(bundle_copy), "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "model.onnx" in result.stderr and "sha256" in result.stderr


def test_dockerfile():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    install = next(l for l in lines if "pip install" in l)
    assert '-c constraints.txt ".[api]"' in install         # only the API extra, pinned
    for heavy in ("tensorflow", "scikit-learn", "build", "dev"):
        assert heavy not in install
    user = [l for l in lines if l.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert any(l.startswith("HEALTHCHECK") for l in lines) and "/v2/health/ready" in text
    assert "--host\", \"0.0.0.0\"" in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    assert "node_modules" in ignore and "reference" in ignore   # no pickle in the image
