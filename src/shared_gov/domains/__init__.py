"""Business domains. Each has a ``spec.py`` (its registration), models, schemas,
repository, service and controllers.

The pillars learn about domains only through :mod:`shared_gov.domains.registry`,
which reads the list below. Installing a domain is one line here.
"""

INSTALLED: tuple[str, ...] = (
    "shared_gov.domains.residents.spec",
    "shared_gov.domains.kaigo.spec",
    "shared_gov.domains.invoices.spec",
)
