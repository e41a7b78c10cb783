"""CaseTrail sync server: Flask app, API, services, database and CLI."""
