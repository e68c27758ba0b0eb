"""Where sample weights meet each distiller's real-data loss. Depends on torch only."""
