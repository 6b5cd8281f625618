from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from app.core.types import Attributes, CountryCode, PastTimestamp, TrimmedText, at_most

CustomerType = Literal["individual", "business"]
Role = Literal["end_customer", "distributor"]
CompanySize = Literal["micro", "small", "medium", "large", "enterprise"]

_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.lower()
    if len(value) > 254 or not _EMAIL_RE.fullmatch(value):
        raise ValueError("is not an email address")
    return value


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = re.sub(r"[\s().-]", "", value)
    if not re.fullmatch(r"\+?\d{4,20}", digits):
        raise ValueError("is not a phone number (digits, optionally a leading +)")
    return digits


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Email = Annotated[TrimmedText, AfterValidator(_email)]
Phone = Annotated[TrimmedText, AfterValidator(_phone)]
ShortText = Annotated[TrimmedText, at_most(256)]


class CustomerFields(BaseModel):
    """Customer fields as a CRM sends them; every one optional, normalised on the way in."""

    model_config = ConfigDict(extra="forbid")

    name: ShortText = None
    email: Email = None
    phone: Phone = None
    country: CountryCode | None = None
    customer_type: Annotated[CustomerType | None, BeforeValidator(_lower)] = None
    role: Annotated[Role | None, BeforeValidator(_lower)] = None
    industry: Annotated[TrimmedText, at_most(128)] = None
    company_size: Annotated[CompanySize | None, BeforeValidator(_lower)] = None
    created_at: PastTimestamp | None = Field(
        default=None, description="When the customer relationship began (RFC 3339)."
    )
    attributes: Attributes | None = Field(
        default=None, description="The caller's own fields, as a JSON object (max 16 KiB)."
    )


class CustomerUpsert(CustomerFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme GmbH",
                    "email": "buyer@acme.example",
                    "country": "DE",
                    "customer_type": "business",
                    "role": "distributor",
                    "industry": "machinery",
                    "company_size": "medium",
                    "attributes": {"crm_owner": "li.wei"},
                }
            ]
        },
    )


class ClassificationBrief(BaseModel):
    tier: str
    stage: str
    tier_score: float
    as_of: datetime
    policy_version: int


class CustomerRead(BaseModel):
    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    country: str | None
    customer_type: str | None
    role: str | None
    industry: str | None
    company_size: str | None
    created_at: datetime | None
    attributes: dict[str, Any]
    updated_at: datetime
    classification: ClassificationBrief | None = Field(
        default=None, description="The stored classification from the last recompute, if any."
    )
