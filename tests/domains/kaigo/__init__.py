"""Tests of the 介護保険 domain (issue #17): its date rules, records, determinations and API."""
