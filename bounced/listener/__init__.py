"""Receiving returned mail by SMTP: the server (`server`), its spool (`spool`), the
worker that drains it (`spool_worker`) through `intake`, and the inbox of mail that is
no bounce (`inbox`)."""
