"""Shared plumbing with no business rules: database, errors, clock, ids, outbox, audit."""
