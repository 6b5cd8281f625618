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
    "Erasure",
    "Event",
    "HistorySnapshot",
    "Policy",
    "PopulationFit",
    "Segment",
    "WebhookDelivery",
]
