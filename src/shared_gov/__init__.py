"""shared-gov: the backend of a shared municipal cloud (自治体クラウド).

Several towns run on one deployment; each town is a tenant keyed by its
6-digit local government code and isolated in its own PostgreSQL schema
and database role. See ``docs/architecture.md`` for the map.
"""

__version__ = "0.1.0"
