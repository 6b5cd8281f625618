"""Server-rendered pages for sales and service teams, signed in with a `read` API key."""
