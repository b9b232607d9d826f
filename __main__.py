"""jupyterhub-cloud: stack config → host → Docker engine → Jupyter platform. Wiring only."""

import pulumi

from components.aws_host import AwsHost
from components.config import load_settings, raw_project_config
from components.local_host import LocalHost
from components.openstack_host import OpenStackHost

HOSTS = {"openstack": OpenStackHost, "aws": AwsHost, "local": LocalHost}

settings = load_settings(raw_project_config(), pulumi.get_stack())
host = HOSTS[settings.host.cloud]("jhc", settings.host)
engine = host.docker_provider("jhc-docker", settings.host)

pulumi.export("publicAddress", host.public_address)
pulumi.export("dockerHost", host.docker_host)
pulumi.export("dataVolumeId", host.data_volume_id)
if host.ssh_user:
    pulumi.export("sshCommand", host.public_address.apply(lambda ip: f"ssh {host.ssh_user}@{ip}"))
