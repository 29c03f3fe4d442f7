"""介護保険課's pages in the web console (``/console/towns/{code}/kaigo/…``).

The determination queue, a determination with its legal date, legal basis
and reason, the questions for staff, confirm / correct / reject; an insured
person's periods and premium months, looked up by POST. Each page goes
through the API's guarded entry under the audit action of the API endpoint
behind it and calls the domain's own services (:mod:`.pages`); templates are
in ``templates/kaigo/``. Declared in the domain's spec (``SPEC.console``).
"""
