"""What the platform knows of a town below its administration: its database
identifiers (``names``), the cache of active towns the request path consults
(``registry``), the record of changes to its settings in its own audit log
(``changes``) and whether its issuer is enrolled (``enrolments``).

``tenancy/`` (onboarding, migrations, offboarding), ``auth/`` and ``policy/``
sit above it and use it; it uses only the audit recorder and ``db/``.
"""
