"""What every balancer shares: membership, the health overlay, ejection, slow start, leases."""
