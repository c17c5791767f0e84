"""The HTTP messages the cache deals in.

Fields, requests and responses, bodies, dates, stored responses.
"""
