"""In-app notifications for the parties to a milestone, and e-mail through SMTP (an outbox sent after
commit)."""
