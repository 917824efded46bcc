"""The maintainers' NLU inbox: what the bot misunderstood, masked, annotated and exported."""
