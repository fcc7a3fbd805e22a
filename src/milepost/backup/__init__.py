"""Backups that restore: a consistent snapshot of the database with the uploaded files it references."""
