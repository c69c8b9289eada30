"""The Kubernetes manifests (docker/k8s): valid, offline, and wired together.

Each file is checked against the JSON schemas of one Kubernetes version that the
kubernetes-validate package ships (no cluster, no network), in strict mode: a field the
schema does not know is an error, as the API server's own strict field validation does
(`kubectl apply --validate=strict`). Mutated copies prove the validator can fail. The
rest checks what no schema can: that the names, labels and ports agree across files and
with the images built from docker/app and docker/ui.
"""

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

# The Kubernetes version the manifests are validated against: the newest whose schemas
# kubernetes-validate 1.37 ships. Raise it (and the package's pin in pyproject.toml)
# together; docker/k8s/README.md names it too (a test below checks).
KUBERNETES_VERSION = "1.37"

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "docker" / "k8s"
MANIFESTS = ["configmap.yaml", "secret.yaml", "deployment.yaml", "service.yaml", "hpa.yaml",
             "dashboard.yaml"]
PART_OF = "ml-containers-workbook"
API_PORT = 5000
UI_PORT = 8501
# The settings the model service reads (docker/app/app.py and gunicorn.conf.py).
SERVICE_SETTINGS = {"MODEL_PATH", "MODEL_SHA256", "MAX_BATCH", "LOG_LEVEL", "PORT", "WORKERS",
                    "API_TOKEN_FILE", "REDIS_URL", "CACHE_TTL"}
# A Kubernetes resource quantity: 256Mi, 250m, 1, 0.5, 1e3 (the schema accepts any string).
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def load(name):
    """The resources in one manifest file (a file may hold several, separated by ---)."""
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def validate(resource):
    """Validate one resource strictly against KUBERNETES_VERSION; return the schema version.

    Raises kubernetes_validate.ValidationError for a resource that does not fit its schema,
    and SchemaNotFoundError for a kind or apiVersion that this Kubernetes does not serve
    (the command-line tool only warns about that one; here it is a failure).
    """
    return kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def assert_valid(resource):
    """Validate, failing with one short line (the exception's own text dumps the schema)."""
    try:
        return validate(resource)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(part) for part in e.absolute_path) or "(top level)"
        problem = f"{resource['kind']} {resource['metadata']['name']}: {where}: {e.message}"
    pytest.fail(problem, pytrace=False)  # outside `except`, so no chained traceback


