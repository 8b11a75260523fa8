"""The people every SaaS fake knows: a subject, a namesake sharing name and phone, and a stranger."""
from __future__ import annotations

SUBJECT = "camille.martin@example.com"
NAMESAKE = "camille.martin@example.org"  # same first and last name, same phone: must never match
STRANGER = "jean.dupont@example.net"
PHONE = "+33612345678"
FIRST, LAST = "Camille", "Martin"
