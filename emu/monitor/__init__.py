"""The human monitor (HMP) and the chardev servers it is reached through."""
