"""Servers tests run on 127.0.0.1, on free ports: the service's own web app (`web`)."""
