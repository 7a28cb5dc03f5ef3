"""The identity use cases, one module each, composed by ``dancu.identity.service``."""
