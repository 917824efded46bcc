"""The loop with residents: who they are (resident_contact), the notification outbox, the live
conversation during a staff takeover, and the bot's conversation endpoints (docs/loop.md)."""
