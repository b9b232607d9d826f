"""The architecture as the code shows it: import boundaries, service addresses, what is deployed.

The import checks read the real import graph (ast), so a platform module that starts asking which
cloud it is on, or a host module that reaches into the platform, fails here.
"""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import pytest

from harness import Declared, Run, container_env, plain, run_program

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "components"
CLOUD_SDKS = ("pulumi_aws", "pulumi_openstack")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((COMPONENTS / package).glob("*.py"))


def test_every_component_module_is_in_a_layer_package() -> None:
    assert sorted(p.name for p in COMPONENTS.glob("*.py")) == []
    assert {p.name for p in COMPONENTS.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "config", "host", "platform"}


@pytest.mark.parametrize("path", modules("platform"), ids=lambda p: p.name)
def test_platform_never_asks_which_cloud(path: Path) -> None:
    imported = imports_of(path)
    assert not {i for i in imported if i.startswith(CLOUD_SDKS)}, imported
    # Only the host package's interface, never a concrete host target.
    assert not {i for i in imported if i.startswith("components.host.")}, imported
    tree = ast.parse(path.read_text())
    asks = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and n.attr in ("cloud", "openstack", "aws")]
    asks += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "HostSettings"]
    assert not asks, f"{path.name} reads host settings: {asks}"


@pytest.mark.parametrize("path", modules("host") + modules("config"), ids=lambda p: p.name)
def test_host_and_config_never_reach_into_the_platform(path: Path) -> None:
    assert not {i for i in imports_of(path) if i.startswith("components.platform")}


def test_readme_layout_table_names_the_packages() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    for package in ("config", "host", "platform"):
        assert f"`components/{package}/" in table, package
    for path in re.findall(r"`(components/[^`]+)`", table):
        for part in re.split(r"[,{}]", path):
            assert "*" in part or (ROOT / path.split("{")[0]).exists(), path


# --- service addresses: every name:port one service uses must be another's alias and port ---

@pytest.fixture(scope="module")
def dev() -> Run:
    return run_program("dev")


def containers(run: Run) -> dict[str, Declared]:
    return {r.plain["name"]: r for r in run.of_type("docker:index/container:Container")}


def aliases(c: Declared) -> dict[str, set[str]]:
    """alias -> the networks the container answers on under that alias."""
    found: dict[str, set[str]] = {}
    for net in c.plain.get("networksAdvanced", []):
        for alias in net.get("aliases", []):
            found.setdefault(alias, set()).add(net["name"])
    return found


env = container_env


def reachable(run: Run, client: str, host: str) -> bool:
    """Whether `host` is an alias of a container on a network `client` is on."""
    cs = containers(run)
    client_nets = {n["name"] for n in cs[client].plain.get("networksAdvanced", [])}
    return any(client_nets & aliases(c).get(host, set()) for c in cs.values())


def flag(command: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}="))


def test_the_proxy_routes_to_the_hub_where_it_listens(dev: Run) -> None:
    cs = containers(dev)
    command = cs["jhc-dev-proxy"].plain["command"]
    target = re.match(r"http://([^:/]+):(\d+)$", flag(command, "default-target"))
    assert target
    hub_env = env(cs["jhc-dev-hub"])
    assert reachable(dev, "jhc-dev-proxy", target[1])
    assert target[1] == hub_env["JHC_HUB_CONNECT_HOST"]
    assert target[2] == hub_env["JHC_HUB_PORT"]


def test_the_hub_reaches_the_proxy_api_postgres_and_ldap(dev: Run) -> None:
    cs = containers(dev)
    hub_env = env(cs["jhc-dev-hub"])
    api = re.match(r"http://([^:/]+):(\d+)$", hub_env["JHC_PROXY_API_URL"])
    assert api and reachable(dev, "jhc-dev-hub", api[1])
    assert api[2] == flag(cs["jhc-dev-proxy"].plain["command"], "api-port")
    for host in (hub_env["JHC_DB_HOST"], hub_env["JHC_LDAP_SERVER"]):
        assert reachable(dev, "jhc-dev-hub", host), host
    assert hub_env["JHC_DB_HOST"] in aliases(cs["jhc-dev-postgres"])
    assert hub_env["JHC_LDAP_SERVER"] in aliases(cs["jhc-dev-ldap"])


