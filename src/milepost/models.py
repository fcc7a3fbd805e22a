"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from milepost.audit.models import MilestoneEvent
from milepost.auth.models import ApiToken, LoginFailure
from milepost.disputes.models import Dispute, SettlementOffer
from milepost.feedback.models import Feedback
from milepost.files.models import StoredFile, SubmissionFile
from milepost.kit.db import Base
from milepost.kit.idempotency_models import IdempotencyKey
from milepost.ledger.models import Account, JournalEntry, LedgerVerification, Posting
from milepost.milestones.models import Milestone, Submission
from milepost.notifications.models import Notification, OutgoingEmail
from milepost.projects.models import Bonus, Project, Proposal
from milepost.schedule.models import ScheduleStep, WorkerHeartbeat
from milepost.users.models import User
from milepost.wallets.models import Deposit, Payout, PayoutDestination
from milepost.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Account",
    "ApiToken",
    "Base",
    "Bonus",
    "Deposit",
    "Dispute",
    "Feedback",
    "IdempotencyKey",
    "JournalEntry",
    "LedgerVerification",
    "LoginFailure",
    "Milestone",
    "MilestoneEvent",
    "Notification",
    "OutgoingEmail",
    "Payout",
    "PayoutDestination",
    "Posting",
    "Project",
    "Proposal",
    "ScheduleStep",
    "SettlementOffer",
    "StoredFile",
    "Submission",
    "SubmissionFile",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
]
