#!/bin/sh
# casetrail-restore.sh BACKUP — restore a casetrail-backup.sh directory: checks its
# SHA256SUMS, restores the dump into the EMPTY database of CASETRAIL_DATABASE_URL
# (create it first: createdb -O casetrail casetrail) and puts the signing key at
# CASETRAIL_SIGNING_KEY_FILE (refusing to replace a different key). Then run
# `casetrail custody verify` before starting the servers.
set -eu
src=${1:?usage: casetrail-restore.sh BACKUP_DIR}
: "${CASETRAIL_DATABASE_URL:?set CASETRAIL_DATABASE_URL}"
: "${CASETRAIL_SIGNING_KEY_FILE:?set CASETRAIL_SIGNING_KEY_FILE}"
(cd "$src" && sha256sum --check --quiet SHA256SUMS)
key="$CASETRAIL_SIGNING_KEY_FILE"
if [ -e "$key" ] && ! cmp -s "$key" "$src/log-signing.pem"; then
    echo "refusing to replace a different signing key at $key (拒绝覆盖不同的签名密钥)" >&2
    exit 1
fi
url=$(printf '%s' "$CASETRAIL_DATABASE_URL" | sed 's|^postgresql+psycopg://|postgresql://|')
pg_restore --no-owner --exit-on-error --single-transaction --dbname="$url" "$src/casetrail.dump"
umask 077
mkdir -p "$(dirname "$key")"
cp "$src/log-signing.pem" "$key"
echo "restored $src (已恢复): now run casetrail custody verify"
