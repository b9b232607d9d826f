"""AWS side of backups: the S3 bucket with its scoped credentials, and DLM snapshots of the volume.

Host layer (it imports pulumi_aws): the AwsHost hands the bucket to the platform as a
BackupTarget, so the service layer never imports a cloud SDK. None of these resources is an
input of the instance or the volume: changing backup settings never touches either.
Arguments checked with inspect.signature against pulumi-aws 7.51.1 and the provider docs
(pulumi.com/registry/packages/aws/api-docs/dlm/lifecyclepolicy, .../s3/bucket*).
"""

from __future__ import annotations

import json
import re

import pulumi

from components.config import DataSnapshots
from components.host import BackupTarget
from components.host.aws_sdk import dlm, iam, s3

# S3 versioning keeps what restic prunes (or a leaked key deletes) for this many days: the
# backup user may delete objects, but not object versions.
NONCURRENT_DAYS = 30
STACK_TAG = "jupyterhub-cloud-stack"


def _clean(stack: str) -> str:
    """The stack name in what S3 bucket names and IAM user names both accept."""
    return re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-")[:20] or "stack"


def bucket_prefix(stack: str) -> str:
    """bucket_prefix leaves room for the provider's unique suffix (at most 37 characters)."""
    return f"jhc-{_clean(stack)}-backup-"


def bucket_policy(bucket_arn: str) -> str:
    """What restic needs (list, read, write, delete objects) on this bucket only."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": bucket_arn},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{bucket_arn}/*"},
    ]}, sort_keys=True)


def s3_backup_target(name: str, stack: str, keep: pulumi.ResourceOptions,
                     parent: pulumi.Resource) -> BackupTarget:
    """A private, versioned, encrypted bucket and an IAM user that can use only this bucket."""
    child = pulumi.ResourceOptions(parent=parent)
    # Holds the backups: protected and retained like the data volume; never force-destroyed.
    bucket = s3.Bucket(f"{name}-bucket", bucket_prefix=bucket_prefix(stack), force_destroy=False,
                       tags={"jupyterhub-cloud": "backups", STACK_TAG: stack}, opts=keep)
    s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
                               block_public_policy=True, ignore_public_acls=True,
                               restrict_public_buckets=True, opts=child)
    s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                        versioning_configuration={"status": "Enabled"}, opts=child)
    s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                "bucket_key_enabled": True}], opts=child)
    s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=bucket.id, rules=[
        {"id": "expire-pruned-versions", "status": "Enabled", "filter": {"prefix": ""},
         "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS}},
        {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {"prefix": ""},
         "abort_incomplete_multipart_upload": {"days_after_initiation": 7}},
    ], opts=child)
    user = iam.User(f"{name}-user", name=f"jhc-{_clean(stack)}-backup",
                    path="/jupyterhub-cloud/",
                    tags={"jupyterhub-cloud": "backups", STACK_TAG: stack}, opts=child)
    iam.UserPolicy(f"{name}-user-policy", user=user.name,
                   policy=bucket.arn.apply(bucket_policy), opts=child)
    # The SDK marks AccessKey.secret as a secret output (additional_secret_outputs).
    key = iam.AccessKey(f"{name}-key", user=user.name, opts=child)
    repository = pulumi.Output.concat("s3:s3.", bucket.region, ".amazonaws.com/", bucket.bucket)
    env = pulumi.Output.secret(pulumi.Output.all(key.id, key.secret).apply(
        lambda k: {"AWS_ACCESS_KEY_ID": k[0], "AWS_SECRET_ACCESS_KEY": k[1]}))
    return BackupTarget(repository, env, None)


DLM_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "dlm.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}, sort_keys=True)
# The actions of the provider docs' DLM example role (snapshots of volumes, and their tags).
DLM_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Resource": "*",
     "Action": ["ec2:CreateSnapshot", "ec2:CreateSnapshots", "ec2:DeleteSnapshot",
                "ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"]},
    {"Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": "arn:aws:ec2:*::snapshot/*"},
]}, sort_keys=True)


def data_snapshots(name: str, stack: str, snapshots: DataSnapshots,
                   parent: pulumi.Resource) -> dlm.LifecyclePolicy:
    """Daily EBS snapshots of the volume tagged STACK_TAG=stack, the newest `keep` kept."""
    child = pulumi.ResourceOptions(parent=parent)
    role = iam.Role(f"{name}-role", assume_role_policy=DLM_TRUST,
                    description="jupyterhub-cloud: DLM snapshots of the data volume", opts=child)
    iam.RolePolicy(f"{name}-role-policy", role=role.id, policy=DLM_POLICY, opts=child)
    return dlm.LifecyclePolicy(
        f"{name}-policy", description=f"jupyterhub-cloud {stack}: daily data volume snapshots",
        execution_role_arn=role.arn, state="ENABLED",
        policy_details={
            "resource_types": ["VOLUME"],
            "target_tags": {STACK_TAG: stack},
            "schedules": [{
                "name": f"daily, {snapshots.keep} kept",
                "create_rule": {"interval": 24, "interval_unit": "HOURS",
                                "times": snapshots.time},
                "retain_rule": {"count": snapshots.keep},
                "copy_tags": True,
            }],
        }, opts=child)
