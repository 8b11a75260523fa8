"""The service's web app (Flask): the built-in desk, the request form, the portal and webhooks."""
