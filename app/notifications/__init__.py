"""Signed change notifications to the CRM, from a transactional outbox."""
