"""The command-line programs, one module each (setup.py's console_scripts run their main()). The package
exports nothing and imports none of them: each program loads only what it needs."""

__all__: list[str] = []
