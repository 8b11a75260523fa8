"""Local fakes of outside systems that speak their documented API shapes (see each module)."""
