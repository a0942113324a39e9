"""Logging in to Astravue: the OAuth login, the token store, silent renewal, and the credentials seam."""
