"""The bundled synthetic offline sample (openFDA bulk-download format) and its seeded generator."""
