"""deploy/systemd, deploy/kubernetes and deploy/docker, checked offline with real parts: the manifests against the
Kubernetes JSON schemas (strict, bundled with kubernetes-validate), the shipped aisre.yaml files against aisre's
config schema, the probe paths and port on a real gateway built from the ConfigMap, the systemd units with
`systemd-analyze verify`, and every command line against the real CLI."""

from __future__ import annotations

import configparser
import copy
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import typer
import yaml

from aisre.cli.main import app as cli_app
from aisre.config import parse_config
from aisre.testing.oip_server import oip_app
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread

from .gateway_helpers import RunningGateway

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = [SYSTEMD / "aisre.service", SYSTEMD / "aisre-watch.service"]
INSTALLED_AISRE = "/opt/aisre/venv/bin/aisre"  # where the units expect the package's entry point
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PROMTOOL = shutil.which("promtool")


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) of every Kubernetes manifest (the kustomization is kustomize's, not the API's)."""
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def resource(kind: str, name: str) -> dict[str, Any]:
    (found,) = [r for _, r in manifests() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("name,manifest", manifests(), ids=lambda v: v if isinstance(v, str) else "")
def test_manifest_validates_against_strict_kubernetes_schemas_offline(name: str, manifest: dict[str, Any]):
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_schema_validation_refuses_a_misspelled_field():
    deployment = copy.deepcopy(resource("Deployment", "aisre"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    assert kustomization["namespace"] == resource("Namespace", "aisre")["metadata"]["name"]


def configmap_yaml() -> str:
    return resource("ConfigMap", "aisre-config")["data"]["aisre.yaml"]


def secret_env() -> dict[str, str]:
    return resource("Secret", "aisre-secrets")["stringData"]


def env_refs(text: str) -> set[str]:
    """The ${NAME}s of a config's values (comments left out, as the loader leaves them)."""
    values = yaml.safe_dump(yaml.safe_load(text))
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", values))


def test_configmap_aisre_yaml_passes_the_config_schema_with_the_secrets_environment(monkeypatch: pytest.MonkeyPatch):
    text = configmap_yaml()
    secrets = secret_env()
    assert env_refs(text) <= set(secrets), "every ${NAME} of aisre.yaml comes from the Secret"
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    cfg = parse_config(text, "configmap aisre-config")
    assert cfg.auth.enabled and cfg.auth.key_secret_env in secrets  # one key secret for every replica
    assert cfg.gateway.host == "0.0.0.0" and cfg.gateway.workers == 1
    assert cfg.store.path.startswith("/var/lib/aisre/")
    # the replicas share state through the Redis Service of redis.yaml
    redis = resource("Service", "aisre-redis")
    assert cfg.state.url == f"redis://{redis['metadata']['name']}:{redis['spec']['ports'][0]['port']}/0"
    # shutdown: in-flight requests finish before Kubernetes kills the pod
    pod = resource("Deployment", "aisre")["spec"]["template"]["spec"]
    assert cfg.gateway.shutdown_grace_s < pod["terminationGracePeriodSeconds"]


def test_configmap_aisre_yaml_names_the_unset_secret_when_the_environment_lacks_it(monkeypatch: pytest.MonkeyPatch):
    from aisre.errors import ConfigError

    for name, value in secret_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AISRE_ADMIN_KEY")
    with pytest.raises(ConfigError, match="AISRE_ADMIN_KEY is not set"):
        parse_config(configmap_yaml())


