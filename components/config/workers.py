"""The worker keys of the host layer: how many worker VMs join the main host's swarm, and their size.

Read after the main host's settings, since a worker's size defaults to the main host's and must
run the same image (so the same CPU architecture).
"""

from __future__ import annotations

from components.config.reader import _Reader
from components.config.settings import AwsSettings, ConfigError, OpenStackSettings, WorkerSettings

MAX_WORKERS = 50
MAX_TOKEN_GENERATION = 1_000_000
_WORKER_ONLY = ("openstackWorkerFlavor", "awsWorkerInstanceType")


def _workers(r: _Reader, cloud: str, openstack: OpenStackSettings | None,
             aws: AwsSettings | None) -> WorkerSettings | None:
    """None for hostWorkers 0: the single-host program stays exactly as it was."""
    count = r.integer("hostWorkers", 0, MAX_WORKERS)
    if count == 0:
        return None
    if cloud == "local":
        raise ConfigError("hostWorkers", "workers are VMs and need cloud=openstack or cloud=aws",
                          "Set hostWorkers to 0 for the local stack")
    generation = r.integer("hostWorkersJoinTokenGeneration", 0, MAX_TOKEN_GENERATION)
    if openstack is not None:
        return WorkerSettings(count, r.string("openstackWorkerFlavor") or openstack.flavor,
                              join_token_generation=generation)
    assert aws is not None
    from components.config.host import is_graviton
    size = r.string("awsWorkerInstanceType") or aws.instance_type
    if is_graviton(size) != is_graviton(aws.instance_type):
        raise ConfigError("awsWorkerInstanceType", f"{size} has another CPU architecture than "
                          f"awsInstanceType {aws.instance_type}",
                          "Workers run the main host's AMI and images: choose an instance type "
                          "of the same architecture (both Graviton, or neither)")
    public_ip = r.boolean("awsWorkerPublicIp")
    if not public_ip and aws.subnet_id is None:
        # The default VPC's subnets route to an internet gateway only: an instance without a
        # public address there has no way out (AWS VPC user guide, "default VPC"), and a
        # worker installs Docker from the distribution's mirrors at boot.
        raise ConfigError("awsWorkerPublicIp", "workers in the default VPC have no outbound "
                          "route without a public IPv4 address",
                          "Run `pulumi config set awsWorkerPublicIp true` (inbound stays closed "
                          "to everything but the stack's nodes), or set awsVpcId/awsSubnetId to "
                          "a private subnet with a NAT gateway")
    return WorkerSettings(count, size, r.integer("awsWorkerRootVolumeSizeGb", 20, 1024),
                          public_ip, generation)


def _unused_worker_keys(r: _Reader, cloud: str) -> None:
    """A worker size for the other cloud is a mistake worth naming, not a silent no-op."""
    for key in _WORKER_ONLY:
        if r.string(key) and not key.startswith(cloud):
            raise ConfigError(key, f"does not apply to cloud={cloud}",
                              "Remove it, or use the key of your cloud")
