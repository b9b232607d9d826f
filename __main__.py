"""jupyterhub-cloud: stack config → host → Docker engine → Jupyter platform. Wiring only."""

import gc
import os

import pulumi

from components.config import load_settings, raw_project_config
from components.host import host_class
from components.platform import Platform, PlatformArgs
from components.platform.engine import Engine, bind_to_engine, check_shell

# The program keeps most of what it allocates (an Output and its futures per property of every
# resource) and the provider SDKs' classes fill the heap, so CPython's full collections, which
# rescan all of it, cost a third (OpenStack) to a half (AWS) of a run at class scale
# (bench/program_under_mocks.py).
# Ten times fewer full collections; young generations as by default. The language host runs this
# file with runpy in its own short-lived process (pulumi/pulumi sdk/python/cmd/
# pulumi-language-python-exec), so the setting covers the whole deployment and nothing else.
gc.set_threshold(700, 10, 100)

check_shell(os.environ)
raw, secret_keys = raw_project_config()
settings = load_settings(raw, pulumi.get_stack(), secret_keys)
host = host_class(settings.host.cloud)("jhc", settings.host)
provider = host.docker_provider("jhc-docker", settings.host)
engine = Engine(identity=host.engine_identity, docker_host=host.docker_host,
                ssh_opts=pulumi.Output.all(*(host.ssh_opts or [])).apply(" ".join))
backup = settings.service.backup
# The host decides where backups go (its cloud's object storage by default); the platform
# only receives the target.
target = host.backup_target("jhc-backup", backup, settings.host) if backup.enabled else None
platform = Platform("jhc", PlatformArgs(
    settings.stack, settings.service, host.data_dir, host.publishing,
    keep_state=not settings.host.allow_data_loss, engine=engine,
    build_platform=settings.host.platform, backup_target=target,
    cluster=host.cluster),
    opts=pulumi.ResourceOptions(providers={"docker": provider},
                                transformations=[bind_to_engine(engine.identity)]))

pulumi.export("url", platform.url)
pulumi.export("adminUsers", list(settings.service.admins))
pulumi.export("initialPasswords", pulumi.Output.secret(platform.secrets.generated_passwords))
pulumi.export("publicAddress", host.public_address)
pulumi.export("dockerHost", host.docker_host)
pulumi.export("dataVolumeId", host.data_volume_id)
if host.ssh_user:
    pulumi.export("sshCommand", host.public_address.apply(lambda ip: f"ssh {host.ssh_user}@{ip}"))
if host.worker_addresses is not None:
    # Workers have no public address: the operator reaches them through the main host.
    pulumi.export("workerSshCommands", pulumi.Output.all(host.public_address, host.worker_addresses)
                  .apply(lambda v: [f"ssh -J {host.ssh_user}@{v[0]} {host.ssh_user}@{ip}"
                                    for ip in v[1]]))
if platform.backup is not None:
    pulumi.export("backupRepository", platform.backup.repository)
    # Store it away from the cloud account: without it no backup can be read.
    pulumi.export("backupRepositoryPassword", pulumi.Output.secret(platform.backup.password))

# What is declared now lives until the process exits, where the interpreter's own collections
# would rescan all of it once more (about 1 s of an AWS run at class scale): leave it out of
# every later collection. The language host exits right after the deployment (sys.exit in
# pulumi-language-python-exec), so nothing frozen here would have been freed earlier.
gc.freeze()
