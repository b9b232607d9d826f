"""Swarm mode of the platform and of the hub's settings, under Pulumi mocks (issue 11).

A stack with workers gets a Cluster from its host; the example stacks have none, so these tests
hand the platform one (as the host layer does) by wrapping PlatformArgs. The real swarm runs in
tests/integration/test_swarm.py.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import pytest

import components.platform as platform_module
from components.host import Cluster
from harness import Declared, Run, container_env, run_program

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "services" / "hub"))

MANAGER = "10.20.0.5"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def swarm_run(stack: str = "dev", **overrides: Any) -> Run:
    """The program with the host handing over a two-worker cluster."""
    original = platform_module.PlatformArgs

    def with_cluster(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("cluster") is None:
            kwargs["cluster"] = Cluster(manager_address=pulumi.Output.from_input(MANAGER),
                                        worker_count=2,
                                        ready=pulumi.Output.from_input("joined"))
        return original(*args, **kwargs)

    with mock.patch.object(platform_module, "PlatformArgs", with_cluster):
        # never cached: a cached run would be shared with tests that expect no cluster
        return run_program(stack, overrides=overrides or None, secret_store={})


@pytest.fixture(scope="module")
def swarm() -> Run:
    return swarm_run()


@pytest.fixture(scope="module")
def single() -> Run:
    return run_program("dev")


def containers(run: Run) -> dict[str, Declared]:
    return {r.plain["name"]: r for r in run.of_type("docker:index/container:Container")}


def networks(run: Run) -> dict[str, dict]:
    return {r.plain["name"]: r.plain for r in run.of_type("docker:index/network:Network")}


def attached(container: Declared) -> set[str]:
    return {n["name"] for n in container.plain.get("networksAdvanced", [])}


def overlays(run: Run) -> list[str]:
    return [name for name, net in networks(run).items() if net.get("driver") == "overlay"]


def test_overlay_declared_only_with_a_cluster(swarm: Run, single: Run) -> None:
    assert overlays(single) == []
    assert [c for c in containers(single) if c.endswith("-registry")] == []
    [overlay] = overlays(swarm)
    net = networks(swarm)[overlay]
    assert net["attachable"] is True  # the hub and the proxy are containers, not services
    assert "encrypted" in net.get("options", {})


def test_registry_bound_to_the_managers_private_address_only(swarm: Run) -> None:
    [registry] = [c for n, c in containers(swarm).items() if n.endswith("-registry")]
    ports = registry.plain["ports"]
    assert [(p["internal"], p["external"], p["ip"]) for p in ports] == [(5000, 5000, MANAGER)]
    # nothing else on the manager is published besides Caddy's two ports
    published = {n for n, c in containers(swarm).items() if c.plain.get("ports")}
    assert published == {registry.plain["name"], "jhc-dev-caddy"}


def test_notebook_images_are_pushed_to_the_registry(swarm: Run) -> None:
    images = [r.plain for r in swarm.of_type("docker:index/image:Image")
              if "notebook" in r.plain["imageName"]]
    assert images
    for image in images:
        assert image["skipPush"] is False
        assert image["imageName"].startswith(f"{MANAGER}:5000/")


def test_hub_settings_carry_registry_digests_and_the_overlay(swarm: Run) -> None:
    hub = containers(swarm)["jhc-dev-hub"]
    env = container_env(hub)
    assert env["JHC_SPAWNER"] == "swarm"
    [overlay] = overlays(swarm)
    assert env["JHC_NETWORK"] == overlay
    menu = json.loads(env["JHC_IMAGES_JSON"])
    assert menu
    for entry in menu:
        registry_part, _, digest = entry["image"].partition("@")
        assert registry_part == f"{MANAGER}:5000/jhc-dev-notebook-{entry['name']}"
        assert DIGEST.fullmatch(digest), entry["image"]


def test_hub_and_proxy_join_the_overlay_backend_never_does(swarm: Run) -> None:
    [overlay] = overlays(swarm)
    on_overlay = {name for name, c in containers(swarm).items() if overlay in attached(c)}
    assert on_overlay == {"jhc-dev-hub", "jhc-dev-proxy"}
    for name in ("jhc-dev-postgres", "jhc-dev-ldap"):
        assert attached(containers(swarm)[name]) == {"jhc-dev-backend"}
    assert networks(swarm)["jhc-dev-backend"]["internal"] is True
    assert networks(swarm)["jhc-dev-backend"].get("driver") != "overlay"


def test_user_services_are_removed_before_the_overlay_goes(swarm: Run) -> None:
    [cleanup] = [r for r in swarm.resources.values()
                 if r.name.endswith("user-service-cleanup")]
    [overlay] = overlays(swarm)
    assert cleanup.plain["environment"]["JHC_NETWORK"] == overlay
    assert "remove-user-services.sh" in cleanup.plain["delete"]
    hub = swarm.resources["jhc-hub-container"]
    assert cleanup.name in {getattr(d, "_name", None) for d in hub.opts.depends_on}


def test_docker_mode_is_unchanged_byte_for_byte() -> None:
    """The settings document and the hub's traitlets of the example stacks, as recorded from
    the main branch before Swarm mode (tests/hub_snapshot.py)."""
    import hub_snapshot

    recorded = json.loads((HERE / "snapshots" / "hub_docker_mode.json").read_text())
    assert hub_snapshot.snapshot() == recorded


def test_swarm_mode_refuses_tags_and_missing_limits(swarm: Run) -> None:
    from jhc_settings import read_settings
    from jhc_variables import HubConfigError

    from components.config import ConfigError

    hub = containers(swarm)["jhc-dev-hub"]
    env = container_env(hub)
    read_settings(env, read_files=False)  # as deployed
    menu = json.loads(env["JHC_IMAGES_JSON"])
    for bad in (f"{MANAGER}:5000/jhc-dev-notebook-x:latest",  # a tag
                menu[0]["image"].split("/", 1)[1],           # no registry: Docker Hub
                menu[0]["image"].rsplit("@", 1)[1]):         # a local image id
        tagged = [{**menu[0], "image": bad}]
        with pytest.raises(HubConfigError, match="JHC_IMAGES_JSON"):
            read_settings({**env, "JHC_IMAGES_JSON": json.dumps(tagged)}, read_files=False)
    with pytest.raises(HubConfigError, match="JHC_MEM_LIMIT"):
        read_settings({**env, "JHC_MEM_LIMIT": "0"}, read_files=False)
    # the program refuses it at preview, naming the stack config key
    with pytest.raises(ConfigError, match="memLimit"):
        swarm_run(memLimit="0")


def _swarm_config(env: dict[str, str]) -> Any:
    import hub_snapshot  # noqa: F401  (puts the hub modules on sys.path)
    import jhc_hub
    from jhc_settings import read_settings
    from traitlets.config import Config

    settings = read_settings(env, read_files=False)
    settings = dataclasses.replace(
        settings, files_read=True, crypt_keys=(b"k" * 32,), proxy_token="t",
        db=settings.db and dataclasses.replace(settings.db, password="p"))
    c = Config()
    jhc_hub.apply(c, settings)
    return c, settings


def test_swarm_spawner_places_on_workers_reserves_and_hardens(swarm: Run) -> None:
    from dockerspawner import SwarmSpawner

    env = container_env(containers(swarm)["jhc-dev-hub"])
    c, settings = _swarm_config(env)
    assert issubclass(c.JupyterHub.spawner_class, SwarmSpawner)
    w = c.SwarmSpawner
    assert w.extra_placement_spec == {"constraints": ["node.role == worker"]}
    assert w.extra_endpoint_spec == {"mode": "dnsrr"}
    assert c.DockerSpawner.network_name == env["JHC_NETWORK"]
    # dev: memLimit 2G, cpuLimit 1 unless set otherwise; reservations are shares of them
    mem = c.DockerSpawner.mem_limit
    from jhc_values import memory_bytes
    assert memory_bytes(mem) == memory_bytes(env["JHC_MEM_LIMIT"])
    assert w.mem_guarantee == memory_bytes(env["JHC_MEM_LIMIT"]) // 2
    assert w.cpu_guarantee == pytest.approx(float(env["JHC_CPU_LIMIT"]) / 4)
    spec = w.extra_container_spec
    assert spec["cap_drop"] == ["ALL"]
    assert sorted(spec["cap_add"]) == ["CHOWN", "SETGID", "SETUID"]
    assert "privileges" not in spec and "mounts" not in spec
    assert c.JhcSwarmSpawner.pids_limit == settings.pids_limit > 0
    assert w.extra_create_kwargs == {}  # SwarmSpawner passes these to create_service
    assert w.pull_policy == "skip"
    assert w.extra_task_spec == {"restart_policy": {"Condition": "none"}}
    # the same menu per group as a single host
    assert [i.image for i in settings.spawn.images] == \
        [e["image"] for e in json.loads(env["JHC_IMAGES_JSON"])]
    # no Docker socket: the user servers' only mounts are the home, shared and datasets
    from jhc_spawn import user_mounts
    rw, ro = user_mounts(settings.spawn, "alice")
    assert not [p for p in [*rw, *ro] if "docker" in p]
