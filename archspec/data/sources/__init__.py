"""One module per dataset source; each turns its files or generator into a `Raw`."""
