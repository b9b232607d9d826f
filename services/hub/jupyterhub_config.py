"""Static JupyterHub configuration of jupyterhub-cloud, driven only by its settings document.

Why static: the file is baked into the hub image and tested as is; the Pulumi component
changes a deployment by changing the settings document it uploads
(/etc/jupyterhub/jhc-settings.json, or the file named by $JHC_SETTINGS_FILE: one JSON object
of the JHC_* variables of jhc_variables.py), never this file. Secrets are passed as files
(``*_FILE`` variables naming a file of mode 600 uploaded into the hub container), never as
values, because the document and variables show up in ``docker inspect``. The only secret
that must be an environment variable is the proxy's own ``CONFIGPROXY_AUTH_TOKEN`` in the
*proxy* container (configurable-http-proxy insists); the hub reads the same token from
JHC_PROXY_AUTH_TOKEN_FILE.

All logic lives in the ``jhc_*.py`` modules next to this file (importable, unit-tested;
``jhc_hub.py`` lists them). A missing or malformed variable stops the hub at start with
``jhc_hub.HubConfigError: JHC_X: <problem>``. Every variable, its default and the stack
config key that feeds it: ``jhc_variables.VARIABLES``, rendered into docs/hub.md.

LDAP transport: with before_bind or on_connect the server certificate is validated against
JHC_LDAP_CA_FILE. ``insecure`` (plain LDAP) is the default and acceptable
only because the LDAP server is reachable solely on the internal docker network
``jhc-backend`` (no published port, no route from user containers); passwords cross only
that bridge inside the VM.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jhc_hub  # noqa: E402

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (provided by traitlets)
jhc_hub.configure(c, os.environ)
