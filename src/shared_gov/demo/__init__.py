"""Demo support: synthetic data for trying out a town without real residents.

Everything produced here is invented (see :mod:`shared_gov.demo.seed`); it must
never be mixed with, or mistaken for, real resident records.
"""
