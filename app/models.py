"""Every table, imported in one place so Alembic sees the whole schema."""

from app.apikeys.models import ApiKey
from app.classification.models import (
    ClassificationChange,
    CurrentClassification,
    HistorySnapshot,
    PopulationFit,
)
from app.core.db import Base
from app.customers.models import Customer, Erasure
from app.dashboard.models import DashboardSession
from app.events.models import Event
from app.jobs.models import DirtyCustomer, Job, JobRange
from app.notifications.models import (
    DeliveryAttempt,
    Notification,
    NotificationDelivery,
    SegmentMembership,
    WebhookEndpoint,
)
from app.policies.models import Policy
from app.segments.models import Segment
from app.webhooks.models import WebhookDelivery

__all__ = [
    "ApiKey",
    "Base",
    "ClassificationChange",
    "CurrentClassification",
    "Customer",
    "DashboardSession",
    "DeliveryAttempt",
    "DirtyCustomer",
    "Erasure",
    "Event",
    "HistorySnapshot",
    "Job",
    "JobRange",
    "Notification",
    "NotificationDelivery",
    "Policy",
    "PopulationFit",
    "Segment",
    "SegmentMembership",
    "WebhookDelivery",
    "WebhookEndpoint",
]
