"""Plumbing for loading CSV files into PostgreSQL in bulk, independent of any record layout.

:mod:`.chunks` reads a file's chunks (and pauses the cyclic GC while rows are built),
:mod:`.digits` checks whole columns of numbers at once, :mod:`.pgcopy` frames rows
as binary COPY. Imports nothing of the application: a domain's import worker
processes load it without the database layer. The residents' import
(:mod:`shared_gov.domains.residents.transfer`) is its user.
"""
