"""The web console: server-rendered pages for staff who do not use curl.

Served by the same service under ``/console`` (never in the OpenAPI
document). Pages are Jinja templates (``templates/``; a domain may bring its
own folder beside its controllers), forms are plain HTML (no script is
needed, and the Content Security Policy allows none inline).

- :mod:`.security`: the session (server-side, its cookie HttpOnly,
  SameSite=Strict, Secure outside development), CSRF on every form, the
  security headers on every console response;
- :mod:`.signin`: who is signed in — the session's principal, idle and
  absolute timeouts, the guard every signed-in page goes through;
- :mod:`.oidc`: signing in with the town's identity provider (authorization
  code flow with PKCE, authlib), the callback, signing out;
- :mod:`.devissuer`: the built-in development issuer's authorization and
  token endpoints (development only);
- :mod:`.pages`: rendering (language, labels, the error pages);
- :mod:`.auditors`: the auditor's pages (search, an event and its proof,
  export, verify now) — through the API's guarded entry, so every page is
  decided and audited like the API call behind it;
- :mod:`.admin`, :mod:`.issuer`, :mod:`.agreements`: the town admins' pages
  (departments, staff permissions and suspensions, the explanation, the
  identity provider's four eyes, sharing agreements), each calling the API
  endpoint's own step; :mod:`.gated`: what they share (sign-in before the
  API's route middleware, forms read into the API's request types);
- :mod:`.domainpages`: what a domain's own pages (``DomainSpec.console``,
  mounted by :mod:`.router`) go through — signed in first, then the guarded
  entry under the API endpoint's audit action, on the purpose the page works
  under (the residents domain's disclosure desk is one).

``docs/console.md`` describes the whole.
"""

from .router import close_stores, console_router, console_stores, console_template_config

__all__ = ["close_stores", "console_router", "console_stores", "console_template_config"]
