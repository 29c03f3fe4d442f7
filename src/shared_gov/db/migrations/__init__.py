"""Two Alembic trees: ``catalog`` (shared tables) and ``tenant`` (one copy per town)."""
