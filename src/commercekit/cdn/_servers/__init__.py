"""The HTTP front ends.

The HTTP/1.1 server and its worker processes, ASGI, WSGI, the admin endpoints.
"""
