"""What an event is: the model with its identity rules, Segment's constructors, the
consumer's reading of one wire message, and the mapping to GA4's events.
"""
