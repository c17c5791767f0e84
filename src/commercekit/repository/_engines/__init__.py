"""Engines and what each kind of server needs: topologies from URLs (sync and asyncio
drivers), SQLite's BEGIN fix, statement deadlines, replication position sources.
"""
