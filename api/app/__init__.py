"""房本助手 status and petition service."""
