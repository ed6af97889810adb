"""Key custody for the hub's own keys: a master key ring and signing keys encrypted at rest."""
