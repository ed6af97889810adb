"""HTTP throughput benchmark of token issuance and validation against a bare FastAPI baseline."""
