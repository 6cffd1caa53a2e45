"""The typer application. Only this package prints and chooses exit codes."""
