"""A domain that exists only in the tests: dog registration (犬の登録, 狂犬病予防法 第4条).

The worked example of docs/adding-a-domain.md: one record type (``Dog``) with
one encrypted, blind-indexed field (the microchip number), one purpose
(``sample.dogs``), one action (``license``). Everything it needs lives in this
folder; the tests install it with ``registry.install(SPEC)``, the one line a
real domain writes in ``shared_gov/domains/__init__.py`` (``INSTALLED``).
"""
