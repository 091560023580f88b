"""Frame fan-out to viewers and the demand leases that keep agents at full rate."""
