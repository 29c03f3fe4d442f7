"""電子請求 (supplier e-invoices): JP PINT invoices that suppliers send to the towns
they sell to, checked by the UBL 2.1 schema, the official JP PINT rules
(OpenPeppol's Schematron, run with Saxon in worker processes) and the
platform's own rules; then 検収, 決裁, 支出命令 and payment in each town's own
tenant, with the original XML kept byte for byte, sealed, searchable as the
電子帳簿保存法 requires, and exported to the town's financial accounting.

See docs/invoices.md. The check pipeline (``ubl``, ``jsonform``, ``xsd``,
``schematron``, ``rules``, ``checks``) is pure: it knows no town and no
database, so the benchmark and the CLI run it as the API does.
"""
