"""The engine: sessions, the turn loop, events and commands. It never prints."""
