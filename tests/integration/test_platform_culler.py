"""The idle culler, as configured by the hub, stops an idle server.

Why a second hub: the culler's timeout is a hub-start setting; the session hub keeps the
stack's default (3600 s) so it never culls the other scenarios' servers. This hub shares the
directory and the Postgres cluster (its own database) and uses the same environment, except
JHC_CULL_TIMEOUT/JHC_CULL_EVERY, which the Pulumi layer never sets below 300 s but jhc_hub
accepts (any integer >= 0).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import docker
import pytest
import stack

TIMEOUT, EVERY = 8, 2


@pytest.fixture(scope="module")
def culling_hub(platform: stack.Platform, tmp_path_factory: pytest.TempPathFactory,
                ) -> Iterator[stack.Hub]:
    platform.postgres.psql("CREATE DATABASE culler", database="postgres")
    hub, _, _ = stack.start_hub(
        platform.settings, root=tmp_path_factory.mktemp("culler"), network=platform.network,
        ldap=platform.ldap, postgres=platform.postgres, image=platform.image, db_name="culler",
        extra={"JHC_CULL_TIMEOUT": str(TIMEOUT), "JHC_CULL_EVERY": str(EVERY)})
    try:
        yield hub
    finally:
        hub.stop()
        hub.proxy.stop()


def test_idle_server_is_culled(platform: stack.Platform, culling_hub: stack.Hub,
                               docker_engine: docker.DockerClient) -> None:
    browser = stack.Browser(culling_hub.url)
    assert browser.login("eli", platform.passwords["eli"]).status_code == 302
    eli = stack.TokenClient(culling_hub.url, browser.new_token("eli"))
    # eli (students) gets the only image open to everyone without choosing
    assert eli.start_server("eli").status_code in (201, 202)
    assert docker_engine.containers.get("jupyter-eli").attrs["Config"]["Image"] == platform.image
    started = eli.user("eli")["servers"][""]["started"]

    stack.wait_until(lambda: not eli.user("eli").get("servers"), TIMEOUT + 4 * EVERY + 60,
                     "the culler to stop eli's server", interval=1)
    with pytest.raises(docker.errors.NotFound):
        docker_engine.containers.get("jupyter-eli")
    log = culling_hub.log.read_text()
    assert re.search(r"Culling server eli \(inactive for", log), log[-3000:]
    assert "DELETE /hub/api/users/eli/server" in log
    # the user was stopped, not deleted (the culler's role has no user deletion)
    assert eli.user("eli")["name"] == "eli" and started
