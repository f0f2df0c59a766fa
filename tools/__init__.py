"""Developer tooling that is not part of the installed library (the book's browser checker)."""