def find(kind, name=None):
    """The one resource of this kind (and name) across all the manifests."""
    found = [r for f in MANIFESTS for r in load(f)
             if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def api_deployment():
    return find("Deployment", "iris-api")


def ui_deployment():
    return find("Deployment", "iris-dashboard")


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def port_number(container, port):
    """A probe's or Service's port as a number: a named port is looked up in the container."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"port {port!r} names none of the container's ports"
    return named[port]


def effective_security(deployment):
    """The container's security settings, with the pod's as defaults (as Kubernetes merges)."""
    pod = deployment["spec"]["template"]["spec"].get("securityContext", {})
    return {**pod, **container(deployment).get("securityContext", {})}


def dockerfile_instruction(folder, instruction):
    """The argument of the last INSTRUCTION line of docker/<folder>/Dockerfile."""
    lines = (ROOT / "docker" / folder / "Dockerfile").read_text().splitlines()
    found = [line.split(None, 1)[1].strip() for line in lines
             if line.upper().startswith(instruction + " ")]
    assert found, f"no {instruction} in docker/{folder}/Dockerfile"
    return found[-1]


# --- every file validates --------------------------------------------------------------


def test_the_folder_holds_the_manifests_and_a_readme():
    assert sorted(p.name for p in K8S.glob("*.yaml")) == sorted(MANIFESTS)
    assert not list(K8S.glob("*.yml")), "use .yaml, like the other manifests"
    assert (K8S / "README.md").is_file()


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_validates_strictly(name):
    resources = load(name)
    assert resources, f"{name} holds no resource"
    for resource in resources:
        # The schema of exactly this version was used (not an older fallback).
        assert assert_valid(resource) == KUBERNETES_VERSION


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_labelled(name):
    for resource in load(name):
        labels = resource["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == PART_OF, resource["metadata"]["name"]
        assert labels.get("app.kubernetes.io/name"), resource["metadata"]["name"]
        template = resource.get("spec", {}).get("template")
        if template:  # the pods a Deployment creates carry the labels too
            assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == PART_OF


def test_readme_names_every_file_and_the_pinned_version():
    readme = (K8S / "README.md").read_text()
    for name in MANIFESTS:
        assert name in readme, f"README.md does not describe {name}"
    assert f"Kubernetes {KUBERNETES_VERSION}" in readme
    assert "kind load docker-image" in readme


def test_pinned_version_is_shipped_by_the_package():
    shipped = {kubernetes_validate.utils.major_minor(v)
               for v in kubernetes_validate.utils.all_versions()}
    assert KUBERNETES_VERSION in shipped, f"kubernetes-validate ships {sorted(shipped)}"


# --- the validator can fail ------------------------------------------------------------


def rename_replicas(d):
    d["spec"]["replica"] = d["spec"].pop("replicas")


def set_replicas_text(d):
    d["spec"]["replicas"] = "three"


def drop_selector(d):
    del d["spec"]["selector"]


def typo_in_probe(d):
    container(d)["readinessProbe"]["httpGet"]["paht"] = "/health"


def port_as_text(d):
    container(d)["ports"][0]["containerPort"] = "5000"


def drop_as_text(d):
    container(d)["securityContext"]["capabilities"]["drop"] = "ALL"


BROKEN = {
    # name: (file, kind, mutation, error path, words in the error message)
    "typo_replica": ("deployment.yaml", "Deployment", rename_replicas, ["spec"],
                     "'replica' was unexpected"),
    "replicas_three": ("deployment.yaml", "Deployment", set_replicas_text,
                       ["spec", "replicas"], "'three' is not of type 'integer'"),
    "no_selector": ("deployment.yaml", "Deployment", drop_selector, ["spec"],
                    "'selector' is a required property"),
    "typo_deep_in_probe": ("deployment.yaml", "Deployment", typo_in_probe,
                           ["spec", "template", "spec", "containers", 0, "readinessProbe",
                            "httpGet"], "'paht' was unexpected"),
    "port_as_text": ("deployment.yaml", "Deployment", port_as_text,
                     ["spec", "template", "spec", "containers", 0, "ports", 0,
                      "containerPort"], "'5000' is not of type 'integer'"),
    "drop_not_a_list": ("deployment.yaml", "Deployment", drop_as_text,
                        ["spec", "template", "spec", "containers", 0, "securityContext",
                         "capabilities", "drop"], "'ALL' is not of type 'array'"),
    "configmap_number": ("configmap.yaml", "ConfigMap",
                         lambda d: d["data"].update(WORKERS=2), ["data", "WORKERS"],
                         "2 is not of type 'string'"),
    "service_port_text": ("service.yaml", "Service",
                          lambda d: d["spec"]["ports"][0].update(port="eighty"),
                          ["spec", "ports", 0, "port"], "'eighty' is not of type 'integer'"),
    "hpa_v1_has_no_metrics": ("hpa.yaml", "HorizontalPodAutoscaler",
                              lambda d: d.update(apiVersion="autoscaling/v1"), ["spec"],
                              "'metrics' was unexpected"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_manifest_fails_validation(case):
    name, kind, mutate, path, words = BROKEN[case]
    (original,) = [r for r in load(name) if r["kind"] == kind]
    assert_valid(original)  # so it is the mutation, not the file, that fails below
    broken = copy.deepcopy(original)
    mutate(broken)
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        validate(broken)
    assert list(caught.value.absolute_path) == path
    assert words in caught.value.message


def test_strict_mode_is_what_catches_a_typo():
    broken = copy.deepcopy(api_deployment())
    rename_replicas(broken)
    # Without strict mode an unknown field passes, and the cluster would silently run
    # one replica (the default) instead of the three that were meant.
    kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


@pytest.mark.parametrize("name, kind, api_version", [
    ("deployment.yaml", "Deployment", "extensions/v1beta1"),  # removed in Kubernetes 1.16
    ("hpa.yaml", "HorizontalPodAutoscaler", "autoscaling/v2beta2"),  # removed in 1.26
])
def test_removed_api_version_fails(name, kind, api_version):
    resource = copy.deepcopy(next(r for r in load(name) if r["kind"] == kind))
    resource["apiVersion"] = api_version
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate(resource)


# --- what a schema cannot check --------------------------------------------------------


@pytest.mark.parametrize("deployment", [api_deployment, ui_deployment])
def test_selector_matches_the_pod_labels(deployment):
    # The API server rejects a Deployment whose selector misses its own pods; the schema
    # does not check it.
    d = deployment()
    selector = d["spec"]["selector"]["matchLabels"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("deployment", [api_deployment, ui_deployment])
def test_resources_are_well_formed(deployment):
    # The schema takes any string as a quantity ("512 MB" passes) and any pull policy.
    c = container(deployment())
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            value = str(c["resources"][bound][resource])
            assert QUANTITY.match(value), f"{bound}.{resource}={value!r} is no quantity"
    assert c["imagePullPolicy"] == "IfNotPresent"  # images are loaded, never pulled


# --- the API's Deployment --------------------------------------------------------------


def test_api_deployment_runs_the_production_image_three_times():
    d = api_deployment()
    c = container(d)
    assert d["spec"]["replicas"] == 3
    assert c["image"] == "workbook/app:production"
    assert [p["containerPort"] for p in c["ports"]] == [API_PORT]
    assert dockerfile_instruction("app", "EXPOSE") == str(API_PORT)
    rolling = d["spec"]["strategy"]
    assert rolling["type"] == "RollingUpdate"
    assert rolling["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_api_probes_ask_health_on_the_service_port(probe):
    c = container(api_deployment())
    http = c[probe]["httpGet"]
    assert http["path"] == "/health"
    assert port_number(c, http["port"]) == API_PORT
    assert c[probe]["periodSeconds"] <= 10  # shorter than Kubernetes' default of 10 s


def test_api_startup_probe_allows_a_minute_to_load_the_model():
    startup = container(api_deployment())["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


def test_api_resources_are_sized_for_two_workers():
    c = container(api_deployment())
    assert c["resources"] == {"requests": {"memory": "256Mi", "cpu": "250m"},
                              "limits": {"memory": "512Mi", "cpu": "1"}}


@pytest.mark.parametrize("deployment, folder", [(api_deployment, "app"), (ui_deployment, "ui")])
def test_runs_non_root_on_a_read_only_filesystem(deployment, folder):
    d = deployment()
    security = effective_security(d)
    assert security["runAsNonRoot"] is True
    # The same uid as the image's USER, so files in the image stay readable.
    assert str(security["runAsUser"]) == dockerfile_instruction(folder, "USER").split(":")[0]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    # /tmp stays writable, from an emptyDir volume.
    pod = d["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container(d)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod["automountServiceAccountToken"] is False


def test_api_settings_come_from_the_configmap_and_the_secret():
    c = container(api_deployment())
    configmap = find("ConfigMap")
    secret = find("Secret")
    assert c["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    assert set(configmap["data"]) == {"LOG_LEVEL", "WORKERS", "MAX_BATCH"}
    assert set(configmap["data"]) <= SERVICE_SETTINGS
    # Values the service accepts (it refuses to start on anything else).
    assert configmap["data"]["LOG_LEVEL"] in {"debug", "info", "warning", "error"}
    for key in ("WORKERS", "MAX_BATCH"):
        assert configmap["data"][key].isdigit() and int(configmap["data"][key]) >= 1
    assert {e["name"] for e in c["env"]} <= SERVICE_SETTINGS
    # The token is a file from the Secret, never a variable (the environment shows in
    # `kubectl describe` and is inherited by every child process).
    assert not [e for e in c["env"] if "valueFrom" in e], "a variable comes from the Secret"


def test_api_token_is_a_read_only_file_from_the_secret():
    d = api_deployment()
    c, pod = container(d), d["spec"]["template"]["spec"]
    secret = find("Secret")
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    (item,) = volume["secret"]["items"]
    assert item["key"] in secret["stringData"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in c["env"]}
    path = mount["mountPath"].rstrip("/") + "/" + item["path"]
    assert env["API_TOKEN_FILE"] == path == "/run/secrets/api_token"
    # The service reads that setting (docker/app/app.py) and the non-root user can read
    # the file: group-readable, group = fsGroup = the image's group.
    assert "API_TOKEN_FILE" in (ROOT / "docker" / "app" / "app.py").read_text()
    mode = volume["secret"]["defaultMode"]
    assert mode & 0o040 and not mode & 0o007, oct(mode)
    security = pod["securityContext"]
    assert str(security["fsGroup"]) == dockerfile_instruction("app", "USER").split(":")[1]
    # The probes need no token: they ask /health.
    assert {c[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe",
                                              "livenessProbe")} == {"/health"}


def test_secret_value_is_obviously_fake():
    secret = find("Secret")
    assert "data" not in secret  # plain text in stringData: visibly an example
    for value in secret["stringData"].values():
        assert "FAKE" in value
    assert "never go in git" in (K8S / "secret.yaml").read_text().lower()


def test_api_does_not_set_a_model_digest_that_would_stop_it():
    # A MODEL_SHA256 that differs from the model file's digest makes the service refuse
    # to start, and each training run writes a new file: the image's own .sha256 sidecar
    # is the check, so the manifests set none.
    assert "MODEL_SHA256" not in {v["name"] for v in container(api_deployment()).get("env", [])}
    assert "MODEL_SHA256" not in find("ConfigMap")["data"]
    assert "MODEL_SHA256" not in find("Secret").get("stringData", {})


# --- the Services, the autoscaler, the dashboard ---------------------------------------


def test_service_routes_port_80_to_the_api_pods():
    service = find("Service", "iris-api")
    d = api_deployment()
    assert service["spec"]["type"] == "ClusterIP"
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    # ...and to no other pods (the dashboard's).
    ui_labels = ui_deployment()["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= ui_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert port_number(container(d), port["targetPort"]) == API_PORT


def test_hpa_scales_the_api_deployment_on_cpu():
    hpa = find("HorizontalPodAutoscaler")
    d = api_deployment()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        d["apiVersion"], d["kind"], d["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    # Utilization is a percentage of the CPU request: without one the HPA cannot scale.
    assert container(d)["resources"]["requests"]["cpu"]


def test_dashboard_calls_the_api_service_by_name():
    service = find("Service", "iris-api")
    env = {e["name"]: e.get("value") for e in container(ui_deployment())["env"]}
    match = re.fullmatch(r"http://([a-z0-9.-]+)(?::(\d+))?/?", env["API_URL"])
    assert match, env["API_URL"]
    host, port = match.group(1), int(match.group(2) or 80)
    assert host.split(".")[0] == service["metadata"]["name"]
    assert port == service["spec"]["ports"][0]["port"]


def test_dashboard_runs_the_ui_image_with_streamlit_probes():
    d = ui_deployment()
    c = container(d)
    assert c["image"] == "workbook/ui:latest"
    assert dockerfile_instruction("ui", "EXPOSE") == str(UI_PORT)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/_stcore/health"
        assert port_number(c, c[probe]["httpGet"]["port"]) == UI_PORT
    service = find("Service", "iris-dashboard")
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert port_number(c, service["spec"]["ports"][0]["targetPort"]) == UI_PORT
