"""Database access: the connection pool, the embedded server, migrations and
the one function that opens a tenant unit of work (:meth:`Database.tenant`)."""

from shared_gov.db.engine import Database, TenantUnitOfWork

__all__ = ["Database", "TenantUnitOfWork"]
