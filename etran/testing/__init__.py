"""Tools for testing transports: packet builders and (with hypothesis) strategies."""
