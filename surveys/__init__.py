"""The feedback360 domain: models and services. No Flask here (DESIGN §2)."""
