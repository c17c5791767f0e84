"""The aggregate store: a batch of deliveries applied exactly once, in one transaction,
to aggregates in SQL (the schema, the batch summed in memory, identity resolution, the
per-person aggregates: funnels and co-purchases).
"""
