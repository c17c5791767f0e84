"""What the aggregates tell: typed reports, and the alert rules and dashboard shipped
for operators.
"""
