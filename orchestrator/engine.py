"""Drives a campaign: asks the domain what is next, calls the ports, records every event (issue 4)."""
