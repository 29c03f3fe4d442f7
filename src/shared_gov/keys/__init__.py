"""Operators' key jobs (``shared-gov keys …``): KEK, data-key and blind-index
rotation and the key status. They sit above ``crypto/`` (which holds the
keys and knows no table) and reach a town's tables through ``db/`` and the
indexes' hooks its domains declare."""
