"""The only modules that read or write the 介護保険 tables — and the only ones
that read the resident register's storage (:mod:`.register`).

Personal values are encrypted on the way in (``keys.encrypt(table, column,
row_id, value)``) and decrypted on the way out; insured numbers and the day a
resident reaches 65 are found through blind indexes. Statements run in a unit
of work bound to one town; table names are unqualified on purpose.

- :mod:`.insured` — insured persons (被保険者)
- :mod:`.determinations` — the work queue
- :mod:`.facilities` — the town's care facilities
- :mod:`.register` — the outbox and the register's history, read-only
- :mod:`.watch` — the day each resident reaches 65, and the consumer's position
- :mod:`.indexes` — what a blind-index key rotation calls
- :mod:`.export` — what offboarding writes
"""
