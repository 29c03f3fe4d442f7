#!/bin/sh
# PostgreSQL image's first-start hook (compose.yaml): the roles and database of
# deploy/sql/create.sql, and the login role's password (DB_PASSWORD of .env).
set -eu
psql -v ON_ERROR_STOP=1 -U postgres -d postgres \
  -v login=shared_gov -v audit=sg_audit -v database=shared_gov -f /sql/create.sql
# psql variables are not interpolated in -c: feed the statement on stdin.
printf 'ALTER ROLE shared_gov PASSWORD :%s;\n' "'pw'" |
  psql -v ON_ERROR_STOP=1 -U postgres -d postgres -v pw="$SHARED_GOV_DB_PASSWORD"
