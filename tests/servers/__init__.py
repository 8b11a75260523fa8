"""Real servers started by tests on free loopback ports (Dovecot IMAP, an SMTP sink, PostgreSQL, HTTP)."""
