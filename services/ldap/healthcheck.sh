#!/bin/sh
# HEALTHCHECK of the LDAP image: an authenticated (SASL EXTERNAL over ldapi, as root inside the
# container) read of the root DSE must list the configured naming context. Needs no password,
# and still fails if slapd is not serving or the database is not configured.
set -eu
url="${LDAP_HEALTHCHECK_URL:-ldapi:///}"
ldapsearch -Q -LLL -Y EXTERNAL -H "$url" -b "" -s base namingContexts \
    | grep -qi "^namingContexts: ${LDAP_BASE_DN:?}$"
