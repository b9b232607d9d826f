"""jupyterhub-cloud: stack config → host → Docker engine → Jupyter platform. Wiring only."""

import os

import pulumi

from components.config import load_settings, raw_project_config
from components.engine import Engine, bind_to_engine, check_shell
from components.host import host_class
from components.platform import Platform, PlatformArgs

check_shell(os.environ)
raw, secret_keys = raw_project_config()
settings = load_settings(raw, pulumi.get_stack(), secret_keys)
host = host_class(settings.host.cloud)("jhc", settings.host)
provider = host.docker_provider("jhc-docker", settings.host)
engine = Engine(identity=host.engine_identity, docker_host=host.docker_host,
                ssh_opts=pulumi.Output.all(*(host.ssh_opts or [])).apply(" ".join))
platform = Platform("jhc", PlatformArgs(settings, host.data_dir, host.public_address, engine),
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
