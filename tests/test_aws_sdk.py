"""components/host/aws_sdk.py loads only the pulumi_aws modules the AWS host uses, and the whole
package, imported later or earlier, still works and shares those very classes."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import ROOT

PROBE = """
import json, sys
from components.host import aws_sdk
ec2_modules = sorted(m for m in sys.modules if m.startswith("pulumi_aws.ec2."))
package_type = type(sys.modules["pulumi_aws.ec2"]).__name__
import pulumi_aws.ec2 as whole
print(json.dumps({
    "ec2_modules": ec2_modules, "package_type": package_type,
    "same_classes": whole.Instance is aws_sdk.ec2.Instance
                    and whole.SecurityGroup is aws_sdk.ec2.SecurityGroup
                    and whole.get_ami_output is aws_sdk.ec2.get_ami_output,
    "module_attribute": whole.instance is sys.modules["pulumi_aws.ec2.instance"],
    "rest_of_package": whole.Vpc.__module__,
    "s3": sys.modules["pulumi_aws.s3"].BucketV2.__module__,
    # the package is loaded in full now: it is used as it is
    "loaded_package_used": aws_sdk._load("ec2", ("instance",)).Instance is whole.Instance
                           and sys.modules["pulumi_aws.ec2"] is whole,
}))
"""


def fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def test_only_the_used_modules_load_and_the_package_still_works() -> None:
    got = fresh(PROBE)  # a fresh interpreter: nothing of pulumi_aws imported before
    # ec2 has about 180 modules; the host uses 11, plus the package's _inputs, outputs, _enums
    assert len(got["ec2_modules"]) < 20, got["ec2_modules"]
    assert "pulumi_aws.ec2.vpc" not in got["ec2_modules"]
    assert got["package_type"] == "_LazyModule"  # pulumi_aws's own entry is back, not loaded
    assert got["same_classes"] and got["module_attribute"]
    assert got["rest_of_package"] == "pulumi_aws.ec2.vpc"
    assert got["s3"].startswith("pulumi_aws.s3.")
    assert got["loaded_package_used"]
