"""Audit log: the recorder (the only writer), and later the sealer, proofs and
auditor queries (issue #5)."""
