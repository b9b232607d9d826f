"""jupyterhub-cloud: stack config → host → Docker engine → Jupyter platform. Wiring only."""

import os

import pulumi

from components.config import load_settings, raw_project_config
from components.host import host_class
from components.platform import Platform, PlatformArgs
from components.platform.engine import Engine, bind_to_engine, check_shell

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
