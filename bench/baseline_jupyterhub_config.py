"""The bare baseline of bench/spawn_latency.py and bench/deployed_latency.py: JupyterHub +
DockerSpawner in the shape of jupyterhub-deploy-docker (DummyAuthenticator instead of its
NativeAuthenticator, sqlite, the hub starts its own configurable-http-proxy, no hardening, no
per-user mounts). Per-user limits (BENCH_MEM_LIMIT, BENCH_CPU_LIMIT) only when the bench sets
them: deployed_latency.py gives it the deployed stack's limits and notebook image.

Why a file: traitlets executes it as `jupyterhub -f`; the bench sets the BENCH_* variables.
"""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets)

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['BENCH_PORT']}"
c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{os.environ['BENCH_HUB_PORT']}"
c.JupyterHub.hub_connect_url = f"http://{os.environ['BENCH_GATEWAY']}:{os.environ['BENCH_HUB_PORT']}"
c.ConfigurableHTTPProxy.command = [os.environ["BENCH_CHP"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['BENCH_PROXY_API_PORT']}"
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"benchadmin"}
c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = os.environ["BENCH_IMAGE"]
c.DockerSpawner.network_name = os.environ["BENCH_NETWORK"]
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True
c.DockerSpawner.pull_policy = "never"
# Same start/HTTP timeouts as the platform gets in the bench, so both wait equally long.
c.Spawner.start_timeout = c.Spawner.http_timeout = int(os.environ["BENCH_START_TIMEOUT"])
if os.environ.get("BENCH_MEM_LIMIT"):
    c.DockerSpawner.mem_limit = os.environ["BENCH_MEM_LIMIT"]
if os.environ.get("BENCH_CPU_LIMIT"):
    c.DockerSpawner.cpu_limit = float(os.environ["BENCH_CPU_LIMIT"])
