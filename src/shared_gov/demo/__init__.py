"""Demo support: synthetic data for trying out a town without real residents.

Everything produced here is invented (see :mod:`shared_gov.domains.residents.seed`); it must
never be mixed with, or mistaken for, real resident records.
"""