def test_caddy_forwards_to_the_proxy_port(dev: Run) -> None:
    cs = containers(dev)
    caddyfile = next(u["content"] for u in cs["jhc-dev-caddy"].plain["uploads"]
                     if u["file"] == "/etc/caddy/Caddyfile")
    upstream = re.search(r"reverse_proxy (\S+):(\d+)", caddyfile)
    assert upstream and reachable(dev, "jhc-dev-caddy", upstream[1])
    assert upstream[1] in aliases(cs["jhc-dev-proxy"])
    assert upstream[2] == flag(cs["jhc-dev-proxy"].plain["command"], "port")


def test_the_reconcile_reaches_ldap_where_it_answers(dev: Run) -> None:
    """The reconcile runs inside the LDAP container (docker exec), so the server its document
    names must be one of that container's own aliases."""
    import json
    cs = containers(dev)
    step = next(r for r in dev.of_type("command:local:Command") if r.name.endswith("-reconcile"))
    assert plain(step.inputs["environment"])["JHC_LDAP_CONTAINER"] == "jhc-dev-ldap"
    desired = json.loads(plain(step.inputs["stdin"]))
    server = re.match(r"ldap://([^:/]+):(\d+)$", desired["server"])
    assert server and server[1] in aliases(cs["jhc-dev-ldap"])


# --- what is deployed follows what is used ---

def test_github_logins_deploy_no_directory() -> None:
    run = run_program("dev", overrides={"auth": "github", "githubClientId": "x",
                                        "githubClientSecret": "y", "githubAllowedOrgs": ["o"]},
                      secret_keys=("githubClientSecret",))
    names = set(containers(run))
    assert not {n for n in names if "ldap" in n}, names
    assert "JHC_LDAP_SERVER" not in env(containers(run)["jhc-dev-hub"])
    assert {"jhc-dev-hub", "jhc-dev-postgres", "jhc-dev-proxy", "jhc-dev-caddy"} <= names


def test_the_local_host_decides_where_caddy_is_published() -> None:
    run = run_program("local", overrides={"localHttpsPort": 9443, "localHttpPort": 9080})
    caddy = containers(run)["jhc-local-caddy"]
    assert {(p["internal"], p["external"], p["ip"]) for p in caddy.plain["ports"]} == {
        (80, 9080, "127.0.0.1"), (443, 9443, "127.0.0.1")}
    assert run.outputs["url"] == "https://localhost:9443"


def test_a_lan_stack_publishes_and_certifies_the_name_people_open() -> None:
    run = run_program("local", overrides={"localBindAddress": "0.0.0.0",
                                          "localSiteName": "hub.lab.example.org"})
    caddy = containers(run)["jhc-local-caddy"]
    assert {p["ip"] for p in caddy.plain["ports"]} == {"0.0.0.0"}
    caddyfile = next(u["content"] for u in caddy.plain["uploads"]
                     if u["file"] == "/etc/caddy/Caddyfile")
    assert re.search(r"^hub\.lab\.example\.org \{", caddyfile, re.M), caddyfile
    assert "tls internal" in caddyfile
    assert run.outputs["url"] == "https://hub.lab.example.org:8443"


def test_every_mutant_of_the_mutation_script_still_applies() -> None:
    """scripts/mutate.py names exact lines of the code; after a refactor a stale mutant would
    silently stop testing anything."""
    import subprocess
    import sys
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "mutate.py"), "--check"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # In a mutated tree this test fails by construction, so the runner must leave it out
    # (else it is the first failure, under -x, for every mutant): it names this very test.
    this = test_every_mutant_of_the_mutation_script_still_applies
    names = runpy.run_path(str(ROOT / "scripts" / "mutate.py"))
    assert names["APPLIES_TEST"] == f"tests/{Path(__file__).name}::{this.__name__}"


@pytest.mark.parametrize(("client", "variable"), [("jhc-dev-hub-db-dump", "PGHOST"),
                                                  ("jhc-dev-backup", "JHC_PG_HOST")])
def test_the_dump_steps_reach_postgres_where_it_answers(dev: Run, client: str,
                                                        variable: str) -> None:
    cs = containers(dev)
    host = env(cs[client])[variable]
    assert reachable(dev, client, host) and host in aliases(cs["jhc-dev-postgres"]), host
