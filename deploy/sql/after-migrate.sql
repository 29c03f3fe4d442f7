-- After every `shared-gov migrate`, as a superuser, in the service's database:
-- let the service hand towns' roles the right to write audit events (it
-- provisions towns at run time), then take the audit role away from it again.
--
--   psql -v login=shared_gov -v audit=sg_audit -d shared_gov -f after-migrate.sql
GRANT USAGE ON SCHEMA audit TO :"login" WITH GRANT OPTION;
GRANT EXECUTE ON FUNCTION audit.record(jsonb) TO :"login" WITH GRANT OPTION;
-- The process's audit writer records reads in batches (catalog c0015).
GRANT EXECUTE ON FUNCTION audit.record_many(jsonb) TO :"login" WITH GRANT OPTION;
REVOKE :"audit" FROM :"login";
