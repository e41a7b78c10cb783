#!/bin/sh
# casetrail-backup.sh BACKUP_DIR — dump the CaseTrail database and copy the log-signing
# key into BACKUP_DIR/<UTC time>/ with a SHA256SUMS file; prints that directory.
# Reads CASETRAIL_DATABASE_URL and CASETRAIL_SIGNING_KEY_FILE (casetrail.env).
# The key signs every checkpoint: without it a restored log can be verified but not
# continued under the same key, so it is kept with the dump (both mode 0600).
set -eu
dest=${1:?usage: casetrail-backup.sh BACKUP_DIR}
: "${CASETRAIL_DATABASE_URL:?set CASETRAIL_DATABASE_URL}"
: "${CASETRAIL_SIGNING_KEY_FILE:?set CASETRAIL_SIGNING_KEY_FILE}"
umask 077
out="$dest/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
# SQLAlchemy's driver suffix is not part of a libpq URL
url=$(printf '%s' "$CASETRAIL_DATABASE_URL" | sed 's|^postgresql+psycopg://|postgresql://|')
pg_dump --format=custom --no-owner --file="$out/casetrail.dump" "$url"
cp "$CASETRAIL_SIGNING_KEY_FILE" "$out/log-signing.pem"
(cd "$out" && sha256sum casetrail.dump log-signing.pem > SHA256SUMS)
echo "$out"
