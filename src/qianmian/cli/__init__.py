"""The ``qianmian`` command line (Typer + Rich)."""
