"""Backups under Pulumi mocks: the container, the repository password, and per cloud the target
(S3 bucket + scoped IAM user + DLM snapshots on AWS, Swift + access-ruled credential on
OpenStack, a directory outside the data directory locally, or any restic URL given)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi.runtime.rpc import is_rpc_secret

from components.config import ConfigError, load_settings
from harness import Declared, Run, plain, run_program

AWS_SECRET = "aws-secret-jhc-backup-key-Zq8"
OS_SECRET = "os-secret-jhc-backup-credential-Zq8"
RESTIC_PASSWORD = "generated-jhc-backup-restic-password-Zq8"


@pytest.fixture(scope="module")
def aws() -> Run:
    return run_program("aws")


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_program("dev")


@pytest.fixture(scope="module")
def local() -> Run:
    return run_program("local", overrides={"localDataDir": "/var/lib/jhc-test/data"})


def backup_container(run: Run) -> Declared:
    found = [r for r in run.of_type("docker:index/container:Container")
             if r.plain["name"].endswith("-backup")]
    assert len(found) == 1, [r.plain["name"] for r in run.of_type(
        "docker:index/container:Container")]
    return found[0]


def envs(container: Declared) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.plain["envs"])


def uploads(container: Declared) -> dict[str, str]:
    return {u["file"]: u["content"] for u in container.plain["uploads"]}


def text(value: Any) -> str:
    return json.dumps(plain(value), default=str)


def assert_only_in_secret_uploads(run: Run, secret_value: str) -> None:
    """The value reaches the backup container as a secret upload and nowhere else in plain."""
    container = backup_container(run)
    assert is_rpc_secret(container.inputs["uploads"])
    assert secret_value in text(container.inputs["uploads"])
    assert secret_value not in text(container.inputs["envs"])
    for r in run:
        for key, value in r.inputs.items():
            if secret_value in text(value):
                assert is_rpc_secret(value), (r.name, key)
    for name, output in run.outputs.items():
        if secret_value in text(output):
            assert name in run.secret_outputs, name


@pytest.mark.parametrize("fixture", ["aws", "dev", "local"])
def test_backup_container_dumps_then_backs_up_the_data(fixture: str, request) -> None:
    run: Run = request.getfixturevalue(fixture)
    container = backup_container(run)
    env = envs(container)
    data = "/var/lib/jhc-test/data" if fixture == "local" else "/srv/jupyterhub"
    binds = {v["containerPath"]: v["hostPath"] for v in container.plain["volumes"]}
    assert binds["/data"] == data
    assert binds["/etc/ldap/slapd.d"] == f"{data}/state/ldap/config"
    assert binds["/var/lib/ldap"] == f"{data}/state/ldap/data"
    assert env["JHC_DATA_DIR"] == "/data" and env["JHC_PG_HOST"] == "postgres"
    assert env["JHC_BACKUP_TIME"] == "02:30"
    assert (env["JHC_BACKUP_KEEP_DAILY"], env["JHC_BACKUP_KEEP_WEEKLY"],
            env["JHC_BACKUP_KEEP_MONTHLY"]) == ("7", "4", "6")
    assert env["JHC_BACKUP_CHECK_DAYS"] == "7" and env["JHC_BACKUP_CHECK_SUBSET"] == "5%"
    files = uploads(container)
    assert set(files) >= {"/run/secrets/restic-password", "/run/secrets/postgres-password",
                          "/run/secrets/cookie-secret", "/run/secrets/crypt-key"}
    assert files["/run/secrets/restic-password"] == RESTIC_PASSWORD
    assert all(u["permissions"] == "0600" for u in container.plain["uploads"])
    assert container.plain["healthcheck"]["tests"] == ["CMD", "jhc-backup", "health"]
    # built FROM the stack's postgres image, so pg_dump matches the server's major
    image = run.resources["jhc-backup-image"]
    from components.platform.versions import POSTGRES_IMAGE
    assert image.plain["build"]["args"] == {"POSTGRES_IMAGE": POSTGRES_IMAGE}
    assert {n["name"] for n in container.plain["networksAdvanced"]} == {
        f"jhc-{fixture}-backend", f"jhc-{fixture}-frontend"}


def test_github_deployment_backs_up_without_a_directory() -> None:
    run = run_program("local", overrides={"auth": "github", "githubClientId": "x",
                                          "githubClientSecret": "y", "githubAllowedOrgs": ["o"]},
                      secret_keys=("githubClientSecret",))
    container = backup_container(run)
    assert envs(container)["JHC_LDAP_CONFIG_DIR"] == ""  # jhc-backup: nothing to slapcat
    binds = {v["containerPath"] for v in container.plain["volumes"]}
    assert not {"/etc/ldap/slapd.d", "/var/lib/ldap"} & binds


def test_local_default_repository_is_outside_the_data_directory(local: Run) -> None:
    container = backup_container(local)
    assert envs(container)["RESTIC_REPOSITORY"] == "/var/lib/jhc-test/data-backups"
    binds = {v["containerPath"]: v["hostPath"] for v in container.plain["volumes"]}
    assert binds["/var/lib/jhc-test/data-backups"] == "/var/lib/jhc-test/data-backups"
    assert local.outputs["backupRepository"] == "/var/lib/jhc-test/data-backups"
    assert not [r for r in local if r.type.startswith(("aws:", "openstack:"))]


@pytest.mark.parametrize("allow, kept", [(False, True), (True, False)])
def test_repository_password_is_kept_like_the_data(allow: bool, kept: bool) -> None:
    run = run_program("aws", overrides={"allowDataLoss": allow})
    password = run.resources["jhc-backup-restic-password"]
    assert password.type == "random:index/randomPassword:RandomPassword"
    assert (password.opts.protect, password.opts.retain_on_delete) == (kept, kept)
    assert not password.plain.get("keepers")  # never regenerated
    bucket = run.one("aws:s3/bucket:Bucket")
    assert (bucket.opts.protect, bucket.opts.retain_on_delete) == (kept, kept)
    assert bucket.plain["forceDestroy"] is False


def test_repository_password_is_a_secret_output(aws: Run) -> None:
    assert aws.outputs["backupRepositoryPassword"] == RESTIC_PASSWORD
    assert "backupRepositoryPassword" in aws.secret_outputs
    assert "backupRepository" not in aws.secret_outputs
    assert_only_in_secret_uploads(aws, RESTIC_PASSWORD)


def test_aws_bucket_is_private_versioned_encrypted_with_lifecycle(aws: Run) -> None:
    bucket = aws.one("aws:s3/bucket:Bucket")
    assert bucket.plain["bucketPrefix"] == "jhc-aws-backup-"
    block = aws.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").plain
    assert block["bucket"] == "jhc-backup-bucket-id"
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy",
                                          "ignorePublicAcls", "restrictPublicBuckets"))
    versioning = aws.one("aws:s3/bucketVersioning:BucketVersioning").plain
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    sse = aws.one("aws:s3/bucketServerSideEncryptionConfiguration:"
                  "BucketServerSideEncryptionConfiguration").plain
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    rules = {r["id"]: r for r in aws.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").plain["rules"]}
    assert rules["expire-pruned-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 30}
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7}
    assert all(r["status"] == "Enabled" for r in rules.values())
    assert envs(backup_container(aws))["RESTIC_REPOSITORY"] == \
        "s3:s3.eu-central-1.amazonaws.com/jhc-aws-backup-0001"


def test_aws_credentials_are_scoped_to_the_bucket_and_secret(aws: Run) -> None:
    policy = json.loads(aws.one("aws:iam/userPolicy:UserPolicy").plain["policy"])
    arn = "arn:aws:s3:::jhc-aws-backup-0001"
    resources = {s["Resource"] for s in policy["Statement"]}
    assert resources == {arn, f"{arn}/*"}
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:PutObject",
                       "s3:DeleteObject"}  # no DeleteObjectVersion: versions outlive a leak
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    user = aws.one("aws:iam/user:User")
    assert aws.one("aws:iam/userPolicy:UserPolicy").plain["user"] == user.plain.get(
        "name", "jhc-backup-user")
    files = uploads(backup_container(aws))
    assert files["/run/secrets/backup-env/AWS_SECRET_ACCESS_KEY"] == AWS_SECRET
    assert files["/run/secrets/backup-env/AWS_ACCESS_KEY_ID"] == "jhc-backup-key-id"
    assert_only_in_secret_uploads(aws, AWS_SECRET)


def test_aws_dlm_snapshots_target_this_volume(aws: Run) -> None:
    volume = aws.one("aws:ebs/volume:Volume").plain
    policy = aws.one("aws:dlm/lifecyclePolicy:LifecyclePolicy").plain
    details = policy["policyDetails"]
    assert details["resourceTypes"] == ["VOLUME"]
    assert details["targetTags"] == {"jupyterhub-cloud-stack": "aws"}
    assert volume["tags"]["jupyterhub-cloud-stack"] == "aws"
    (schedule,) = details["schedules"]
    assert schedule["createRule"] == {"interval": 24, "intervalUnit": "HOURS", "times": "03:30"}
    assert schedule["retainRule"] == {"count": 7}
    assert policy["state"] == "ENABLED"
    role = aws.one("aws:iam/role:Role").plain
    trust = json.loads(role["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "dlm.amazonaws.com"}
    assert policy["executionRoleArn"] == "arn:aws:iam::123456789012:role/jhc-dlm"


def test_aws_snapshots_off_and_existing_volume_tagged() -> None:
    off = run_program("aws", overrides={"awsDataSnapshotsKeep": 0})
    assert not off.of_type("aws:dlm/lifecyclePolicy:LifecyclePolicy")
    existing = run_program("aws", overrides={"existingDataVolumeId": "vol-0abc"})
    tag = existing.one("aws:ec2/tag:Tag").plain
    assert (tag["resourceId"], tag["key"], tag["value"]) == (
        "vol-0abc", "jupyterhub-cloud-stack", "aws")


def test_openstack_swift_container_and_access_ruled_credential(dev: Run) -> None:
    container = dev.one("openstack:objectstorage/container:Container")
    assert container.plain["name"] == "jhc-dev-backups"
    assert container.opts.protect and container.opts.retain_on_delete
    credential = dev.one("openstack:identity/applicationCredential:ApplicationCredential").plain
    rules = credential["accessRules"]
    assert {r["service"] for r in rules} == {"object-store"}
    assert {r["path"] for r in rules} == {"/v1/AUTH_0123abcd/jhc-dev-backups",
                                          "/v1/AUTH_0123abcd/jhc-dev-backups/**"}
    assert {r["method"] for r in rules} == {"GET", "HEAD", "PUT", "DELETE"}
    assert not credential.get("unrestricted")
    backup = backup_container(dev)
    assert envs(backup)["RESTIC_REPOSITORY"] == "swift:jhc-dev-backups:/"
    files = uploads(backup)
    assert files["/run/secrets/backup-env/OS_AUTH_URL"] == "https://keystone.example.org:5000/v3"
    assert files["/run/secrets/backup-env/OS_APPLICATION_CREDENTIAL_SECRET"] == OS_SECRET
    assert_only_in_secret_uploads(dev, OS_SECRET)


def test_given_repository_replaces_the_cloud_default() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAGIVEN", "AWS_SECRET_ACCESS_KEY": "given-secret-value"}
    run = run_program("aws", overrides={"backupRepository": "s3:https://minio.example.org/lab",
                                        "backupRepositoryEnv": json.dumps(env)},
                      secret_keys=("backupRepositoryEnv",))
    assert not run.of_type("aws:s3/bucket:Bucket") and not run.of_type("aws:iam/user:User")
    container = backup_container(run)
    assert envs(container)["RESTIC_REPOSITORY"] == "s3:https://minio.example.org/lab"
    assert uploads(container)["/run/secrets/backup-env/AWS_SECRET_ACCESS_KEY"] == \
        "given-secret-value"
    assert_only_in_secret_uploads(run, "given-secret-value")


def test_backups_can_be_turned_off() -> None:
    run = run_program("aws", overrides={"backupEnabled": False})
    names = [r.plain["name"] for r in run.of_type("docker:index/container:Container")]
    assert "jhc-aws-backup" not in names and "jhc-aws-hub" in names
    assert not run.of_type("aws:s3/bucket:Bucket")
    assert "backupRepositoryPassword" not in run.outputs


BASE = {"localDataDir": "/srv/lab"}


@pytest.mark.parametrize("raw, key", [
    ({"backupTime": "2:30"}, "backupTime"),
    ({"backupTime": "24:00"}, "backupTime"),
    ({"backupRepository": "/srv/lab/backups"}, "backupRepository"),
    ({"backupRepository": "/srv"}, "backupRepository"),
    ({"backupRepository": "backups"}, "backupRepository"),
    ({"backupRepository": "ftp://x/y"}, "backupRepository"),
    ({"backupRepository": "s3:h/b", "backupRepositoryEnv": "[1]"}, "backupRepositoryEnv"),
    ({"backupRepository": "s3:h/b", "backupRepositoryEnv": '{"lower": "x"}'},
     "backupRepositoryEnv"),
    ({"backupRepositoryEnv": '{"A": "b"}'}, "backupRepositoryEnv"),
    ({"backupKeepDaily": 0, "backupKeepWeekly": 0, "backupKeepMonthly": 0}, "backupKeepDaily"),
    ({"backupCheckReadDataPercent": 0}, "backupCheckReadDataPercent"),
    ({"backupKeepWeekly": -1}, "backupKeepWeekly"),
    ({"cloud": "aws", "awsDataSnapshotTime": "3:30"}, "awsDataSnapshotTime"),
    ({"cloud": "aws", "awsDataSnapshotsKeep": 1001}, "awsDataSnapshotsKeep"),
])
def test_bad_backup_config_names_the_key(raw: dict[str, Any], key: str) -> None:
    if raw.get("cloud") == "aws":
        raw = {"sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ x", "awsInstanceType": "t3.large",
               "adminCidrs": '["198.51.100.7/32"]', **raw}
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in {**BASE, **raw}.items()}
    with pytest.raises(ConfigError) as err:
        load_settings(text, "lab", frozenset({"backupRepositoryEnv"}))
    assert err.value.key == key, str(err.value)


def test_plain_text_repository_env_is_refused() -> None:
    raw = {**BASE, "backupRepository": "s3:h/b", "backupRepositoryEnv": '{"A": "b"}'}
    with pytest.raises(ConfigError) as err:
        load_settings(raw, "lab")
    assert err.value.key == "backupRepositoryEnv" and "--secret" in str(err.value)
    backup = load_settings(raw, "lab", frozenset({"backupRepositoryEnv"})).service.backup
    assert backup.repository == "s3:h/b" and backup.enabled


def test_sibling_directory_is_accepted() -> None:
    raw = {**BASE, "backupRepository": "/srv/lab-backups"}
    assert load_settings(raw, "lab").service.backup.repository == "/srv/lab-backups"
