#!/bin/sh
# Render the CaseTrail nginx site from casetrail.conf.template to stdout, e.g.
#   NGINX_LISTEN=80 NGINX_SERVER_NAME=casetrail.example.gov.cn \
#   NGINX_ACCESS_LOG=/var/log/nginx/casetrail.access.log \
#   CASETRAIL_UPSTREAMS='server 10.0.0.11:8000 max_fails=1 fail_timeout=5s; server 10.0.0.12:8000 max_fails=1 fail_timeout=5s;' \
#   deploy/nginx/render.sh > /etc/nginx/sites-available/casetrail
# Only these four placeholders are replaced (sed, nothing to install); nginx's own
# $variables pass through untouched.
set -eu
: "${NGINX_LISTEN:?set NGINX_LISTEN, e.g. 80 or 10.0.0.10:80}"
: "${NGINX_SERVER_NAME:?set NGINX_SERVER_NAME, e.g. casetrail.example.gov.cn}"
: "${NGINX_ACCESS_LOG:?set NGINX_ACCESS_LOG, e.g. /var/log/nginx/casetrail.access.log}"
: "${CASETRAIL_UPSTREAMS:?set CASETRAIL_UPSTREAMS, e.g. 'server 10.0.0.11:8000;'}"
# a value is inserted literally: escape what sed's replacement would interpret
literal() { printf '%s' "$1" | sed 's/[\\|&]/\\&/g'; }
exec sed -e "s|\${NGINX_LISTEN}|$(literal "$NGINX_LISTEN")|g" \
    -e "s|\${NGINX_SERVER_NAME}|$(literal "$NGINX_SERVER_NAME")|g" \
    -e "s|\${NGINX_ACCESS_LOG}|$(literal "$NGINX_ACCESS_LOG")|g" \
    -e "s|\${CASETRAIL_UPSTREAMS}|$(literal "$CASETRAIL_UPSTREAMS")|g" \
    "$(dirname "$0")/casetrail.conf.template"
