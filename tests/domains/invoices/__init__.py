"""Tests of the supplier e-invoice domain (電子請求)."""
