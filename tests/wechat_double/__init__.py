"""A test double of the WeChat Official Account platform (see simulator.py)."""
