"""会計課's and the ordering departments' pages in the web console
(``/console/towns/{code}/invoices/…``).

The inbox by state, an invoice with its check report and history, its
original (shown escaped, downloadable unchanged), 確認 / 検収 / 決裁 /
支出命令 / 支払 / 差し戻し, the search by date, amount and counterparty (POST),
the payment export. Each page goes through the API's guarded entry under the
audit action of the API endpoint behind it and calls the domain's own
services (:mod:`.pages`); templates are in ``templates/invoices/``. Declared
in the domain's spec (``SPEC.console``).
"""
