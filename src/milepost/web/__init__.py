"""The web app: HTML pages over the same services as the API (see pages.py and session.py)."""
