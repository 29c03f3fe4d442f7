-- Before every `shared-gov migrate`, as a superuser: catalog migrations create
-- and alter objects owned by the audit role, which needs membership while they run.
--
--   psql -v login=shared_gov -v audit=sg_audit -d shared_gov -f before-migrate.sql
GRANT :"audit" TO :"login";
