-- Once, as a PostgreSQL superuser: the service's login role, its database,
-- and the owner of the audit log (a role the service must not be able to become).
--
--   psql -v login=shared_gov -v audit=sg_audit -v database=shared_gov -f create.sql
--
-- `audit` is <SHARED_GOV_ROLE_PREFIX>_audit. Set the login role's password
-- afterwards with \password (or use certificate authentication).
CREATE ROLE :"login" LOGIN CREATEROLE;
CREATE DATABASE :"database" OWNER :"login";
CREATE ROLE :"audit" NOLOGIN;
