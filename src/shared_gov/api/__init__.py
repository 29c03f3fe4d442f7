"""The HTTP layer: the request pipeline and the controllers that are no domain's own.

- :mod:`.pipeline`: process services, bearer authentication, the principal
  dependency, the unknown-query-parameter guard;
- :mod:`.entry`: the one guarded entry into a town (decide, record a
  refusal, bind the town, record the access) and the audit declaration every
  town route carries;
- :mod:`.refusals`: the ``after_exception`` hook that records what no entry did;
- :mod:`.problems`: every error as RFC 9457 problem+json;
- controllers: :mod:`.tenants` (operators and enrolment), :mod:`.administration`
  (departments, staff, purposes), :mod:`.issuers` (discovery and a town's
  issuer), :mod:`.agreements`, :mod:`.auditors` and :mod:`.proofs` (the audit log).

Domains mount their own controllers through the domain registry; they import
this package (never the reverse), and the pillars (audit, auth, crypto, db,
policy, tenancy) import neither (docs/architecture.md).
"""
