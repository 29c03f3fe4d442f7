"""Field-level encryption: key providers, envelopes, blind indexes, keyring, rotation."""
