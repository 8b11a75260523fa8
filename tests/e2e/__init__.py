"""End-to-end tests: the whole service on real local parts, from a customer's e-mail to the delivered answer."""
