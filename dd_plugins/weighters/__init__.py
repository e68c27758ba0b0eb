"""Built-in weighters."""
