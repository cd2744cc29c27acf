"""Alembic migrations of the store, shipped in the package (see `Database.upgrade` in
bounced.db.database).

A revision's id is the four-digit prefix of its file name (`0002_sending.py` has
`revision = "0002"`), so the store knows the newest one from a directory listing.
"""
