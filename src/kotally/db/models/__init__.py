from kotally.db.models.admin_session import AdminSession
from kotally.db.models.admin_user import AdminUser
from kotally.db.models.api_client import ApiClient
from kotally.db.models.appointment import Appointment
from kotally.db.models.audit_entry import AuditEntry
from kotally.db.models.base import Base
from kotally.db.models.contact import Contact
from kotally.db.models.embed_session import EmbedSession
from kotally.db.models.entitlement import Entitlement
from kotally.db.models.ghl_appointment import GhlAppointment
from kotally.db.models.grant import Grant
from kotally.db.models.idempotency_record import IdempotencyRecord
from kotally.db.models.ledger_entry import LedgerEntry
from kotally.db.models.location import Location
from kotally.db.models.product_config import ProductConfig, ProductConfigLink
from kotally.db.models.sign_in_attempt import SignInAttempt
from kotally.db.models.stripe_charge import StripeChargeClawback, StripeDispute
from kotally.db.models.stripe_link import StripeGrantLink, StripeInvoicePayment
from kotally.db.models.webhook_event import WebhookEvent

__all__ = [
    "AdminSession",
    "AdminUser",
    "ApiClient",
    "Appointment",
    "AuditEntry",
    "Base",
    "Contact",
    "EmbedSession",
    "Entitlement",
    "GhlAppointment",
    "Grant",
    "IdempotencyRecord",
    "LedgerEntry",
    "Location",
    "ProductConfig",
    "ProductConfigLink",
    "SignInAttempt",
    "StripeChargeClawback",
    "StripeDispute",
    "StripeGrantLink",
    "StripeInvoicePayment",
    "WebhookEvent",
]
