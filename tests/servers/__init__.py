"""Real servers started by tests on free loopback ports (Dovecot IMAP, an aiosmtpd SMTP sink)."""
