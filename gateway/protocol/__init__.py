"""Wire formats: the connector link (binary frames over SSH) and the browser protocol."""
