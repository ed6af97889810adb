"""Who is calling: departments and their API clients (OAuth 2.0) and holders (OpenID Connect)."""
