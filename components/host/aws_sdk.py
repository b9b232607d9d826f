"""The few pulumi_aws resource modules the AWS host uses, loaded without their packages' __init__.

Why: `pulumi_aws.ec2`'s __init__ imports every one of its ~180 modules, and s3's and iam's theirs:
≈0.65 s of a 2.3 s AWS run at class scale here (bench/program_under_mocks.py), for the 25 modules
used. Each resource module imports only its own package's `_inputs`, `outputs` and `_enums`
(relative imports, `from . import ...`), so it loads the same way under a package object whose
__init__ has not run. That object stands in `sys.modules` only while these modules load; then the
package entry `pulumi_aws` made (a lazy module, pulumi/_utils.py `_LazyModule`, which runs the
real __init__ at its first attribute access) is put back, with the loaded modules set on it, so
any later `pulumi_aws.ec2.X` is the whole package and reuses these very modules and classes
(tests/test_aws_sdk.py). A package already loaded in full is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types

import pulumi_aws

MODULES: dict[str, tuple[str, ...]] = {
    "ec2": ("instance", "eip", "eip_association", "key_pair", "security_group", "tag",
            "volume_attachment", "get_ami", "get_subnet", "get_subnets", "get_vpc"),
    "ebs": ("volume",),
    "vpc": ("security_group_egress_rule", "security_group_ingress_rule"),
    "s3": ("bucket", "bucket_lifecycle_configuration", "bucket_public_access_block",
           "bucket_server_side_encryption_configuration", "bucket_versioning"),
    "iam": ("access_key", "role", "role_policy", "user", "user_policy"),
    "dlm": ("lifecycle_policy",),
}


def _load(package: str, modules: tuple[str, ...]) -> types.SimpleNamespace:
    """A namespace of the public names of pulumi_aws.<package>.<module> for each module."""
    full = f"{pulumi_aws.__name__}.{package}"
    previous = sys.modules.get(full)
    stand_in = type(previous) is not types.ModuleType  # absent, or lazy and not loaded yet
    if stand_in:
        spec = importlib.machinery.PathFinder.find_spec(full, pulumi_aws.__path__)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{full} is not a package")
        sys.modules[full] = importlib.util.module_from_spec(spec)  # its __init__ not run
    loaded: dict[str, types.ModuleType] = {}
    try:
        for name in modules:
            loaded[name] = importlib.import_module(f"{full}.{name}")
    finally:
        if stand_in:
            sys.modules.pop(full)
            if previous is not None:
                sys.modules[full] = previous
                for name, module in loaded.items():  # setattr does not trigger the lazy load
                    setattr(previous, name, module)
    return types.SimpleNamespace(**{attr: getattr(module, attr)
                                    for module in loaded.values() for attr in module.__all__})


ec2, ebs, vpc, s3, iam, dlm = (_load(p, m) for p, m in MODULES.items())
