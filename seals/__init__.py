"""Hub PKI, seal certificates, key custody, PAdES sealing, TSA and PDF verification (issue 4; not built yet)."""
