"""Personal-data protection for the bot: masking, the redacting tracker store, log masking."""
