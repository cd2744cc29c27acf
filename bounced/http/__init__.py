"""The HTTP API of bounced (FastAPI): see `bounced.http.app.create_app`.

Importing this package imports nothing heavy; the modules below import FastAPI.
"""
