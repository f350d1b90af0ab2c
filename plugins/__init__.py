"""Built-in audits, installed as ``auditor_plugins`` and registered like third-party ones."""
