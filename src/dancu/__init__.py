"""dancu: national population registry and digital-identity platform."""

__version__ = "0.1.0"
