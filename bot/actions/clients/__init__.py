"""Clients for the services the actions call (one module per upstream)."""