def test_systemd_example_config_keeps_its_store_in_the_units_state_directory(monkeypatch: pytest.MonkeyPatch):
    text = (SYSTEMD / "aisre.yaml").read_text()
    env = dict(
        line.split("=", 1)
        for line in (SYSTEMD / "aisre.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert env_refs(text) <= set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cfg = parse_config(text, "deploy/systemd/aisre.yaml")
    unit = read_unit(SYSTEMD / "aisre.service")
    assert cfg.store.path.startswith(f"/var/lib/{unit['StateDirectory']}/")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (apt-get install prometheus)")
@pytest.mark.parametrize("source", ["configmap", "systemd"])
def test_slo_rules_of_the_shipped_configs_pass_promtool(tmp_path: Path, source: str):
    text = configmap_yaml() if source == "configmap" else (SYSTEMD / "aisre.yaml").read_text()
    config = tmp_path / "aisre.yaml"
    config.write_text(text)
    env = {"PATH": "/usr/bin:/bin", **{name: "x" * 40 for name in env_refs(text)}}
    rules = tmp_path / "rules.yml"
    made = subprocess.run(
        [sys.executable, "-m", "aisre", "slo", "rules", "-c", str(config), "-o", str(rules)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    checked = subprocess.run([str(PROMTOOL), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_deployment_probes_and_port_are_served_by_a_gateway_built_from_the_configmap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The ConfigMap's aisre.yaml (store in tmp, no Redis, upstreams on local mocks) in a real uvicorn server:
    every probe path of the Deployment answers 200 on the container port's number."""
    for name, value in secret_env().items():
        monkeypatch.setenv(name, value)
    doc = yaml.safe_load(configmap_yaml())
    container = resource("Deployment", "aisre")["spec"]["template"]["spec"]["containers"][0]
    (port,) = [p for p in container["ports"] if p["name"] == "http"]
    assert doc["gateway"]["port"] == port["containerPort"]
    service = resource("Service", "aisre")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= container_labels().items()
    with serve_in_thread(oip_app()) as oip, serve_in_thread(openai_app()) as llm:
        doc["store"]["url"] = f"sqlite:///{tmp_path / 'aisre.db'}"
        del doc["state"]
        for model in doc["models"].values():
            for version in model["versions"].values():
                version["replicas"] = [llm.url + "/v1" if model["protocol"] == "openai" else oip.url]
        cfg = parse_config(yaml.safe_dump(doc))
        with RunningGateway(cfg) as gw:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                get = container[probe]["httpGet"]
                assert get["port"] == "http", probe
                answer = httpx.get(gw.url + get["path"], timeout=10)
                assert answer.status_code == 200, (probe, get["path"], answer.text)


def container_labels() -> dict[str, str]:
    return resource("Deployment", "aisre")["spec"]["template"]["metadata"]["labels"]


def read_unit(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text())
    return dict(parser["Service"])


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_unit_is_hardened_and_restarts_on_failure(unit: Path):
    service = read_unit(unit)
    assert service["DynamicUser"] == "yes" and service["StateDirectory"] == "aisre"
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert service["Restart"] == "on-failure" and service["EnvironmentFile"].lstrip("-") == "/etc/aisre/aisre.env"
    assert service["CapabilityBoundingSet"] == "" and service["PrivateTmp"] == "yes"


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not found")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path):
    """With the entry point at this checkout's (verify wants ExecStart's program to exist); no warning at all."""
    aisre = Path(sys.executable).with_name("aisre")
    assert aisre.exists()
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_AISRE, str(aisre)))
    result = verify(tmp_path, [u.name for u in UNITS])
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify_reports_a_misspelled_setting(tmp_path: Path):
    text = UNITS[0].read_text().replace(INSTALLED_AISRE, str(Path(sys.executable).with_name("aisre")))
    (tmp_path / "aisre.service").write_text(text.replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = verify(tmp_path, ["aisre.service"])
    assert "ProtectSystm" in result.stdout + result.stderr


def verify(directory: Path, units: list[str]) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE
    cmd = [SYSTEMD_ANALYZE, "verify", "--man=no", *[f"./{u}" for u in units]]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=directory, timeout=60)


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv) of every aisre command the deployment runs: the units' ExecStart, the container's command."""
    out = [(unit.name, shlex.split(read_unit(unit)["ExecStart"])) for unit in UNITS]
    container = resource("Deployment", "aisre")["spec"]["template"]["spec"]["containers"][0]
    out.append(("deployment.yaml", container["command"] + container.get("args", [])))
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd
    out.append(("Dockerfile", yaml.safe_load(cmd.group(1))))
    return out


@pytest.mark.parametrize("where,argv", command_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_deployment_command_lines_name_real_cli_commands_and_options(where: str, argv: list[str]):
    assert Path(argv[0]).name == "aisre", where
    command: Any = typer.main.get_command(cli_app)  # typer's own click (vendored)
    words = argv[1:]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        assert words[0] in command.commands, f"{where}: no command 'aisre {words[0]}'"
        command = command.commands[words.pop(0)]
    assert not hasattr(command, "commands"), f"{where}: {argv} names a group, not a command"
    options = {opt: p for p in command.params for opt in p.opts}
    i = 0
    while i < len(words):
        assert words[i] in options, f"{where}: 'aisre {command.name}' has no option {words[i]}"
        i += 1 if options[words[i]].is_flag else 2
    # they all read the config where the unit's ConfigurationDirectory and the pod's volume put it
    assert words[words.index("--config") + 1] == "/etc/aisre/aisre.yaml"
