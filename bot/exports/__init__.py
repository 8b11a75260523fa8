"""Writing what leaves dsarbot: CSV cells, file names, archives."""
