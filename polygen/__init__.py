"""polygen: zero-touch provisioning for Polycom/Poly SIP desk phones."""

__version__ = "0.1.0"
