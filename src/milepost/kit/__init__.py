"""Shared plumbing: database, errors, ids, time."""
