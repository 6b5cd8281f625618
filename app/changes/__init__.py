"""The stored history of tier and stage changes, as an API."""
