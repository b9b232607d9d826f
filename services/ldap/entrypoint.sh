#!/bin/sh
# Entrypoint of the jupyterhub-cloud LDAP image.
#
# `slapd` (the default command): first-start bootstrap (bootstrap.py does nothing when
# /etc/ldap/slapd.d already holds a configuration, so restarts and image upgrades never touch
# the directory), then converge.py sets the admin and read-only passwords from their files
# (every start, slapd still stopped: a regenerated secret never locks anyone out), then slapd
# in the foreground. It starts as root only to fix ownership of the
# bind-mounted state directories and binds port 389; slapd itself drops to openldap (-u/-g).
# Anything else (e.g. `python3 /opt/jhc/reconcile.py --desired FILE`) is executed as given, so
# the one-shot reconcile container uses this same image.
set -eu

if [ "${1:-slapd}" != "slapd" ]; then
    exec "$@"
fi

python3 /opt/jhc/bootstrap.py
python3 /opt/jhc/converge.py

mkdir -p /run/slapd
chown -R openldap:openldap /etc/ldap/slapd.d /var/lib/ldap /run/slapd
chmod 0750 /etc/ldap/slapd.d /var/lib/ldap

# LDAP_LOG_LEVEL: slapd debug level for stderr (docker logs). "stats" logs connections and
# operations (DNs, filters, attribute names), never attribute values or passwords.
exec /usr/sbin/slapd -d "${LDAP_LOG_LEVEL:-stats}" \
    -h "ldap:/// ldapi:///" \
    -u openldap -g openldap \
    -F /etc/ldap/slapd.d
